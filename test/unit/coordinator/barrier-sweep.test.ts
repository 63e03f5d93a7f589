import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createCoordinator } from '../../../coordinator/create-coordinator.js';
import type { DecisionLog, SharedDecisionLog } from '../../../log/decision-log.js';
import { createMemoryLog } from '../../../log/memory/memory-log.js';
import { FakeDatabase, FakeParticipant } from '../../fakes/fake-participant.js';

const DAY = 86_400_000;
/** A gid of `coord`'s saga started at `ms` (uuid v7: the time is the first 12 hex digits). */
const gid = (coord: string, ms: number, n = 0) => `txc1.${coord}.${ms.toString(16).padStart(12, '0')}7${String(n).padStart(3, '0')}8000000000000000`;

async function coordinator(db: FakeDatabase, log: DecisionLog = createMemoryLog()) {
  return createCoordinator({
    id: 'sweeper',
    log: { type: 'memory' },
    decisionLog: log,
    participants: { a: { driver: 'custom', adapter: new FakeParticipant('a', db) } },
    recovery: { intervalMs: 0, onStart: false },
    barrierRetentionMs: 2 * DAY,
    logger: pino({ level: 'silent' }),
  });
}

describe('barrier row garbage collection', () => {
  it("deletes this coordinator's rows older than the retention, never a live saga's, another coordinator's or recent ones", async () => {
    const db = new FakeDatabase();
    const now = Date.now();
    const ended = gid('sweeper', now - 5 * DAY);
    const live = gid('sweeper', now - 9 * DAY, 1);
    const recent = gid('sweeper', now - DAY);
    const other = gid('sweeper2', now - 9 * DAY);
    for (const g of [ended, live, recent, other]) {
      db.barrier.set(`${g}|debit|action`, 'action');
      db.barrier.set(`${g}|debit|compensate`, 'compensate');
    }
    const log = createMemoryLog();
    // A saga still unfinished in the log (here: its definition is not registered in this
    // process, so recovery cannot resume it): its rows must stay, whatever their age.
    await log.append({ type: 'saga', gtrid: live, kind: 'defined', name: 'pay', input: null, coordinatorId: 'sweeper', host: 'h', pid: 1, startedAt: now - 9 * DAY }, true);
    const coord = await coordinator(db, log);
    const report = await coord.recover();
    expect(report.sagas.remaining.map((r) => r.id)).toEqual([live]);
    // The live saga is older than the ended one, so nothing from its start on is swept: the range
    // ends before it, and the ended saga (newer) waits for the next pass after the live one ends.
    expect(report.barrierRowsRemoved).toBe(0);
    expect([...db.barrier.keys()].map((k) => k.split('|')[0])).toContain(live);
    await coord.close();

    // Once it is gone from the log (ended, or here a fresh log), every old row of this coordinator goes.
    const next = await coordinator(db);
    expect((await next.recover()).barrierRowsRemoved).toBe(4);
    expect(new Set([...db.barrier.keys()].map((k) => k.split('|')[0]))).toEqual(new Set([recent, other]));
    // Swept at most every ten minutes: an immediate second pass does nothing.
    db.barrier.set(`${gid('sweeper', now - 4 * DAY)}|x|action`, 'action');
    expect((await next.recover()).barrierRowsRemoved).toBe(0);
    await next.close();
  });

  it('with a shared log, keeps every row from the oldest transaction of this id that another process is finishing', async () => {
    const db = new FakeDatabase();
    const now = Date.now();
    const old = gid('sweeper', now - 9 * DAY);
    const takenOver = gid('sweeper', now - 8 * DAY, 1);
    const newer = gid('sweeper', now - 7 * DAY, 2);
    for (const g of [old, takenOver, newer]) db.barrier.set(`${g}|s|action`, 'action');
    let oldest: string | undefined | Error = takenOver;
    const shared: SharedDecisionLog = {
      ...createMemoryLog(),
      shared: true,
      owner: 'sweeper',
      owns: () => true,
      takeOver: async () => ({ transactions: [], coordinators: [] }),
      releaseCoordinator: async () => undefined,
      history: async () => [],
      findByIdempotencyKey: async () => undefined,
      oldestUnended: async () => {
        if (oldest instanceof Error) throw oldest;
        return oldest;
      },
    };
    oldest = new Error('log unreachable');
    const blind = await coordinator(db, shared);
    // The log cannot say what another process is finishing: nothing is swept.
    expect((await blind.recover()).barrierRowsRemoved).toBe(0);
    await blind.close();
    oldest = takenOver;
    const coord = await coordinator(db, shared);
    expect((await coord.recover()).barrierRowsRemoved).toBe(1);
    expect([...db.barrier.keys()].map((k) => k.split('|')[0]).sort()).toEqual([takenOver, newer].sort());
    await coord.close();
  });
});
