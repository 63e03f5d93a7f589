import { describe, expect, it, vi } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { PROTOCOL_POINTS } from '../../../coordinator/protocol.js';
import type { ProtocolPoint } from '../../../coordinator/types.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { halt, transfer, world } from './setup.js';

describe('two-phase commit over two participants', () => {
  it('commits both sides, with a durable commit record and then an end record', async () => {
    const w = world();
    const coord = await w.coordinator();
    const r = await transfer(coord, 30, w);
    expect(r).toMatchObject({ outcome: 'committed', mode: '2pc', phaseTwoPending: false });
    expect([...r.participants].sort()).toEqual(['a', 'b']);
    expect(w.a.data.get('x')).toBe(70);
    expect(w.b.data.get('y')).toBe(130);
    expect(w.a.prepared.size + w.b.prepared.size).toBe(0);
    expect(w.log.live()).toEqual([]);
    expect(coord.stats()).toMatchObject({ committed: { '2pc': 1, 'one-phase': 0, 'read-only': 0 }, rolledBack: 0, inFlight: 0 });
    await coord.close();
  });

  it('stores meta and the branches (with local transaction ids) in the commit record', async () => {
    const w = world();
    const coord = await w.coordinator({ onProtocolPoint: (p) => (p === 'before-end' ? halt() : undefined) });
    void coord.transaction(
      async (tx) => {
        await tx.query('a', 'set x', [1]);
        await tx.query('b', 'set y', [1]);
      },
      { meta: { user: 'u-42' } },
    );
    await vi.waitFor(() => expect(w.log.live()).toHaveLength(1));
    const rec = w.log.live()[0];
    expect(rec).toMatchObject({ type: 'commit', coordinatorId: 'unit', meta: { user: 'u-42' }, pid: process.pid });
    if (rec?.type !== 'commit') throw new Error('expected commit');
    expect(rec.branches.map((b) => b.participant).sort()).toEqual(['a', 'b']);
    expect(rec.branches.every((b) => typeof b.localTxId === 'string')).toBe(true);
  });

  it('prepares the branches in parallel', async () => {
    const w = world();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    w.a.delayNext('prepare', gate);
    w.b.delayNext('prepare', gate);
    const coord = await w.coordinator();
    const p = transfer(coord, 1, w);
    await vi.waitFor(() => expect(w.a.calls.includes('prepare') && w.b.calls.includes('prepare')).toBe(true));
    release();
    await p;
    expect(w.a.maxConcurrentPrepares + w.b.maxConcurrentPrepares).toBe(2);
    await coord.close();
  });

  it('rolls back everywhere and rethrows when the callback throws', async () => {
    const w = world();
    const coord = await w.coordinator();
    const boom = new Error('business rule');
    await expect(
      coord.transaction(async (tx) => {
        await tx.query('a', 'set x', [1]);
        await tx.query('b', 'set y', [1]);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(w.a.data.size + w.b.data.size).toBe(0);
    expect(w.a.calls).toContain('rollback');
    expect(w.b.calls).toContain('rollback');
    expect(w.log.live()).toEqual([]);
    expect(coord.stats()).toMatchObject({ rolledBack: 1, committed: { '2pc': 0 } });
    await coord.close();
  });

  it('rolls back everywhere when one participant refuses to prepare (failed statement earlier)', async () => {
    const w = world();
    const coord = await w.coordinator();
    const err = await coord
      .transaction(async (tx) => {
        await tx.query('a', 'set x', [1]);
        await tx.query('b', 'set y', [1]);
        await tx.query('b', 'fail').catch(() => undefined); // swallowed by the app
      })
      .catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_PREPARE_FAILED')).toBe(true);
    expect(w.a.data.size + w.b.data.size).toBe(0);
    expect(w.a.prepared.size + w.b.prepared.size).toBe(0);
    expect(w.log.live()).toEqual([]);
    await coord.close();
  });

  it('rolls back when a prepare times out, and a late prepare is rolled back too', async () => {
    const w = world();
    const clock = new ManualClock();
    let release!: () => void;
    w.b.delayNext('prepare', new Promise<void>((r) => (release = r)));
    const coord = await w.coordinator({ clock, prepareTimeoutMs: 500 });
    const p = transfer(coord, 5, w).catch((e: unknown) => e);
    await vi.waitFor(() => expect(w.b.calls).toContain('prepare'));
    clock.advance(500);
    const err = await p;
    expect(TxcError.is(err, 'TXC_PREPARE_TIMEOUT')).toBe(true);
    release();
    await vi.waitFor(() => expect(w.b.prepared.size).toBe(1)); // the slow prepare landed after all
    clock.advance(60_000); // ...and the straggler clean-up rolls it back without waiting for recovery
    await vi.waitFor(() => expect(w.b.prepared.size).toBe(0));
    expect(w.a.prepared.size).toBe(0);
    expect(w.a.data.size + w.b.data.size).toBe(0);
    await coord.close();
  });

  it('retries in the background a rollback of a prepared branch that failed, without waiting for recovery', async () => {
    const w = world();
    const clock = new ManualClock();
    w.b.failNext('prepare', new TxcError('TXC_PREPARE_FAILED', 'refused'));
    w.a.failNext('rollback'); // a is prepared, and its rollback cannot reach the server...
    w.a.failNext('resolveRollback'); // ...nor does the first retry
    const coord = await w.coordinator({ clock });
    const err = await transfer(coord, 5, w).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_PREPARE_FAILED')).toBe(true);
    expect(w.a.prepared.size).toBe(1);
    for (let i = 0; i < 10 && w.a.prepared.size > 0; i++) {
      clock.advance(5_000);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(w.a.prepared.size).toBe(0);
    expect(w.a.data.size + w.b.data.size).toBe(0);
    await coord.close();
  });

  it('rolls back and reports TXC_LOG_IO when the decision cannot be made durable', async () => {
    const w = world();
    const coord = await w.coordinator();
    vi.spyOn(w.log, 'append').mockRejectedValueOnce(new TxcError('TXC_LOG_IO', 'disk full'));
    const err = await transfer(coord, 1, w).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_LOG_IO')).toBe(true);
    expect(w.a.data.size + w.b.data.size).toBe(0);
    expect(w.a.prepared.size + w.b.prepared.size).toBe(0);
    await coord.close();
  });
});

describe('a decision the log cannot vouch for', () => {
  it('leaves the branches prepared (never contradicting a record that may be on disk) and reports TXC_OUTCOME_UNKNOWN', async () => {
    const w = world();
    const coord = await w.coordinator();
    vi.spyOn(w.log, 'append').mockRejectedValueOnce(new TxcError('TXC_LOG_IO', 'fsync failed', { details: { durability: 'unknown' } }));
    const err = await transfer(coord, 1, w).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_OUTCOME_UNKNOWN')).toBe(true);
    expect(w.a.prepared.size + w.b.prepared.size).toBe(2);
    expect(w.a.calls).not.toContain('rollback');
    await coord.close();
  });
});

describe('optimizations', () => {
  it('commits a single-writer transaction in one phase with no log write', async () => {
    const w = world();
    const coord = await w.coordinator();
    const append = vi.spyOn(w.log, 'append');
    const r = await coord.transaction(async (tx) => {
      await tx.query('a', 'set x', [7]);
      return 'ok';
    });
    expect(r).toMatchObject({ mode: 'one-phase', value: 'ok', participants: ['a'] });
    expect(w.a.data.get('x')).toBe(7);
    expect(w.a.calls).not.toContain('prepare');
    expect(append).not.toHaveBeenCalled();
    expect(w.b.calls).not.toContain('begin'); // never queried, never touched
    await coord.close();
  });

  it('treats a branch that wrote nothing as read-only: no prepare, no commit record for it', async () => {
    const w = world();
    const coord = await w.coordinator();
    const append = vi.spyOn(w.log, 'append');
    const r = await coord.transaction(async (tx) => {
      await tx.query('a', 'get x');
      await tx.query('b', 'set y', [3]);
    });
    expect(r.mode).toBe('one-phase');
    expect(w.a.calls).not.toContain('prepare');
    expect(append).not.toHaveBeenCalled();
    const ro = await coord.transaction(async (tx) => {
      await tx.query('a', 'get x');
      await tx.query('b', 'get y');
    });
    expect(ro.mode).toBe('read-only');
    expect([...w.a.calls, ...w.b.calls]).not.toContain('prepare');
    await coord.close();
  });

  it('runs many transactions concurrently, each atomic', async () => {
    const w = world();
    const coord = await w.coordinator();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        coord.transaction(async (tx) => {
          await Promise.all([tx.query('a', `set k${i}`, [i]), tx.query('b', `set k${i}`, [i])]);
        }),
      ),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(50);
    for (let i = 0; i < 50; i++) expect([w.a.data.get(`k${i}`), w.b.data.get(`k${i}`)]).toEqual([i, i]);
    await coord.close();
  });
});

describe('usage errors', () => {
  it('names the known participants for an unknown one, and refuses queries after the callback', async () => {
    const w = world();
    const coord = await w.coordinator();
    const err = await coord.transaction((tx) => tx.query('nope', 'get x')).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_PARTICIPANT_UNKNOWN')).toBe(true);
    expect((err as Error).message).toContain('a, b');
    let leaked: import('../../../coordinator/types.js').Tx | undefined;
    await coord.transaction(async (tx) => {
      leaked = tx;
    });
    const late = await leaked?.query('a', 'get x').catch((e: unknown) => e);
    expect(TxcError.is(late, 'TXC_TRANSACTION_CLOSED')).toBe(true);
    await coord.close();
    await expect(coord.transaction(async () => 1)).rejects.toMatchObject({ code: 'TXC_COORDINATOR_CLOSED' });
  });

  it('waits for a query the callback forgot to await before preparing', async () => {
    const w = world();
    let release!: () => void;
    w.b.delayNext('query', new Promise<void>((r) => (release = r)));
    const coord = await w.coordinator();
    const p = coord.transaction(async (tx) => {
      await tx.query('a', 'set x', [1]);
      void tx.query('b', 'set y', [2]);
    });
    setTimeout(release, 20);
    expect((await p).mode).toBe('2pc');
    expect(w.b.data.get('y')).toBe(2);
    await coord.close();
  });
});

describe('phase two', () => {
  it('answers once the decision is durable and retries a failed commit in the background', async () => {
    const w = world();
    w.b.failNext('commitPrepared');
    w.b.failNext('resolveCommit');
    const coord = await w.coordinator();
    const r = await transfer(coord, 10, w);
    expect(r.phaseTwoPending).toBe(true);
    expect(w.a.data.get('x')).toBe(90);
    await vi.waitFor(() => expect(w.b.data.get('y')).toBe(110));
    await vi.waitFor(() => expect(w.log.live()).toEqual([]));
    expect(coord.stats().phaseTwoRetries).toBeGreaterThanOrEqual(1);
    await coord.close();
  });

  it('answers the caller after phaseTwoTimeoutMs when a database stops answering, and finishes later', async () => {
    const w = world();
    const clock = new ManualClock();
    let answer!: () => void;
    w.b.delayNext('commitPrepared', new Promise<void>((r) => (answer = r))); // b's COMMIT hangs (packets dropped)
    const coord = await w.coordinator({ clock, phaseTwoTimeoutMs: 2_000 });
    const p = transfer(coord, 10, w);
    await vi.waitFor(() => expect(w.b.calls).toContain('commitPrepared'));
    clock.advance(2_000);
    const r = await p;
    expect(r).toMatchObject({ outcome: 'committed', phaseTwoPending: true });
    expect(w.a.data.get('x')).toBe(90);
    answer(); // the database comes back
    for (let i = 0; i < 20 && w.log.live().length > 0; i++) {
      clock.advance(1_000);
      await new Promise((res) => setTimeout(res, 5));
    }
    expect(w.b.data.get('y')).toBe(110);
    expect(w.log.live()).toEqual([]);
    await coord.close();
  });

  it('does not take "unknown xid" as done while the branch is still listed in doubt', async () => {
    const w = world();
    w.b.sessionBound = true; // MariaDB: other sessions get XAER_NOTA while the preparer is attached
    w.b.detachOnDestroy = false; // ...and the server notices the dropped connection only later
    w.b.failNext('commitPrepared');
    const coord = await w.coordinator();
    const r = await transfer(coord, 10, w);
    expect(r.phaseTwoPending).toBe(true);
    await vi.waitFor(() => expect(w.b.calls.filter((c) => c === 'resolveCommit').length).toBeGreaterThan(2));
    expect(w.b.prepared.size).toBe(1); // still prepared: retrying, not "done"
    expect(w.log.live()).toHaveLength(1);
    w.b.detachAll();
    await vi.waitFor(() => expect(w.b.data.get('y')).toBe(110));
    await vi.waitFor(() => expect(w.log.live()).toEqual([]));
    await coord.close();
  });
});

describe('crash at every protocol point, then recovery', () => {
  const cases: { point: ProtocolPoint; participant?: string; committed: boolean }[] = [
    { point: 'before-prepare', committed: false },
    { point: 'after-prepare', participant: 'a', committed: false },
    { point: 'after-prepare', participant: 'b', committed: false },
    { point: 'after-decision', committed: true },
    { point: 'after-commit', participant: 'a', committed: true },
    { point: 'after-commit', participant: 'b', committed: true },
    { point: 'before-end', committed: true },
  ];
  it('covers every protocol point', () => {
    expect(new Set(cases.map((c) => c.point))).toEqual(new Set(PROTOCOL_POINTS));
  });

  for (const c of cases) {
    it(`${c.point}${c.participant ? ` (${c.participant})` : ''}: all or nothing after recovery`, async () => {
      const w = world();
      const crashing = await w.coordinator({ crashAt: c });
      void transfer(crashing, 25, w);
      await new Promise((r) => setTimeout(r, 20));
      // The "process" is dead; a new coordinator starts on the same log and databases.
      const next = await w.coordinator({ onStart: false });
      const report = await next.recover();
      expect(report.remaining).toEqual([]);
      expect(w.a.prepared.size + w.b.prepared.size).toBe(0);
      const sides = [w.a.data.get('x'), w.b.data.get('y')];
      expect(sides).toEqual(c.committed ? [75, 125] : [undefined, undefined]);
      expect(w.log.live()).toEqual([]);
      await next.close();
    });
  }

  it('after-commit of one branch while the other has not committed: recovery commits the other', async () => {
    const w = world();
    w.b.delayNext('commitPrepared', new Promise<void>(() => undefined)); // b's COMMIT never reaches the server
    const crashing = await w.coordinator({ crashAt: { point: 'after-commit', participant: 'a' } });
    void transfer(crashing, 25, w);
    await vi.waitFor(() => expect(w.a.data.get('x')).toBe(75));
    expect(w.b.prepared.size).toBe(1); // the books disagree right now
    const next = await w.coordinator({ onStart: false });
    const report = await next.recover();
    expect(report).toMatchObject({ committed: 1, rolledBack: 0, ended: 1 });
    expect([w.a.data.get('x'), w.b.data.get('y')]).toEqual([75, 125]);
    expect(w.log.live()).toEqual([]);
    await next.close();
  });

  it('recovers on start by default', async () => {
    const w = world();
    const crashing = await w.coordinator({ crashAt: { point: 'after-decision' } });
    void transfer(crashing, 25, w);
    await vi.waitFor(() => expect(w.log.live()).toHaveLength(1));
    const next = await w.coordinator();
    expect([w.a.data.get('x'), w.b.data.get('y')]).toEqual([75, 125]);
    await next.close();
  });

  it('leaves transactions in flight in this process alone', async () => {
    const w = world();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const coord = await w.coordinator({ onProtocolPoint: (p) => (p === 'after-prepare' ? gate : undefined) });
    const p = transfer(coord, 5, w);
    await vi.waitFor(() => expect(w.a.prepared.size + w.b.prepared.size).toBe(2));
    const report = await coord.recover();
    expect(report.rolledBack + report.committed).toBe(0);
    expect(report.remaining.every((b) => b.inFlight)).toBe(true);
    release();
    expect((await p).mode).toBe('2pc');
    await coord.close();
  });

  it('reports a branch rolled back by hand against a commit decision as heuristic', async () => {
    const w = world();
    const crashing = await w.coordinator({ crashAt: { point: 'after-decision' } });
    void transfer(crashing, 25, w);
    await vi.waitFor(() => expect(w.log.live()).toHaveLength(1));
    const [bxid] = [...w.b.prepared.values()].map((p) => p.xid);
    if (!bxid) throw new Error('b not prepared');
    w.b.rollbackByHand(bxid);
    const next = await w.coordinator({ onStart: false });
    const report = await next.recover();
    expect(report.heuristic).toEqual([
      { gtrid: bxid.gtrid, participant: 'b', bqual: bxid.bqual, expected: 'commit', actual: 'rolled-back' },
    ]);
    expect(next.stats()).toMatchObject({ heuristic: 1, recovered: { committed: 1, rolledBack: 0 } });
    expect(w.log.live()).toEqual([]); // the heuristic is on record and the transaction ended
    expect(w.a.data.get('x')).toBe(75);
    await next.close();
  });

  it('keeps a commit record live while a participant cannot be checked, and finishes later', async () => {
    const w = world();
    const crashing = await w.coordinator({ crashAt: { point: 'after-decision' } });
    void transfer(crashing, 25, w);
    await vi.waitFor(() => expect(w.log.live()).toHaveLength(1));
    w.b.failNext('listInDoubt');
    const next = await w.coordinator({ onStart: false });
    const first = await next.recover();
    expect(first.failures.map((f) => f.participant)).toEqual(['b']);
    expect(w.log.live()).toHaveLength(1);
    const second = await next.recover();
    expect(second.failures).toEqual([]);
    expect([w.a.data.get('x'), w.b.data.get('y')]).toEqual([75, 125]);
    expect(w.log.live()).toEqual([]);
    await next.close();
  });

  it('inDoubt refuses to pass a partial list off as complete; allowPartial returns what could be listed', async () => {
    const w = world();
    const crashing = await w.coordinator({ crashAt: { point: 'after-prepare' } });
    void transfer(crashing, 25, w);
    await vi.waitFor(() => expect(w.a.prepared.size + w.b.prepared.size).toBe(2));
    const next = await w.coordinator({ onStart: false });
    expect(await next.inDoubt()).toHaveLength(2);
    w.b.failNext('listInDoubt');
    await expect(next.inDoubt()).rejects.toSatisfy(
      (e: unknown) => TxcError.is(e, 'TXC_SCAN_INCOMPLETE') && e.retryable && e.details['participants'] === 'b' && e.details['listed'] === 1,
    );
    w.b.failNext('listInDoubt');
    expect((await next.inDoubt({ allowPartial: true })).map((b) => b.participant)).toEqual(['a']);
    await next.close();
  });

  it('dry run changes nothing', async () => {
    const w = world();
    const crashing = await w.coordinator({ crashAt: { point: 'after-prepare' } });
    void transfer(crashing, 25, w);
    await vi.waitFor(() => expect(w.a.prepared.size + w.b.prepared.size).toBeGreaterThan(0));
    await new Promise((r) => setTimeout(r, 10));
    const next = await w.coordinator({ onStart: false });
    const before = w.a.prepared.size + w.b.prepared.size;
    const report = await next.recover({ dryRun: true });
    expect(report.remaining).toHaveLength(before);
    expect(report.remaining.every((b) => b.decision === 'rollback')).toBe(true);
    expect(w.a.prepared.size + w.b.prepared.size).toBe(before);
    await next.close();
  });
});
