/**
 * Decision-log damage: torn tails at every byte of the last record, a flipped bit at every bit
 * of an earlier record, and a full disk under a live coordinator. The rule checked throughout:
 * an acknowledged decision is never lost, and damage is reported (warning, verify note,
 * TXC_LOG_CORRUPT), never silently skipped.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { TxcError } from '../../coordinator/errors.js';
import { openFileLog } from '../../log/file/file-log.js';
import { verifyLogDir } from '../../log/file/verify-log.js';
import type { CommitRecord, EndRecord, LogRecord } from '../../log/log-record.js';
import { FakeDatabase, FakeParticipant } from '../fakes/fake-participant.js';
import { CLI, runNode } from '../integration/run-node.js';
import { fullDiskScenario } from './full-disk-scenario.js';

const silent = pino({ level: 'silent' });

/** A logger that keeps its lines, so a test can see the warning a torn tail must produce. */
function captureLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

function commitRecord(i: number): CommitRecord {
  return {
    type: 'commit',
    gtrid: `txc1.logdmg.0190a1b2-c3d4-7e5f-8a9b-${String(i).padStart(12, '0')}`,
    branches: [
      { participant: 'pg', bqual: 'b1', localTxId: String(7000 + i) },
      { participant: 'maria', bqual: 'b2' },
    ],
    coordinatorId: 'logdmg',
    host: 'fault-host',
    pid: 4242,
    meta: { transfer: `t-${i}` },
    startedAt: 1_760_000_000_000 + i,
    decidedAt: 1_760_000_000_100 + i,
  };
}

const endRecord = (i: number): EndRecord => ({ type: 'end', gtrid: commitRecord(i).gtrid, at: 1_760_000_000_200 + i });

/** A log directory with known records, each acknowledged (forced append resolved), and where each frame starts. */
interface BuiltLog {
  readonly dir: string;
  readonly segment: string;
  /** Frame start offsets in the segment, one per record, plus the end of the file last. */
  readonly offsets: readonly number[];
  readonly records: readonly LogRecord[];
  readonly pristine: Buffer;
}

async function buildLog(root: string, records: readonly LogRecord[]): Promise<BuiltLog> {
  const dir = join(root, 'txlog');
  const log = await openFileLog({ type: 'file', dir }, { logger: silent });
  const offsets: number[] = [log.stats().activeBytes];
  for (const r of records) {
    await log.append(r, true);
    offsets.push(log.stats().activeBytes);
  }
  const segment = log.stats().activeSegment;
  await log.close();
  return { dir, segment, offsets, records, pristine: readFileSync(segment) };
}

/** The gtrids a replay must consider live (committed, not ended). */
function liveGtrids(records: readonly LogRecord[]): string[] {
  const ended = new Set(records.filter((r) => r.type === 'end').map((r) => r.gtrid));
  return [...new Set(records.filter((r) => r.type === 'commit' && !ended.has(r.gtrid)).map((r) => r.gtrid))].sort();
}

const root = mkdtempSync(join(tmpdir(), 'txc-logdmg-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Five committed decisions (two of them ended) and a last commit whose write gets torn.
const RECORDS: LogRecord[] = [commitRecord(1), commitRecord(2), endRecord(1), commitRecord(3), commitRecord(4), endRecord(3), commitRecord(5)];

describe('decision log damage', () => {
  it('torn at every byte offset of the last record: reopens, earlier decisions intact, the tear reported', async () => {
    const t0 = Date.now();
    const built = await buildLog(join(root, 'torn'), RECORDS);
    const lastStart = built.offsets[built.offsets.length - 2]!;
    const fileEnd = built.offsets[built.offsets.length - 1]!;
    const before = liveGtrids(RECORDS.slice(0, -1));
    const all = liveGtrids(RECORDS);
    let tornReported = 0;
    for (let cut = lastStart; cut <= fileEnd; cut++) {
      writeFileSync(built.segment, built.pristine);
      truncateSync(built.segment, cut);
      const v = await verifyLogDir(built.dir);
      expect(v.ok, `verify at cut ${cut}`).toBe(true);
      const torn = cut > lastStart && cut < fileEnd;
      if (torn) {
        // A partial frame must be named as a torn tail, at the frame's start: not read as a record, not ignored.
        expect(v.tornTail, `cut ${cut}`).toMatchObject({ file: built.segment, offset: lastStart, bytes: cut - lastStart });
        expect(v.notes.some((n) => n.includes('torn tail')), `cut ${cut}`).toBe(true);
      } else {
        expect(v.tornTail, `cut ${cut}`).toBeUndefined();
      }
      const { logger, lines } = captureLogger();
      const log = await openFileLog({ type: 'file', dir: built.dir }, { logger });
      try {
        expect(
          [...new Set(log.live().filter((r) => r.type === 'commit').map((r) => r.gtrid))].sort(),
          `live after cut ${cut}`,
        ).toEqual(cut === fileEnd ? all : before);
        const warned = lines.some((l) => l['level'] === 40 && String(l['msg']).includes('torn') && l['offset'] === lastStart);
        expect(warned, `torn-tail warning at cut ${cut}`).toBe(torn);
        if (warned) tornReported++;
        // The tear was cut off: the next append lands where the torn frame began, and reads back.
        await log.append(commitRecord(99), true);
      } finally {
        await log.close();
      }
      expect(statSync(built.segment).size).toBeGreaterThan(cut === fileEnd ? fileEnd : lastStart);
      const again = await openFileLog({ type: 'file', dir: built.dir }, { logger: silent });
      try {
        expect(again.live().some((r) => r.gtrid === commitRecord(99).gtrid)).toBe(true);
      } finally {
        await again.close();
      }
    }
    // The CLI says the same as verifyLogDir: a torn tail is a note and exit 0.
    for (const cut of [lastStart + 1, lastStart + 8, fileEnd - 1]) {
      writeFileSync(built.segment, built.pristine);
      truncateSync(built.segment, cut);
      const r = await runNode(CLI, ['log', 'verify', '--dir', built.dir, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('torn');
    }
    console.log(
      `[faults/log-damage] torn tail: ${fileEnd - lastStart + 1} cuts of a ${fileEnd - lastStart}-byte record, ${tornReported} reported as torn, ${before.length} earlier decisions kept every time (${Date.now() - t0} ms)`,
    );
  });

  it('a flipped bit anywhere in an earlier record: TXC_LOG_CORRUPT with file and offset, verify exit 1, coordinator refuses', async () => {
    const t0 = Date.now();
    const built = await buildLog(join(root, 'flip'), RECORDS);
    // Record 3 (index 2, an end record) sits in the middle; record 2 (a commit) is checked bit by bit too.
    const victims = [1, 3];
    let flips = 0;
    let opens = 0;
    for (const v of victims) {
      const start = built.offsets[v]!;
      const end = built.offsets[v + 1]!;
      for (let byte = start; byte < end; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const damaged = Buffer.from(built.pristine);
          damaged[byte] = damaged[byte]! ^ (1 << bit);
          writeFileSync(built.segment, damaged);
          flips++;
          const ver = await verifyLogDir(built.dir);
          expect(ver.ok, `verify, flip ${byte}.${bit}`).toBe(false);
          expect(ver.corruption, `flip ${byte}.${bit}`).toMatchObject({ file: built.segment, offset: start });
          // Opening is the path recovery takes: it must refuse, naming the place. It costs a lock
          // and a directory fsync, so it runs for one bit of every byte (verify covers them all).
          if (bit !== byte % 8) continue;
          opens++;
          let err: unknown;
          try {
            const log = await openFileLog({ type: 'file', dir: built.dir }, { logger: silent });
            await log.close();
          } catch (e) {
            err = e;
          }
          expect(TxcError.is(err, 'TXC_LOG_CORRUPT'), `open after flip ${byte}.${bit}: ${String(err)}`).toBe(true);
          expect((err as TxcError).details).toMatchObject({ file: built.segment, offset: start });
          expect((err as TxcError).message).toContain(built.segment);
        }
      }
    }
    // One flip through the CLI and through createCoordinator (a coordinator must not start on a damaged log).
    const damaged = Buffer.from(built.pristine);
    const mid = built.offsets[1]! + 20;
    damaged[mid] = damaged[mid]! ^ 0x10;
    writeFileSync(built.segment, damaged);
    const r = await runNode(CLI, ['log', 'verify', '--dir', built.dir, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toContain(String(built.offsets[1]));
    const db = new FakeDatabase();
    let startErr: unknown;
    try {
      const coord = await createCoordinator({
        id: 'logdmg',
        log: { type: 'file', dir: built.dir },
        participants: { a: { driver: 'custom', adapter: new FakeParticipant('a', db) } },
        recovery: { intervalMs: 0 },
        logger: silent,
      });
      await coord.close();
    } catch (e) {
      startErr = e;
    }
    expect(TxcError.is(startErr, 'TXC_LOG_CORRUPT'), String(startErr)).toBe(true);
    expect((startErr as TxcError).details).toMatchObject({ file: built.segment, offset: built.offsets[1] });
    // The damaged file is left exactly as it was: nothing "repaired" it behind the operator's back.
    expect(readFileSync(built.segment).equals(damaged)).toBe(true);
    expect(readdirSync(built.dir).filter((f) => f.startsWith('seg-'))).toHaveLength(1);
    console.log(`[faults/log-damage] bit flips: ${flips} single-bit flips in 2 earlier records, every one reported by verifyLogDir and ${opens} of them opened: all refused with TXC_LOG_CORRUPT at the record's offset (${Date.now() - t0} ms)`);
  });

  it('a full disk under a live coordinator: TXC_LOG_IO, rolled back, nothing acknowledged lost', async () => {
    await fullDiskScenario(root);
  });
});

