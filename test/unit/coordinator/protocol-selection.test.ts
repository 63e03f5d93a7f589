import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { mixedWorld } from './mixed-world.js';

describe('protocol selection (mode auto)', () => {
  it('all written participants can prepare: 2PC with the decision in the log', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const r = await coord.transaction(async (tx) => {
      await tx.query('a', 'set x', [1]);
      await tx.query('b', 'set y', [2]);
    });
    expect(r).toMatchObject({ mode: '2pc', guarantee: 'atomic', decisionIn: 'log' });
    expect([w.db.a.data.get('x'), w.db.b.data.get('y')]).toEqual([1, 2]);
    await coord.close();
  });

  it('exactly one participant cannot prepare: it is the commit-marked last resource', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const r = await coord.transaction(async (tx) => {
      await tx.query('a', 'set x', [1]);
      await tx.query('c', 'set z', [3]);
    });
    expect(r).toMatchObject({ mode: 'last-resource', guarantee: 'atomic', decisionIn: 'c' });
    expect([w.db.a.data.get('x'), w.db.c.data.get('z')]).toEqual([1, 3]);
    // The marker committed with c's own transaction; it is garbage-collected once phase two is done.
    expect(w.db.c.markers.get(r.id)?.outcome).toBe('commit');
    expect(w.db.c.calls).not.toContain('prepare');
    await coord.close();
    expect(w.db.c.markers.has(r.id)).toBe(false);
  });

  it('a single writer that cannot prepare just commits locally', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const r = await coord.transaction(async (tx) => {
      await tx.query('c', 'set z', [3]);
      await tx.query('a', 'get x');
    });
    expect(r).toMatchObject({ mode: 'one-phase', guarantee: 'atomic' });
    await coord.close();
  });

  it('two participants that cannot prepare need compensations: without one the query throws at once', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const err = await coord
      .transaction(async (tx) => {
        await tx.query('c', 'set z', [3]);
        await tx.query('d', 'set q', [4], { compensate: { sql: 'set q', params: [0] } });
      })
      .catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_COMPENSATION_REQUIRED')).toBe(true);
    expect((err as TxcError).details['participant']).toBe('c');
    // Nothing ran on d, and c's statement was rolled back with the transaction.
    expect(w.db.d.calls).not.toContain('query');
    expect(w.db.c.data.has('z')).toBe(false);
    await coord.close();
  });

  it('two participants that cannot prepare, with compensations: a saga, and it says so', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const r = await coord.transaction(async (tx) => {
      await tx.query('a', 'set x', [1]);
      await tx.query('c', 'set z', [3], { compensate: { sql: 'set z', params: [0] } });
      await tx.query('d', 'set q', [4], { compensate: { sql: 'set q', params: [0] } });
    });
    expect(r).toMatchObject({ mode: 'saga', guarantee: 'compensating' });
    expect([w.db.a.data.get('x'), w.db.c.data.get('z'), w.db.d.data.get('q')]).toEqual([1, 3, 4]);
    // Each local commit carried its barrier row.
    expect(w.db.c.barrier.get(`${r.id}|c|action`)).toBe('action');
    expect(coord.stats().committed.saga).toBe(1);
    await coord.close();
  });

  it("mode '2pc' fails fast, naming the participant that cannot prepare", async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const err = await coord
      .transaction(
        async (tx) => {
          await tx.query('a', 'set x', [1]);
          await tx.query('c', 'set z', [3]);
        },
        { mode: '2pc' },
      )
      .catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_TWO_PHASE_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toContain('Participant c');
    expect(w.db.a.data.has('x')).toBe(false);
    await coord.close();
  });

  it("mode 'saga' requires a compensation even for a single participant that cannot prepare", async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const err = await coord.transaction(async (tx) => tx.query('c', 'set z', [3]), { mode: 'saga' }).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_COMPENSATION_REQUIRED')).toBe(true);
    const r = await coord.transaction(
      async (tx) => {
        await tx.query('a', 'set x', [1]);
        await tx.query('c', 'set z', [3], { compensate: { sql: 'set z', params: [0] } });
      },
      { mode: 'saga' },
    );
    expect(r.mode).toBe('saga');
    await coord.close();
  });

  it('a service participant takes no statements', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const err = await coord.transaction(async (tx) => tx.query('s', 'set z', [3])).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_UNSUPPORTED')).toBe(true);
    await coord.close();
  });

  it('decisionIn keeps the decision as a marker in a 2PC participant that wrote: no prepare there, no forced log write', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator({ decisionIn: 'a' });
    const r = await coord.transaction(async (tx) => {
      await tx.query('a', 'set x', [1]);
      await tx.query('b', 'set y', [2]);
    });
    expect(r).toMatchObject({ mode: 'last-resource', decisionIn: 'a', guarantee: 'atomic' });
    expect(w.db.a.calls).not.toContain('prepare');
    expect(w.db.b.calls).toContain('prepare');
    expect([w.db.a.data.get('x'), w.db.b.data.get('y')]).toEqual([1, 2]);
    // When the holder did not write, the log decides as usual.
    const r2 = await coord.transaction(async (tx) => {
      await tx.query('b', 'set y', [5]);
      await tx.query('c', 'set z', [6]);
    });
    expect(r2).toMatchObject({ mode: 'last-resource', decisionIn: 'c' });
    await coord.close();
  });
});
