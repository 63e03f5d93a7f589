import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import type { Tx } from '../../../coordinator/types.js';
import { mixedWorld, type MixedWorld } from './mixed-world.js';

const work = async (tx: Tx) => {
  await tx.query('a', 'set x', [1]);
  await tx.query('c', 'set z', [3], { compensate: { sql: 'set z', params: [0] } });
  await tx.query('d', 'set q', [4], { compensate: { sql: 'set q', params: [0] } });
};

/** All or nothing, as far as anyone can see once the saga has ended. */
function expectAllOrUndone(w: MixedWorld): 'committed' | 'undone' {
  const x = w.db.a.data.get('x');
  const z = w.db.c.data.get('z');
  const q = w.db.d.data.get('q');
  if (x === 1) {
    expect([z, q]).toEqual([3, 4]);
    return 'committed';
  }
  expect(x).toBeUndefined();
  // Undone: never written, or compensated back to 0.
  expect([undefined, 0]).toContain(z);
  expect([undefined, 0]).toContain(q);
  return 'undone';
}

describe('coord.transaction as a saga', () => {
  it('a local commit that fails compensates the others and rolls back the prepared branches', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    w.db.d.failNext('commitOnePhase', new TxcError('TXC_COMMIT_FAILED', 'injected'));
    const err = await coord.transaction(work).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_COMMIT_FAILED')).toBe(true);
    expect((err as TxcError).details['compensated']).toBe(true);
    expect(w.db.a.prepared.size).toBe(0);
    expect(w.db.c.data.get('z')).toBe(0);
    expect(w.db.d.data.has('q')).toBe(false);
    expect(w.db.d.barrier.size).toBe(2); // the null compensation's rows: a late commit could not apply
    expect(w.log.live()).toHaveLength(0);
    expectAllOrUndone(w);
    await coord.close();
  });

  for (const point of ['saga-before-action', 'saga-after-action', 'after-decision', 'after-commit', 'before-end'] as const) {
    it(`a crash at ${point}: recovery brings every participant to the same outcome`, async () => {
      const w = mixedWorld();
      const crashed = await w.coordinator({ crashAt: { point } });
      void crashed.transaction(work).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 30));
      const coord = await w.coordinator();
      await coord.recover();
      expect(w.db.a.prepared.size).toBe(0);
      const outcome = expectAllOrUndone(w);
      expect(outcome).toBe(point === 'saga-before-action' || point === 'saga-after-action' ? 'undone' : 'committed');
      expect(w.log.live()).toHaveLength(0);
      await coord.close();
    });
  }
});
