import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { LogRecord } from '../../../log/log-record.js';
import { crc32c } from '../../../log/file/crc32c.js';
import {
  FRAME_HEADER_BYTES,
  MAX_RECORD_BYTES,
  decodeRecord,
  encodeRecord,
  recordJson,
  maxFrameBytes,
  frameJson,
  type DecodeResult,
} from '../../../log/file/record-framing.js';
import { scanSegmentBody } from '../../../log/file/segment-file.js';
import { commit } from './log-test-helpers.js';

const text = fc.string({ unit: 'binary', maxLength: 40 });
const gtrid = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 });
const meta = fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null)), {
  maxKeys: 4,
});

const commitArb: fc.Arbitrary<LogRecord> = fc.record(
  {
    type: fc.constant('commit' as const),
    gtrid,
    branches: fc.array(fc.record({ participant: text, bqual: text, localTxId: text }, { requiredKeys: ['participant', 'bqual'] }), {
      maxLength: 4,
    }),
    decidedAt: fc.nat(),
    protocol: fc.constantFrom('2pc' as const, 'last-resource' as const),
    markerIn: text,
    saga: fc.constant(true as const),
    coordinatorId: text,
    host: text,
    pid: fc.nat(),
    meta,
    startedAt: fc.nat(),
  },
  { requiredKeys: ['type', 'gtrid', 'branches', 'decidedAt', 'coordinatorId', 'host', 'pid', 'startedAt'] },
);
const heuristicArb: fc.Arbitrary<LogRecord> = fc.record({
  type: fc.constant('heuristic' as const),
  gtrid,
  participant: text,
  bqual: text,
  expected: fc.constantFrom('commit' as const, 'rollback' as const),
  actual: fc.constantFrom('committed' as const, 'rolled-back' as const, 'unknown' as const),
  at: fc.nat(),
});
const endArb: fc.Arbitrary<LogRecord> = fc.record(
  { type: fc.constant('end' as const), gtrid, at: fc.nat(), status: fc.constantFrom('committed' as const, 'compensated' as const, 'failed' as const) },
  { requiredKeys: ['type', 'gtrid', 'at'] },
);
const recordArb = fc.oneof(commitArb, heuristicArb, endArb);

/** Decodes frames from offset 0 until the bytes end or a frame fails. */
function decodeAll(bytes: Uint8Array): { records: LogRecord[]; offsets: number[]; stop?: DecodeResult } {
  const records: LogRecord[] = [];
  const offsets: number[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const res = decodeRecord(bytes, offset);
    if (res.kind !== 'complete') return { records, offsets, stop: res };
    records.push(res.record);
    offsets.push(offset);
    offset = res.end;
  }
  return { records, offsets };
}

function frameWithPayload(payload: Buffer, crc = crc32c(payload)): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(crc, 4);
  return Buffer.concat([header, payload]);
}

describe('record framing', () => {
  it('lays a frame out as [u32 LE length][u32 LE crc32c(payload)][UTF-8 JSON]', () => {
    const rec = commit('g1');
    const frame = encodeRecord(rec);
    const json = Buffer.from(JSON.stringify(rec), 'utf8');
    expect(frame.readUInt32LE(0)).toBe(json.length);
    expect(frame.readUInt32LE(4)).toBe(crc32c(json));
    expect(frame.subarray(8).equals(json)).toBe(true);
  });

  it('round-trips any sequence of records', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 20 }), (records) => {
        const bytes = Buffer.concat(records.map(encodeRecord));
        const out = decodeAll(bytes);
        expect(out.stop).toBeUndefined();
        expect(out.records).toEqual(JSON.parse(JSON.stringify(records)));
      }),
    );
  });

  it('frames written one after another into a reused, dirty buffer are byte for byte the single-record frames', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 20 }), (records) => {
        const expected = Buffer.concat(records.map(encodeRecord));
        const jsons = records.map(recordJson);
        const scratch = Buffer.alloc(jsons.reduce((n, j) => n + maxFrameBytes(j), 0), 0xa5);
        let end = 0;
        for (const j of jsons) end = frameJson(scratch, end, j);
        expect(end).toBe(expected.length);
        expect(scratch.subarray(0, end).equals(expected)).toBe(true);
      }),
    );
  });

  it('decodes any truncation of a stream to the whole records before the cut, then torn', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 10 }), fc.nat(), (records, cutSeed) => {
        const frames = records.map(encodeRecord);
        const bytes = Buffer.concat(frames);
        const cut = cutSeed % (bytes.length + 1);
        const out = decodeAll(bytes.subarray(0, cut));
        let whole = 0;
        let boundary = 0;
        while (whole < frames.length && boundary + frames[whole]!.length <= cut) boundary += frames[whole++]!.length;
        expect(out.records).toEqual(JSON.parse(JSON.stringify(records.slice(0, whole))));
        if (cut === boundary) expect(out.stop).toBeUndefined();
        else expect(out.stop?.kind).toBe('torn');
        // At segment level the same cut is a tail (torn write), never corruption.
        const scan = scanSegmentBody(bytes.subarray(0, cut), 0);
        expect(scan.records).toHaveLength(whole);
        expect(scan.validEnd).toBe(boundary);
        if (cut !== boundary) expect(scan.failure).toMatchObject({ class: 'tail', offset: boundary });
      }),
    );
  });

  it('detects any single bit flip in a non-final record, and classes it as corruption', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 2, maxLength: 8 }), fc.nat(), fc.nat(), (records, whichSeed, bitSeed) => {
        const frames = records.map(encodeRecord);
        const victim = whichSeed % (frames.length - 1);
        const start = frames.slice(0, victim).reduce((n, f) => n + f.length, 0);
        const bit = bitSeed % (frames[victim]!.length * 8);
        const bytes = Buffer.concat(frames);
        bytes[start + (bit >> 3)]! ^= 1 << (bit & 7);

        const out = decodeAll(bytes);
        expect(out.records).toEqual(JSON.parse(JSON.stringify(records.slice(0, victim))));
        expect(out.stop).toBeDefined();
        const scan = scanSegmentBody(bytes, 0);
        expect(scan.failure).toMatchObject({ offset: start, class: 'corrupt' });
      }),
    );
  });

  it('calls a zero-filled tail, or a bad checksum ending at EOF, a tail; valid-checksum garbage is corruption', () => {
    const good = Buffer.concat([encodeRecord(commit('a')), encodeRecord(commit('b'))]);
    const zeros = scanSegmentBody(Buffer.concat([good, Buffer.alloc(300)]), 0);
    expect(zeros.records).toHaveLength(2);
    expect(zeros.failure).toMatchObject({ class: 'tail', offset: good.length });

    const last = encodeRecord(commit('c'));
    last[last.length - 3]! ^= 0x10;
    const badCrc = scanSegmentBody(Buffer.concat([good, last]), 0);
    expect(badCrc.failure).toMatchObject({ class: 'tail', offset: good.length });
    expect(badCrc.failure?.reason).toMatch(/crc-mismatch/);

    const notJson = frameWithPayload(Buffer.from('{not json}'));
    expect(decodeRecord(notJson, 0)).toMatchObject({ kind: 'corrupt', reason: 'bad-json', crcValid: true });
    expect(scanSegmentBody(Buffer.concat([good, notJson]), 0).failure).toMatchObject({ class: 'corrupt' });

    const notRecord = frameWithPayload(Buffer.from('{"type":"vote","gtrid":"x"}'));
    expect(decodeRecord(notRecord, 0)).toMatchObject({ kind: 'corrupt', reason: 'bad-record' });

    const badUtf8 = frameWithPayload(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect(decodeRecord(badUtf8, 0)).toMatchObject({ kind: 'corrupt', reason: 'bad-json', crcValid: true });
  });

  it('treats impossible lengths as damage, not as a request to read gigabytes', () => {
    const frame = encodeRecord(commit('a'));
    frame.writeUInt32LE(0, 0);
    expect(decodeRecord(frame, 0)).toMatchObject({ kind: 'corrupt', reason: 'bad-length' });
    frame.writeUInt32LE(MAX_RECORD_BYTES + 1, 0);
    expect(decodeRecord(frame, 0)).toMatchObject({ kind: 'corrupt', reason: 'bad-length' });
  });

  it('refuses to encode a record over the size limit', () => {
    const huge = { ...commit('a'), meta: { blob: 'x'.repeat(MAX_RECORD_BYTES) } };
    expect(() => encodeRecord(huge)).toThrow(RangeError);
  });
});
