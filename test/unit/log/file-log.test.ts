import { open, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { fdatasyncFd } from '../../../log/file/durable-io.js';
import { openFileLog, type FileDecisionLog } from '../../../log/file/file-log.js';
import { encodeRecord } from '../../../log/file/record-framing.js';
import { APPEND_MAGIC, segmentFileName } from '../../../log/file/segment-file.js';
import type { LogRecord } from '../../../log/log-record.js';
import { captureLogger, commit, countingSync, end, heuristic, listFiles, silent, tempDir } from './log-test-helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
const opened: FileDecisionLog[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  for (const log of opened.splice(0)) await log.close().catch(() => undefined);
  await cleanup();
});

async function openLog(opts: Parameters<typeof openFileLog>[1] = {}, segmentBytes?: number): Promise<FileDecisionLog> {
  const log = await openFileLog(
    { type: 'file', dir, ...(segmentBytes ? { segmentBytes } : {}) },
    { logger: silent, ...opts },
  );
  opened.push(log);
  return log;
}

const seg1 = (): string => join(dir, segmentFileName(1));
const gtrids = (recs: readonly LogRecord[]): string[] => recs.map((r) => `${r.type}:${r.gtrid}`);

async function expectCode(p: Promise<unknown>, code: string): Promise<TxcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(TxcError.is(err), `expected ${code}, got ${String(err)}`).toBe(true);
  expect((err as TxcError).code).toBe(code);
  return err as TxcError;
}

describe('file log basics', () => {
  it('creates the directory, a segment with its magic header, and a lock; replays on reopen', async () => {
    const log = await openLog();
    expect(await listFiles(dir)).toEqual(['LOCK', segmentFileName(1)]);
    expect((await readFile(seg1())).subarray(0, 8).equals(APPEND_MAGIC)).toBe(true);
    await log.append(commit('a'), true);
    await log.append(commit('b'), true);
    await log.append(heuristic('a'), true);
    await log.append(end('b'), false);
    expect(gtrids(log.live())).toEqual(['commit:a', 'heuristic:a']);
    await log.close();
    expect(await listFiles(dir)).toEqual([segmentFileName(1)]);

    const again = await openLog();
    expect(again.live()).toEqual([commit('a'), heuristic('a')]);
    await again.append(end('a'), true);
    expect(again.live()).toEqual([]);
  });

  it('keeps live records in global append order across transactions', async () => {
    const log = await openLog();
    await log.append(commit('a'), true);
    await log.append(commit('b'), true);
    await log.append(heuristic('a'), true);
    expect(gtrids(log.live())).toEqual(['commit:a', 'commit:b', 'heuristic:a']);
    await log.close();
    expect(gtrids((await openLog()).live())).toEqual(['commit:a', 'commit:b', 'heuristic:a']);
  });

  it('rejects appends and compaction after close with TXC_LOG_CLOSED, and close is idempotent', async () => {
    const log = await openLog();
    await log.close();
    await log.close();
    await expectCode(log.append(commit('a'), true), 'TXC_LOG_CLOSED');
    await expectCode(log.compact(), 'TXC_LOG_CLOSED');
  });

  it('close waits for queued appends and makes them durable', async () => {
    const sync = countingSync(fdatasyncFd);
    const log = await openLog({ fsync: sync.fsync });
    const pending = Array.from({ length: 50 }, (_, i) => log.append(commit(`g${i}`), i % 2 === 0));
    const closing = log.close();
    await Promise.all(pending);
    await closing;
    expect(sync.calls()).toBeGreaterThan(0);
    expect((await openLog()).live()).toHaveLength(50);
  });

  it('rejects invalid configuration', async () => {
    await expectCode(openFileLog({ type: 'file', dir: '' }, { logger: silent }), 'TXC_CONFIG_INVALID');
    await expectCode(openFileLog({ type: 'file', dir, segmentBytes: -1 }, { logger: silent }), 'TXC_CONFIG_INVALID');
  });
});

describe('torn tail', () => {
  // About 150 opens and closes of a real directory (lock file, directory fsyncs): seconds of I/O
  // on an idle machine, several times that on a loaded one, so it gets its own timeout.
  it('cuts a torn final record at every byte offset, keeps the earlier records, and appends after it', async () => {
    const first = await openLog();
    const before = [commit('a'), commit('b', 3), heuristic('a'), commit('c')];
    for (const r of before) await first.append(r, true);
    await first.close();
    const start = (await stat(seg1())).size;
    const second = await openLog();
    await second.append(commit('torn-one', 2), true);
    await second.close();
    const full = await readFile(seg1());
    expect(full.length).toBeGreaterThan(start + 8);

    const noSync = countingSync();
    for (let len = start; len < full.length; len++) {
      await writeFile(seg1(), full.subarray(0, len));
      const { logger, lines } = captureLogger();
      const log = await openFileLog({ type: 'file', dir }, { logger, fsync: noSync.fsync });
      expect(log.live(), `cut at ${len}`).toEqual(before);
      expect((await stat(seg1())).size).toBe(start);
      const warned = lines.filter((l) => l['level'] === 40 && /torn/.test(String(l['msg'])));
      expect(warned).toHaveLength(len === start ? 0 : 1);
      if (len > start) expect(warned[0]).toMatchObject({ file: seg1(), offset: start, bytes: len - start });
      await log.append(commit('after'), true);
      await log.close();
      if (len % 8 === 0 || len === full.length - 1) {
        // Reopening after the append is slow-ish (lock + directory fsyncs); a sample suffices.
        const reopened = await openFileLog({ type: 'file', dir }, { logger: silent, fsync: noSync.fsync });
        expect(gtrids(reopened.live())).toEqual([...gtrids(before), 'commit:after']);
        await reopened.close();
      }
      await truncate(seg1(), start);
    }
  }, 60_000);

  it('treats a zero-filled tail and a final record with a bad checksum as torn', async () => {
    const log = await openLog();
    await log.append(commit('a'), true);
    await log.append(commit('b'), true);
    await log.close();
    const full = await readFile(seg1());
    await writeFile(seg1(), Buffer.concat([full, Buffer.alloc(4096)]));
    expect(gtrids((await reopen()).live())).toEqual(['commit:a', 'commit:b']);
    expect((await readFile(seg1())).equals(full)).toBe(true);

    const flipped = Buffer.from(full);
    flipped[flipped.length - 5]! ^= 0x04; // inside the last record's payload, which runs exactly to EOF
    await writeFile(seg1(), flipped);
    expect(gtrids((await reopen()).live())).toEqual(['commit:a']);
  });

  it('repairs a last segment whose header was cut', async () => {
    await writeFile(seg1(), Buffer.concat([APPEND_MAGIC, encodeRecord(commit('a'))]));
    await writeFile(join(dir, segmentFileName(2)), APPEND_MAGIC.subarray(0, 3));
    const log = await openLog();
    expect(gtrids(log.live())).toEqual(['commit:a']);
    await log.append(commit('b'), true);
    await log.close();
    expect((await readFile(join(dir, segmentFileName(2)))).subarray(0, 8).equals(APPEND_MAGIC)).toBe(true);
    expect(gtrids((await reopen()).live())).toEqual(['commit:a', 'commit:b']);
  });

  async function reopen(): Promise<FileDecisionLog> {
    const log = await openLog();
    await log.close();
    return log;
  }
});

describe('corruption', () => {
  async function writeThree(): Promise<number[]> {
    const log = await openLog();
    const offsets: number[] = [];
    for (const g of ['a', 'b', 'c']) {
      offsets.push(log.stats().activeBytes);
      await log.append(commit(g), true);
    }
    await log.close();
    return offsets;
  }

  it.each([
    ['payload', 20],
    ['length field', 1],
    ['crc field', 5],
  ])('a flipped bit in an earlier record (%s) throws TXC_LOG_CORRUPT naming file and offset', async (_name, at) => {
    const offsets = await writeThree();
    const fh = await open(seg1(), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offsets[1]! + at);
    b[0]! ^= 0x08;
    await fh.write(b, 0, 1, offsets[1]! + at);
    await fh.close();
    const err = await expectCode(openFileLog({ type: 'file', dir }, { logger: silent }), 'TXC_LOG_CORRUPT');
    expect(err.details).toMatchObject({ file: seg1(), offset: offsets[1] });
    expect(err.message).toContain(seg1());
    expect(err.message).toContain(`offset ${offsets[1]}`);
    expect(await listFiles(dir)).not.toContain('LOCK');
  });

  it('a torn record in a segment that is not the last is corruption', async () => {
    const frame = encodeRecord(commit('a'));
    await writeFile(seg1(), Buffer.concat([APPEND_MAGIC, frame, frame.subarray(0, 10)]));
    await writeFile(join(dir, segmentFileName(2)), Buffer.concat([APPEND_MAGIC, encodeRecord(commit('b'))]));
    const err = await expectCode(openFileLog({ type: 'file', dir }, { logger: silent }), 'TXC_LOG_CORRUPT');
    expect(err.details).toMatchObject({ file: seg1(), offset: 8 + frame.length });
  });

  it('a bad magic header is corruption at offset 0', async () => {
    await writeFile(seg1(), Buffer.concat([Buffer.from('NOTALOG!'), encodeRecord(commit('a'))]));
    const err = await expectCode(openFileLog({ type: 'file', dir }, { logger: silent }), 'TXC_LOG_CORRUPT');
    expect(err.details).toMatchObject({ file: seg1(), offset: 0 });
  });

  it('garbage between records, or a valid-checksum non-record at the tail, is corruption', async () => {
    const a = encodeRecord(commit('a'));
    await writeFile(seg1(), Buffer.concat([APPEND_MAGIC, a, Buffer.from('garbage!!'), encodeRecord(commit('b'))]));
    const err = await expectCode(openFileLog({ type: 'file', dir }, { logger: silent }), 'TXC_LOG_CORRUPT');
    expect(err.details).toMatchObject({ offset: 8 + a.length });
  });
});

describe('group commit', () => {
  it('makes 200 concurrent forced appends share a few fsyncs, and all replay', async () => {
    const sync = countingSync(fdatasyncFd);
    const log = await openLog({ fsync: sync.fsync });
    const base = sync.calls();
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(commit(`g${i}`), true)));
    const used = sync.calls() - base;
    expect(used).toBeGreaterThanOrEqual(1);
    expect(used).toBeLessThanOrEqual(5);
    expect(log.stats().batches).toBeLessThanOrEqual(5);
    await log.close();
    const again = await openLog();
    expect(again.live().map((r) => r.gtrid)).toEqual(Array.from({ length: 200 }, (_, i) => `g${i}`));
  });

  /** A log whose first flush after opening waits for `release()`; `calls()` counts flushes of appends. */
  async function logWithHeldFirstFlush(): Promise<{ log: FileDecisionLog; calls: () => number; release: () => void }> {
    let release: () => void = () => undefined;
    let calls = 0;
    let counting = false; // opening syncs the new segment's header; count appends only
    const log = await openLog({
      fsync: async () => {
        if (!counting) return;
        calls++;
        if (calls === 1) await new Promise<void>((r) => (release = r));
      },
    });
    counting = true;
    return { log, calls: () => calls, release: () => release() };
  }

  it('batches appends that arrive while a flush is in progress into the next flush', async () => {
    const { log, calls, release } = await logWithHeldFirstFlush();
    const first = log.append(commit('first'), true);
    await new Promise((r) => setTimeout(r, 10));
    expect(calls()).toBe(1);
    const rest = Array.from({ length: 100 }, (_, i) => log.append(commit(`g${i}`), true));
    await new Promise((r) => setTimeout(r, 10));
    expect(calls()).toBe(1); // nobody flushes while the first flush is in flight
    release();
    await Promise.all([first, ...rest]);
    expect(calls()).toBe(2);
  });

  it('acknowledges a large durable batch oldest first, in slices, while the next batch is already flushing', async () => {
    const { log, calls, release } = await logWithHeldFirstFlush();
    const acked: string[] = [];
    let flushesWhenLastAcked = 0;
    let followUp: Promise<void> | undefined;
    const first = Array.from({ length: 300 }, (_, i) =>
      log.append(commit(`g${i}`), true).then(() => {
        acked.push(`g${i}`);
        // The first appender to hear back goes on to its next transaction, as a coordinator does.
        if (i === 0) followUp = log.append(commit('next'), true);
        if (i === 299) flushesWhenLastAcked = calls();
      }),
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(calls()).toBe(1);
    release();
    await Promise.all(first);
    await followUp;
    expect(acked).toEqual(Array.from({ length: 300 }, (_, i) => `g${i}`));
    // The follow-up's flush started before the last waiter of the first batch was told: the disk
    // works on the next batch while the thread is still handing out acknowledgements.
    expect(flushesWhenLastAcked).toBe(2);
    await log.close();
  });

  it('has acknowledged every durable append by the time close resolves', async () => {
    const log = await openLog();
    let acked = 0;
    for (let i = 0; i < 5000; i++) void log.append(commit(`g${i}`), true).then(() => acked++);
    await log.close();
    expect(acked).toBe(5000);
  });

  it('resolves unforced appends without waiting for the flush, and forces none of its own', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    let counting = false;
    const log = await openLog({
      fsync: async () => {
        if (!counting) return;
        calls++;
        await gate;
      },
    });
    counting = true;
    let forcedDone = false;
    const forced = log.append(commit('a'), true).then(() => (forcedDone = true));
    await log.append(commit('b'), false);
    expect(forcedDone).toBe(false);
    release();
    await forced;
    const before = calls;
    await log.append(end('a'), false);
    expect(calls).toBe(before);
    expect(gtrids(log.live())).toEqual(['commit:b']);
  });
});

describe('fsync failure', () => {
  it.each(['EIO', 'ENOSPC'])('%s: waiting appends reject TXC_LOG_IO, and so does everything after', async (code) => {
    const sync = countingSync(fdatasyncFd);
    const log = await openLog({ fsync: sync.fsync });
    await log.append(commit('ok'), true);
    sync.failNext(code);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.append(commit(`g${i}`), true)));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as TxcError;
      expect(err.code).toBe('TXC_LOG_IO');
      expect((err.cause as NodeJS.ErrnoException).code).toBe(code);
      expect(err.details['durability']).toBe('not-written');
    }
    // The disk is fine again, but the log must not pretend: it refuses until reopened.
    const later = await expectCode(log.append(commit('later'), true), 'TXC_LOG_IO');
    expect((later.cause as NodeJS.ErrnoException).code).toBe(code);
    await expectCode(log.append(commit('later2'), false), 'TXC_LOG_IO');
    expect(() => log.live()).toThrow(TxcError);
    await expectCode(log.compact(), 'TXC_LOG_IO');
    await log.close();
    expect(await listFiles(dir)).not.toContain('LOCK');

    // The failed batch was cut off again, so the rejection is the truth: reopening shows only
    // what was acknowledged, and the log works again.
    const again = await openLog();
    expect(again.live()).toEqual([commit('ok')]);
    await again.append(commit('fresh'), true);
  });

  it('reports durability unknown when the failed batch cannot be cut off either', async () => {
    const sync = countingSync(fdatasyncFd);
    const log = await openLog({ fsync: sync.fsync });
    await log.append(commit('ok'), true);
    sync.failNext('EIO', 2); // the flush, then the sync after truncating the batch away
    const err = await expectCode(log.append(commit('maybe'), true), 'TXC_LOG_IO');
    expect(err.details['durability']).toBe('unknown');
    expect(err.message).toMatch(/may or may not be in the log/);
    await log.close();
    // Either outcome is a consistent log; which one, only reopening tells.
    const again = await openLog();
    expect([['ok'], ['ok', 'maybe']]).toContainEqual(again.live().map((r) => r.gtrid));
  });
});
