import { cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { openFileLog, type CompactionStep, type FileDecisionLog, type FileLogOptions } from '../../../log/file/file-log.js';
import { SNAPSHOT_MAGIC } from '../../../log/file/segment-file.js';
import { verifyLogDir } from '../../../log/file/verify-log.js';
import type { LogRecord } from '../../../log/log-record.js';
import { commit, countingSync, end, heuristic, listFiles, segmentBytes, silent, tempDir } from './log-test-helpers.js';

let dir: string;
let root: string;
let cleanup: () => Promise<void>;
const opened: FileDecisionLog[] = [];

beforeEach(async () => {
  ({ dir: root, cleanup } = await tempDir('txclog-compact-'));
  dir = join(root, 'log');
});
afterEach(async () => {
  for (const log of opened.splice(0)) await log.close().catch(() => undefined);
  await cleanup();
});

async function openLog(opts: FileLogOptions = {}, segmentBytesLimit?: number, at = dir): Promise<FileDecisionLog> {
  const log = await openFileLog(
    { type: 'file', dir: at, ...(segmentBytesLimit ? { segmentBytes: segmentBytesLimit } : {}) },
    { logger: silent, ...opts },
  );
  opened.push(log);
  return log;
}

async function liveAfterReopen(at = dir): Promise<readonly LogRecord[]> {
  const log = await openLog({}, undefined, at);
  const live = log.live();
  await log.close();
  return live;
}

describe('compaction', () => {
  it('shrinks 10,000 finished transactions plus 3 unfinished to a tiny log that replays to the 3', async () => {
    const log = await openLog({}, 64 * 1024 * 1024);
    for (let chunk = 0; chunk < 10; chunk++) {
      const batch: Array<Promise<void>> = [];
      for (let i = chunk * 1000; i < (chunk + 1) * 1000; i++) {
        batch.push(log.append(commit(`done-${i}`), true), log.append(end(`done-${i}`), false));
        if (i % 4000 === 1234) batch.push(log.append(commit(`open-${i}`), true));
      }
      await Promise.all(batch);
    }
    const expected = ['open-1234', 'open-5234', 'open-9234'];
    expect(log.live().map((r) => r.gtrid)).toEqual(expected);
    const before = await segmentBytes(dir);
    expect(before).toBeGreaterThan(2_000_000);

    await log.compact();
    const after = await segmentBytes(dir);
    expect(after).toBeLessThan(2048);
    const files = (await listFiles(dir)).filter((f) => f.startsWith('seg-'));
    expect(files).toHaveLength(2);
    expect((await readFile(join(dir, files[0]!))).subarray(0, 8).equals(SNAPSHOT_MAGIC)).toBe(true);
    expect(log.live().map((r) => r.gtrid)).toEqual(expected);
    await log.close();
    expect((await liveAfterReopen()).map((r) => r.gtrid)).toEqual(expected);
  });

  it('compacts automatically when the active segment passes segmentBytes', async () => {
    const log = await openLog({}, 8 * 1024);
    for (let i = 0; i < 400; i++) {
      await log.append(commit(`t${i}`), true);
      if (i % 10 !== 0) await log.append(end(`t${i}`), false);
    }
    await log.compact(); // also waits for any automatic compaction still running
    expect(log.stats().compactions).toBeGreaterThan(3);
    expect(log.stats().segments).toBeLessThanOrEqual(3);
    const expected = Array.from({ length: 40 }, (_, i) => `t${i * 10}`);
    expect(log.live().map((r) => r.gtrid)).toEqual(expected);
    await log.close();
    expect((await liveAfterReopen()).map((r) => r.gtrid)).toEqual(expected);
  });

  it('loses nothing when compactions race with concurrent appends', async () => {
    const log = await openLog({}, 4 * 1024);
    const expected = new Set<string>();
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        const g = `w${w}-${i}`;
        await log.append(commit(g), true);
        if (i % 3 === 0) {
          await log.append(heuristic(g), i % 2 === 0);
          expected.add(g);
        } else {
          await log.append(end(g), i % 2 === 0);
        }
      }
    };
    const compactor = async (): Promise<void> => {
      for (let i = 0; i < 15; i++) {
        await log.compact();
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    await Promise.all([...Array.from({ length: 16 }, (_, w) => worker(w)), compactor(), compactor()]);
    expect(log.stats().compactions).toBeGreaterThan(5);
    const live = log.live();
    expect(new Set(live.map((r) => r.gtrid))).toEqual(expected);
    expect(live).toHaveLength(expected.size * 2);
    await log.close();
    expect(await liveAfterReopen()).toEqual(live);
  });

  it('replays to the same live set after a crash at any step of a compaction', async () => {
    // Two compactions, so the second has several superseded segments to delete, and records
    // appended after the roll (which live only in the new segment).
    const images: Array<{ step: CompactionStep; at: string; expected: readonly LogRecord[] }> = [];
    let capture = false;
    let log: FileDecisionLog;
    const onCompactionStep = async (step: CompactionStep): Promise<void> => {
      if (!capture) return;
      if (step === 'rolled') {
        await log.append(commit('after-roll'), true);
        await log.append(end('x1'), false);
        await log.append(heuristic('x2'), true);
      }
      const at = join(root, `crash-${images.length}-${step}`);
      await cp(dir, at, { recursive: true, filter: (src) => !src.endsWith('LOCK') });
      images.push({ step, at, expected: log.live() });
    };
    log = await openLog({ onCompactionStep });
    for (const g of ['x1', 'x2', 'x3', 'gone']) await log.append(commit(g), true);
    await log.append(end('gone'), false);
    await log.compact();
    await log.append(commit('x4'), true);
    await log.append(end('x3'), true);
    capture = true;
    await log.compact();
    capture = false;
    const final = log.live();
    expect(final.map((r) => `${r.type}:${r.gtrid}`)).toEqual([
      'commit:x2',
      'commit:x4',
      'commit:after-roll',
      'heuristic:x2',
    ]);
    await log.close();

    const steps = images.map((i) => i.step);
    expect(steps).toEqual(['rolled', 'snapshot-synced', 'snapshot-renamed', 'segment-deleted', 'segment-deleted', 'done']);
    expect((await readdir(images[1]!.at)).some((f) => f.endsWith('.tmp'))).toBe(true);
    for (const image of images) {
      const verified = await verifyLogDir(image.at);
      expect(verified.ok).toBe(true);
      expect(await liveAfterReopen(image.at), `crash at ${image.step}`).toEqual(final);
      // Opening finished the job: no leftovers, and a second open still agrees.
      expect((await readdir(image.at)).some((f) => f.endsWith('.tmp'))).toBe(false);
      expect((await verifyLogDir(image.at)).segments.every((s) => !s.superseded)).toBe(true);
      expect(await liveAfterReopen(image.at)).toEqual(final);
    }
    expect(await liveAfterReopen()).toEqual(final);
  });

  it('a failed snapshot write rejects compact() with TXC_LOG_IO but leaves the log usable', async () => {
    const sync = countingSync();
    const onCompactionStep = (step: CompactionStep): void => {
      if (step === 'rolled') sync.failNext('ENOSPC');
    };
    const log = await openLog({ fsync: sync.fsync, onCompactionStep });
    await log.append(commit('a'), true);
    await log.append(commit('b'), true);
    const err = await log.compact().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(TxcError.is(err, 'TXC_LOG_IO')).toBe(true);
    expect((await listFiles(dir)).some((f) => f.endsWith('.tmp'))).toBe(false);
    await log.append(end('a'), true);
    await log.append(commit('c'), true);
    expect(log.live().map((r) => r.gtrid)).toEqual(['b', 'c']);
    await log.close();
    expect((await liveAfterReopen()).map((r) => r.gtrid)).toEqual(['b', 'c']);
  });
});
