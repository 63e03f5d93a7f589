import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { inspectLogDir } from '../../../log/file/inspect-log.js';
import { encodeRecord } from '../../../log/file/record-framing.js';
import { APPEND_MAGIC, segmentFileName } from '../../../log/file/segment-file.js';
import { verifyLogDir } from '../../../log/file/verify-log.js';
import { openFileLog } from '../../../log/file/file-log.js';
import { commit, end, listFiles, silent, tempDir } from './log-test-helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('txclog-verify-'));
});
afterEach(() => cleanup());

const seg = (n: number): string => join(dir, segmentFileName(n));

describe('verifyLogDir / inspectLogDir', () => {
  it('reports a healthy log, even while it is open and locked', async () => {
    const log = await openFileLog({ type: 'file', dir }, { logger: silent });
    await log.append(commit('a'), true);
    await log.append(commit('b'), true);
    await log.append(end('a'), true);
    const v = await verifyLogDir(dir);
    expect(v).toMatchObject({ ok: true, records: 3, live: 1, liveTransactions: 1 });
    expect(v.segments).toEqual([{ file: seg(1), records: 3, bytes: (await stat(seg(1))).size, kind: 'append', superseded: false }]);
    expect(v.tornTail).toBeUndefined();
    const i = await inspectLogDir(dir);
    expect(i.records.map((r) => [r.record.type, r.record.gtrid, r.offset])).toEqual([
      ['commit', 'a', 8],
      ['commit', 'b', 8 + encodeRecord(commit('a')).length],
      ['end', 'a', 8 + 2 * encodeRecord(commit('a')).length],
    ]);
    expect(i.live).toEqual([commit('b')]);
    await log.close();
  });

  it('calls a torn tail ok (with a note) and changes nothing', async () => {
    const full = Buffer.concat([APPEND_MAGIC, encodeRecord(commit('a')), encodeRecord(commit('b')).subarray(0, 17)]);
    await writeFile(seg(1), full);
    const v = await verifyLogDir(dir);
    expect(v.ok).toBe(true);
    expect(v.tornTail).toMatchObject({ file: seg(1), offset: full.length - 17, bytes: 17 });
    expect(v.notes.join('\n')).toMatch(/torn tail/);
    expect(v.live).toBe(1);
    expect((await readFile(seg(1))).equals(full)).toBe(true);
    expect(await listFiles(dir)).toEqual([segmentFileName(1)]);
  });

  it('reports corruption as not ok, with file, offset and reason; inspect reads past it', async () => {
    const a = encodeRecord(commit('a'));
    const b = encodeRecord(commit('b'));
    b[12]! ^= 0x01;
    await writeFile(seg(1), Buffer.concat([APPEND_MAGIC, a, b, encodeRecord(commit('c')), encodeRecord(end('a'))]));
    const v = await verifyLogDir(dir);
    expect(v.ok).toBe(false);
    expect(v.corruption).toMatchObject({ file: seg(1), offset: 8 + a.length });
    expect(v.corruption?.reason).toMatch(/crc-mismatch/);

    const i = await inspectLogDir(dir);
    expect(i.records.map((r) => r.record.gtrid)).toEqual(['a', 'c', 'a']);
    expect(i.gaps).toEqual([expect.objectContaining({ file: seg(1), offset: 8 + a.length, bytes: b.length })]);
    expect(i.corruption).toMatchObject({ offset: 8 + a.length });
    expect(i.live.map((r) => r.gtrid)).toEqual(['c']);
  });

  it('throws TXC_LOG_IO for a directory that does not exist', async () => {
    const err = await verifyLogDir(join(dir, 'missing')).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_LOG_IO')).toBe(true);
    const err2 = await inspectLogDir(join(dir, 'missing')).catch((e: unknown) => e);
    expect(TxcError.is(err2, 'TXC_LOG_IO')).toBe(true);
  });
});
