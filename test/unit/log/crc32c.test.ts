import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc32c } from '../../../log/file/crc32c.js';

describe('crc32c', () => {
  it('matches the standard check value and the RFC 3720 vectors', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toBe(0x113fdb5c);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('agrees with a bitwise reference implementation and can be computed in chunks', () => {
    const reference = (data: Uint8Array): number => {
      let crc = 0xffffffff;
      for (const byte of data) {
        crc ^= byte;
        for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
      }
      return (crc ^ 0xffffffff) >>> 0;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (data, cutSeed) => {
        const cut = data.length === 0 ? 0 : cutSeed % (data.length + 1);
        expect(crc32c(data)).toBe(reference(data));
        expect(crc32c(data, crc32c(data, 0, 0, cut), cut)).toBe(reference(data));
      }),
    );
  });

  it('reads a view into a larger buffer at its own offset', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), (data, offsetSeed) => {
        const offset = offsetSeed % 17;
        const backing = new Uint8Array(offset + data.length + 5).fill(0xa5);
        backing.set(data, offset);
        expect(crc32c(backing.subarray(offset, offset + data.length))).toBe(crc32c(Uint8Array.from(data)));
      }),
    );
  });
});
