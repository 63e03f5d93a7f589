import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import type { DecisionLog } from '../../../log/decision-log.js';
import { mixedWorld } from './mixed-world.js';

const work = async (tx: { query: (p: string, sql: string, params?: readonly unknown[]) => Promise<unknown> }) => {
  await tx.query('a', 'set x', [1]);
  await tx.query('c', 'set z', [3]);
};

/** A log that loses every unforced record, as a crash before the next flush would. */
function forgetful(log: DecisionLog): DecisionLog {
  return {
    append: (r, force) => (force ? log.append(r, force) : Promise.resolve()),
    live: () => log.live(),
    compact: () => log.compact(),
    close: () => log.close(),
  };
}

describe('commit-marker last resource', () => {
  it('a crash before the marker commit: recovery finds no marker, writes an abort marker and rolls back', async () => {
    const w = mixedWorld();
    // With one participant that cannot prepare, branch qualifiers name it as the marker holder.
    const crashed = await w.coordinator({ crashAt: { point: 'before-marker' }, only: ['a', 'b', 'c'] });
    void crashed.transaction(work).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    expect(w.db.a.prepared.size).toBe(1);
    const [xid] = [...w.db.a.prepared.values()].map((p) => p.xid);
    expect(xid?.bqual).toMatch(/^b\d+~c$/);

    const coord = await w.coordinator();
    const report = await coord.recover();
    expect(report.rolledBack).toBe(1);
    expect(w.db.a.prepared.size).toBe(0);
    expect(w.db.a.data.has('x')).toBe(false);
    expect(w.db.c.data.has('z')).toBe(false);
    expect(w.db.c.markers.get(xid!.gtrid)?.outcome).toBe('abort');
    await coord.close();
  });

  it('a crash after the marker commit, with the unforced commit record lost: the marker decides commit', async () => {
    const w = mixedWorld();
    const crashed = await w.coordinator({ crashAt: { point: 'after-decision' }, decisionLog: forgetful(w.log) });
    void crashed.transaction(work).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    expect(w.log.live()).toHaveLength(0);
    expect(w.db.c.data.get('z')).toBe(3);
    expect(w.db.a.prepared.size).toBe(1);

    const coord = await w.coordinator();
    const inDoubt = await coord.inDoubt();
    expect(inDoubt[0]).toMatchObject({ decision: 'marker', markerIn: ['c', 'd'] });
    const report = await coord.recover();
    expect(report.committed).toBe(1);
    expect(w.db.a.data.get('x')).toBe(1);
    // No prepared branch left anywhere: the commit marker is swept.
    expect(report.markersRemoved).toBe(1);
    expect(w.db.c.markers.size).toBe(0);
    // c answered commit first, so d was never asked (no abort marker written there).
    expect(w.db.d.markers.size).toBe(0);
    await coord.close();
  });

  it('a marker commit whose answer was lost but which did commit: settled by reading the marker, committed', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    w.db.c.lostAfterCommit = 1;
    const r = await coord.transaction(work);
    expect(r.mode).toBe('last-resource');
    expect([w.db.a.data.get('x'), w.db.c.data.get('z')]).toEqual([1, 3]);
    await coord.close();
  });

  it('a marker commit that failed before applying: settled as aborted, rolled back everywhere', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    w.db.c.failNext('commitOnePhase', new TxcError('TXC_OUTCOME_UNKNOWN', 'injected: lost before COMMIT arrived'));
    const err = await coord.transaction(work).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_COMMIT_FAILED')).toBe(true);
    expect(w.db.a.data.has('x')).toBe(false);
    expect(w.db.a.prepared.size).toBe(0);
    expect(w.db.c.data.has('z')).toBe(false);
    expect(w.db.c.markers.size).toBe(1);
    await coord.close();
  });

  it('a refused last-resource commit rolls back the prepared branches', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    w.db.c.failNext('commitOnePhase', new TxcError('TXC_COMMIT_FAILED', 'injected: deferred constraint'));
    const err = await coord.transaction(work).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_COMMIT_FAILED')).toBe(true);
    expect(w.db.a.prepared.size).toBe(0);
    expect(w.db.a.data.has('x')).toBe(false);
    await coord.close();
  });

  it('a failing prepare of another branch rolls back the last resource without any marker', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    w.db.a.failNext('prepare', new TxcError('TXC_PREPARE_FAILED', 'injected'));
    await expect(coord.transaction(work)).rejects.toMatchObject({ code: 'TXC_PREPARE_FAILED' });
    expect(w.db.c.data.has('z')).toBe(false);
    expect(w.db.c.markers.size).toBe(0);
    await coord.close();
  });

  it('a crash after phase two leaves only the marker and the record: recovery ends it and sweeps the marker', async () => {
    const w = mixedWorld();
    const crashed = await w.coordinator({ crashAt: { point: 'before-end' } });
    void crashed.transaction(work).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    expect(w.db.a.data.get('x')).toBe(1);
    const coord = await w.coordinator();
    const report = await coord.recover();
    expect(report.ended).toBe(1);
    await coord.close();
    expect(w.db.c.markers.size).toBe(0);
    expect(w.log.live()).toHaveLength(0);
  });
});
