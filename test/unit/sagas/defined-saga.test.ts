import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import type { Coordinator } from '../../../coordinator/types.js';
import type { SagaHandlerStep } from '../../../sagas/saga-types.js';
import { runAction } from '../../../sagas/barrier.js';
import { FakeParticipant } from '../../fakes/fake-participant.js';
import { mixedWorld } from '../coordinator/mixed-world.js';

type Input = { account: string; cents: number };

/** Debit on database c (exactly once via ctx.query), then a charge on service s. */
function define(coord: Coordinator, calls: string[]): void {
  const steps: SagaHandlerStep<Input>[] = [
    {
      name: 'debit',
      participant: 'c',
      async action(ctx) {
        calls.push('debit');
        await ctx.query(`set ${ctx.input.account}`, [-ctx.input.cents]);
        return { debited: ctx.input.cents };
      },
      async compensate(ctx) {
        calls.push('undo-debit');
        await ctx.query(`set ${ctx.input.account}`, [0]);
      },
    },
    {
      name: 'charge',
      participant: 's',
      async action(ctx) {
        calls.push('charge');
        return ctx.call('/charge', { cents: ctx.input.cents, after: ctx.results['debit'] ?? null });
      },
      async compensate(ctx) {
        calls.push('refund');
        await ctx.call('/refund', { cents: ctx.input.cents });
      },
    },
  ];
  coord.defineSaga<Input>('pay', steps);
}

describe('sagas of handler functions', () => {
  it('runs a defined saga with its input; ctx.query runs behind the barrier', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const calls: string[] = [];
    define(coord, calls);
    const r = await coord.runSaga<Input>('pay', { account: 'acct', cents: 7 });
    expect(r.status).toBe('committed');
    expect(w.db.c.data.get('acct')).toBe(-7);
    expect(w.db.c.barrier.get(`${r.id}|debit|action`)).toBe('action');
    expect(w.svc.s.effects[0]).toMatchObject({ path: '/charge', body: { cents: 7, after: { debited: 7 } }, key: `${r.id}:charge:action` });
    await coord.close();
  });

  it('a handler that throws is a business failure: earlier steps are compensated', async () => {
    const w = mixedWorld();
    w.svc.s.refuse.add('/charge');
    const coord = await w.coordinator();
    const calls: string[] = [];
    define(coord, calls);
    const r = await coord.runSaga<Input>('pay', { account: 'acct', cents: 7 });
    expect(r.status).toBe('compensated');
    expect(calls).toEqual(['debit', 'charge', 'undo-debit']);
    expect(w.db.c.data.get('acct')).toBe(0);
    await coord.close();
  });

  it('an unknown saga name is refused', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    await expect(coord.runSaga('nope', {})).rejects.toMatchObject({ code: 'TXC_SAGA_UNKNOWN' });
    await coord.close();
  });

  it('resumes after a crash in any process that registers the same definition, and only there', async () => {
    const w = mixedWorld();
    const crashed = await w.coordinator({ crashAt: { point: 'saga-before-action', step: 'debit' } });
    define(crashed, []);
    void crashed.runSaga<Input>('pay', { account: 'acct', cents: 7 }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 30));
    // The worst moment: the debit's intent is logged and its local transaction committed, but
    // the process died before logging the result.
    const gtrid = w.log.live().find((r) => r.type === 'saga')!.gtrid;
    await runAction(new FakeParticipant('c', w.db.c, true), gtrid, 'debit', (q) => q('set acct', [-7]));

    const bare = await w.coordinator();
    const first = await bare.recover();
    expect(first.sagas.remaining[0]?.reason).toMatch(/not defined/);
    // (not closed: closing a coordinator closes the decision log this test world shares)

    const coord = await w.coordinator();
    const calls: string[] = [];
    define(coord, calls);
    const report = await coord.recover();
    expect(report.sagas, JSON.stringify(report.sagas)).toMatchObject({ resumed: 1, committed: 1 });
    // The debit's intent had no result, so it was delivered again: the barrier made it a no-op
    // (its handler did not even run), and the saga went on.
    expect(calls).toEqual(['charge']);
    expect(w.db.c.data.get('acct')).toBe(-7);
    expect(w.svc.s.count('/charge')).toBe(1);
    await coord.close();
  });

  it('a handler step without a database participant cannot use ctx.query', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    coord.defineSaga('bad', [{ name: 'x', action: async (ctx) => void (await ctx.query('set a', [1])) }]);
    const r = await coord.runSaga('bad', null);
    expect(r.status).toBe('compensated');
    expect(r.error?.code).toBe('TXC_UNSUPPORTED');
    await coord.close();
  });

  it('defineSaga validates its steps', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    expect(() => coord.defineSaga('x', [{ name: 'a', participant: 'nope', action: async () => null }])).toThrow(TxcError);
    expect(() => coord.defineSaga('bad name!', [{ name: 'a', action: async () => null }])).toThrow(/Saga name/);
    await coord.close();
  });
});
