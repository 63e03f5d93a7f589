import { describe, expect, it } from 'vitest';
import type { DecisionLog } from '../../../log/decision-log.js';
import { createMemoryLog } from '../../../log/memory/memory-log.js';
import { mixedWorld } from '../coordinator/mixed-world.js';

const steps = [
  { name: 'reserve', participant: 's', action: { path: '/reserve' }, compensate: { path: '/release' } },
  { name: 'charge', participant: 't', action: { path: '/charge' }, compensate: { path: '/refund' } },
] as const;

describe('submitted sagas', () => {
  it('submitSaga answers once the saga is durable; status is running, then final', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const t = w.svc.t;
    const handle = t.handle.bind(t);
    t.handle = async (req) => (await gate, handle(req));
    const s = await coord.submitSaga({ steps: [...steps] });
    expect(s.existing).toBe(false);
    await new Promise((r) => setTimeout(r, 10));
    const running = await coord.sagaStatus(s.id);
    expect(running).toMatchObject({ status: 'running', steps: [{ name: 'reserve', action: 'done' }, { name: 'charge', action: 'running' }] });
    release();
    expect((await s.result).status).toBe('committed');
    expect(await coord.sagaStatus(s.id)).toMatchObject({ status: 'committed' });
    expect(await coord.sagaStatus('txc1.mixed.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b')).toBeUndefined();
    await coord.close();
  });

  it('status answers while the end record is written but not yet synced (the file log applies it before fdatasync)', async () => {
    const w = mixedWorld();
    const inner = createMemoryLog();
    let syncing: () => void = () => undefined;
    let endWritten: () => void = () => undefined;
    const written = new Promise<void>((r) => (endWritten = r));
    const log: DecisionLog = {
      ...inner,
      async append(record, force) {
        await inner.append(record, force);
        if (record.type !== 'end') return;
        endWritten();
        await new Promise<void>((r) => (syncing = r));
      },
    };
    const coord = await w.coordinator({ decisionLog: log });
    const s = await coord.submitSaga({ steps: [...steps] });
    await written;
    const asked = coord.sagaStatus(s.id);
    syncing();
    expect(await asked).toMatchObject({ status: 'committed' });
    await coord.close();
  });

  it('the same idempotency key returns the first saga and runs nothing twice', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const a = await coord.submitSaga({ steps: [...steps] }, { idempotencyKey: 'order-7' });
    const b = await coord.submitSaga({ steps: [...steps] }, { idempotencyKey: 'order-7' });
    expect(b).toMatchObject({ id: a.id, existing: true });
    await a.result;
    const c = await coord.submitSaga({ steps: [...steps] }, { idempotencyKey: 'order-7' });
    expect(c).toMatchObject({ id: a.id, existing: true });
    expect(w.svc.s.count('/reserve')).toBe(1);
    await coord.close();
  });
});
