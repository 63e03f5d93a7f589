import { describe, expect, it } from 'vitest';
import { SAGA_POINTS } from '../../../coordinator/protocol.js';
import type { SagaDefinition } from '../../../sagas/saga-types.js';
import { mixedWorld, type MixedWorld } from '../coordinator/mixed-world.js';

const order: SagaDefinition = {
  steps: [
    { name: 'reserve', participant: 's', action: { path: '/reserve', body: { sku: 'A', qty: 1 } }, compensate: { path: '/release', body: { sku: 'A', qty: 1 } } },
    { name: 'charge', participant: 't', action: { path: '/charge', body: { cents: 500 } }, compensate: { path: '/refund', body: { cents: 500 } } },
  ],
};

/** The ledgers show either every action and no compensation, or every applied action undone. */
function expectConsistent(w: MixedWorld, status: string): void {
  const s = w.svc.s;
  const t = w.svc.t;
  for (const path of ['/reserve', '/release']) expect(s.count(path)).toBeLessThanOrEqual(1);
  for (const path of ['/charge', '/refund']) expect(t.count(path)).toBeLessThanOrEqual(1);
  if (status === 'committed') {
    expect([s.count('/reserve'), t.count('/charge'), s.count('/release'), t.count('/refund')]).toEqual([1, 1, 0, 0]);
  } else {
    expect(status).toBe('compensated');
    // Every action that took effect was undone (a compensation may also arrive for an action that never ran).
    expect(s.count('/release')).toBeGreaterThanOrEqual(s.count('/reserve'));
    expect(t.count('/refund')).toBeGreaterThanOrEqual(t.count('/charge'));
  }
}

describe('sagas given as data', () => {
  it('runs every step in order and commits', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const r = await coord.saga(order);
    expect(r).toMatchObject({ status: 'committed', mode: 'saga', guarantee: 'compensating' });
    expect(r.steps.map((s) => [s.name, s.action, s.compensation])).toEqual([
      ['reserve', 'done', 'not-needed'],
      ['charge', 'done', 'not-needed'],
    ]);
    expectConsistent(w, r.status);
    expect(w.log.live()).toHaveLength(0);
    await coord.close();
  });

  it('a business failure compensates the completed steps in reverse order, and the refused one not at all', async () => {
    const w = mixedWorld();
    w.svc.t.refuse.add('/charge');
    const coord = await w.coordinator();
    const r = await coord.saga(order);
    expect(r.status).toBe('compensated');
    expect(r.error).toMatchObject({ code: 'TXC_STEP_REJECTED', step: 'charge' });
    expect(r.steps.map((s) => [s.name, s.action, s.compensation])).toEqual([
      ['reserve', 'done', 'done'],
      ['charge', 'failed', 'not-needed'],
    ]);
    expect(w.svc.s.effects.map((e) => e.path)).toEqual(['/reserve', '/release']);
    expect(w.svc.t.count('/refund')).toBe(0);
    await coord.close();
  });

  it('retries transient failures with the same idempotency key, so an applied-then-lost call takes effect once', async () => {
    const w = mixedWorld();
    w.svc.s.failNext = 2;
    w.svc.t.applyThenFail = 1;
    const coord = await w.coordinator();
    const r = await coord.saga(order);
    expect(r.status).toBe('committed');
    expect([w.svc.s.count('/reserve'), w.svc.t.count('/charge')]).toEqual([1, 1]);
    expect(w.svc.t.calls).toBe(2);
    expect(coord.stats().sagaRetries).toBe(3);
    await coord.close();
  });

  it('a compensation that can never succeed ends the saga as failed, reported, not hidden', async () => {
    const w = mixedWorld();
    w.svc.t.refuse.add('/charge');
    w.svc.s.broken.add('/release');
    const coord = await w.coordinator();
    const r = await coord.saga(order);
    expect(r.status).toBe('failed');
    expect(r.steps[0]).toMatchObject({ name: 'reserve', action: 'done', compensation: 'failed' });
    expect(coord.stats().heuristic).toBe(1);
    expect(coord.stats().sagas.failed).toBe(1);
    await coord.close();
  });

  it('a step past its timeout counts as possibly done and is compensated too, the compensation retried until it succeeds', async () => {
    const w = mixedWorld();
    w.svc.t.down = true;
    // The service comes back after the step's deadline: only the compensations see it again.
    setTimeout(() => (w.svc.t.down = false), 80);
    const coord = await w.coordinator();
    const r = await coord.saga({ steps: [order.steps[0]!, { ...order.steps[1]!, timeoutMs: 30 }] });
    expect(r.status).toBe('compensated');
    expect(r.steps[1]).toMatchObject({ action: 'unknown', compensation: 'done', error: { code: 'TXC_STEP_TIMEOUT' } });
    expect(r.steps[0]).toMatchObject({ action: 'done', compensation: 'done' });
    expect(w.svc.t.count('/refund')).toBe(1);
    await coord.close();
  });

  it('a saga past its own deadline stops going forward and compensates what it did', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    // The charge keeps failing transiently: only the saga's deadline ends the retries.
    w.svc.t.down = true;
    setTimeout(() => (w.svc.t.down = false), 80);
    const r = await coord.saga({ ...order, timeoutMs: 30 });
    expect(r.status).toBe('compensated');
    expect(r.error).toMatchObject({ code: 'TXC_STEP_TIMEOUT', step: 'charge' });
    expect(w.svc.s.effects.map((e) => e.path)).toEqual(['/reserve', '/release']);
    await coord.close();
  });

  it('runs steps whose prerequisites are done in parallel', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    // If the steps ran one after the other, the first would wait for the second forever.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const s = w.svc.s;
    const original = s.handle.bind(s);
    s.handle = async (req) => {
      await gate;
      return original(req);
    };
    const t = w.svc.t;
    const tOriginal = t.handle.bind(t);
    t.handle = async (req) => {
      release();
      return tOriginal(req);
    };
    const r = await coord.saga({
      steps: [
        { name: 'one', participant: 's', action: { path: '/reserve' } },
        { name: 'two', participant: 't', action: { path: '/charge' }, after: [] },
        { name: 'three', participant: 't', action: { path: '/credit' }, after: ['one', 'two'] },
      ],
    });
    expect(r.status).toBe('committed');
    expect(t.effects.map((e) => e.path)).toEqual(['/charge', '/credit']);
    await coord.close();
  });

  it('rejects a bad definition before anything runs', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    await expect(coord.saga({ steps: [{ name: 'x', participant: 'nope', action: { path: '/a' } }] })).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNKNOWN' });
    await expect(coord.saga({ steps: [{ name: 'x', participant: 's', action: { sql: 'set a' } }] })).rejects.toMatchObject({ code: 'TXC_USAGE' });
    await expect(coord.saga({ steps: [{ name: 'x', participant: 's', action: { path: '/a' }, after: ['y'] }] })).rejects.toMatchObject({ code: 'TXC_USAGE' });
    expect(w.svc.s.calls).toBe(0);
    await coord.close();
  });

  for (const point of SAGA_POINTS) {
    for (const step of ['reserve', 'charge']) {
      for (const failing of [false, true]) {
        it(`a crash at ${point} of ${step}${failing ? ' (charge refused)' : ''}: recovery ends the saga committed or compensated, each effect at most once`, async () => {
          const w = mixedWorld();
          if (failing) w.svc.t.refuse.add('/charge');
          const crashed = await w.coordinator({ crashAt: { point, step } });
          void crashed.saga(order).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 30));
          const coord = await w.coordinator();
          const report = await coord.recover();
          const reached = report.sagas.resumed === 1;
          if (reached) {
            expect(report.sagas.committed + report.sagas.compensated).toBe(1);
            expectConsistent(w, report.sagas.committed === 1 ? 'committed' : 'compensated');
            if (failing) expect(report.sagas.compensated).toBe(1);
          } else {
            // The point was never reached (e.g. no compensation in a committed saga): it simply finished.
            expect(w.log.live()).toHaveLength(0);
          }
          expect(w.log.live()).toHaveLength(0);
          await coord.close();
        });
      }
    }
  }
});
