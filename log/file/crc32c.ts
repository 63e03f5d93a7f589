/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every log record.
 * Node 20 ships no CRC32C, and the log must not depend on a native addon for its integrity check.
 */

const POLY = 0x82f63b78;

// Slicing-by-8 tables: replay checks every byte of every segment on open, so the byte-at-a-time
// loop (TABLES[0] alone) would make opening a large log measurably slower.
const TABLES: readonly Int32Array[] = buildTables();

function buildTables(): Int32Array[] {
  const tables = Array.from({ length: 8 }, () => new Int32Array(256));
  const t0 = tables[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t0[n]!;
    for (let t = 1; t < 8; t++) {
      c = t0[c & 0xff]! ^ (c >>> 8);
      tables[t]![n] = c;
    }
  }
  return tables;
}

/**
 * CRC-32C of `data[start, end)`, as an unsigned 32-bit integer. Pass a previous result as
 * `seed` to continue a checksum over several chunks.
 */
export function crc32c(data: Uint8Array, seed = 0, start = 0, end = data.length): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array,
  ];
  let crc = ~seed;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    crc =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
  }
  for (; i < end; i++) crc = t0[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}
