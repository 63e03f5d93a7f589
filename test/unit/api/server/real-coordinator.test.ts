import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildServer } from '../../../../api/server/build-server.js';
import type { ExecuteAnswer, InDoubtAnswer, SagaView, TransactionView } from '../../../../client/wire-types.js';
import { createCoordinator } from '../../../../coordinator/create-coordinator.js';
import type { Coordinator, CoordinatorConfig } from '../../../../coordinator/types.js';
import { branchXid, newGtrid, TXC_FORMAT_ID } from '../../../../coordinator/xid.js';
import { FakeDatabase, FakeParticipant } from '../../../fakes/fake-participant.js';
import { FakeService, FakeServiceParticipant } from '../../../fakes/fake-service.js';
import { ADMIN_TOKEN, CLIENT_TOKEN, admin, client, errorOf } from './harness.js';

/**
 * The routes over a real coordinator: fake databases with real 2PC semantics (`set <key>` /
 * `get <key>` statements), a fake HTTP service, a memory log. Named statements compile to `$n`.
 */
interface World {
  readonly db: Record<'a' | 'b' | 'c' | 'd', FakeDatabase>;
  readonly svc: FakeService;
  readonly adapters: Record<'a' | 'b' | 'c' | 'd', FakeParticipant>;
  readonly coord: Coordinator;
  readonly app: FastifyInstance;
}

const servers: World[] = [];
afterEach(async () => {
  for (const w of servers.splice(0)) {
    await w.app.close();
    await w.coord.close({ timeoutMs: 1_000 });
  }
});

const STATEMENTS = {
  setX: { sql: 'set x :value', compensate: 'set x :undo' },
  setY: { sql: 'set y :value', compensate: 'set y :undo' },
  getX: 'get x',
  readX: { sql: 'get x', compensate: false },
  boom: 'fail now',
};

async function world(): Promise<World> {
  const db = { a: new FakeDatabase(), b: new FakeDatabase(), c: new FakeDatabase(), d: new FakeDatabase() };
  // c and d can only run local transactions (like SQL Server).
  const adapters = { a: new FakeParticipant('a', db.a), b: new FakeParticipant('b', db.b), c: new FakeParticipant('c', db.c, true), d: new FakeParticipant('d', db.d, true) };
  const svc = new FakeService();
  const config: CoordinatorConfig = {
    id: 'http',
    log: { type: 'memory' },
    participants: {
      ...Object.fromEntries(Object.entries(adapters).map(([n, p]) => [n, { driver: 'custom' as const, adapter: p, statements: STATEMENTS }])),
      svc: { driver: 'custom', adapter: new FakeServiceParticipant('svc', svc) },
    },
    recovery: { onStart: false, intervalMs: 0 },
    backoff: { initialMs: 1, maxMs: 5 },
    api: { tokens: { [CLIENT_TOKEN]: 'client', [ADMIN_TOKEN]: 'admin' } },
  };
  const logger = pino({ level: 'silent' });
  const coord = await createCoordinator({ ...config, logger });
  const app = await buildServer({ coord, config, logger, processMetrics: false });
  const w = { db, svc, adapters, coord, app };
  servers.push(w);
  return w;
}

const execute = (w: World, steps: object[], extra: object = {}) => w.app.inject({ method: 'POST', url: '/v1/transactions/execute', headers: client, payload: { steps, ...extra } });

async function waitForSaga(w: World, id: string): Promise<SagaView> {
  for (let i = 0; i < 2000; i++) {
    const res = await w.app.inject({ method: 'GET', url: `/v1/sagas/${id}`, headers: client });
    const view = res.json<SagaView>();
    if (view.status !== 'running') return view;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`saga ${id} still running`);
}

describe('routes over a real coordinator', () => {
  it('execute: two databases that can prepare commit with 2PC, rows come back per step', async () => {
    const w = await world();
    const res = await execute(w, [
      { participant: 'a', statement: 'setX', params: { value: 7, undo: 0 } },
      { participant: 'b', statement: 'setY', params: { value: 8, undo: 0 } },
      { participant: 'a', statement: 'getX' },
    ]);
    expect(res.statusCode).toBe(200);
    const answer = res.json<ExecuteAnswer>();
    expect(answer).toMatchObject({ outcome: 'committed', mode: '2pc', guarantee: 'atomic' });
    expect(answer.results[2]).toEqual({ rowCount: 1, rows: [{ value: 7 }] });
    expect(w.db.a.data.get('x')).toBe(7);
    expect(w.db.b.data.get('y')).toBe(8);
  });

  it('execute: one one-phase writer is the last resource; two need the configured compensations (saga)', async () => {
    const w = await world();
    const lr = await execute(w, [
      { participant: 'a', statement: 'setX', params: { value: 1, undo: 0 } },
      { participant: 'c', statement: 'setX', params: { value: 2, undo: 0 } },
    ]);
    expect(lr.json<ExecuteAnswer>()).toMatchObject({ mode: 'last-resource', guarantee: 'atomic' });
    const saga = await execute(w, [
      { participant: 'c', statement: 'setY', params: { value: 3, undo: 0 } },
      { participant: 'd', statement: 'setY', params: { value: 4, undo: 0 } },
    ]);
    expect(saga.statusCode).toBe(200);
    expect(saga.json<ExecuteAnswer>()).toMatchObject({ mode: 'saga', guarantee: 'compensating' });
    expect([w.db.c.data.get('y'), w.db.d.data.get('y')]).toEqual([3, 4]);
    // In a saga, a read with no compensation is refused, one configured as needing none runs.
    const read = (statement: string) => execute(w, [{ participant: 'c', statement }, { participant: 'd', statement: 'setY', params: { value: 5, undo: 4 } }], { mode: 'saga' });
    const refused = await read('getX');
    expect(refused.statusCode).toBe(400);
    expect(errorOf(refused).code).toBe('TXC_COMPENSATION_REQUIRED');
    const allowed = await read('readX');
    expect(allowed.statusCode).toBe(200);
    expect(allowed.json<ExecuteAnswer>()).toMatchObject({ mode: 'saga' });
    expect(w.db.d.data.get('y')).toBe(5);
  });

  it('execute: mode 2pc with a participant that cannot prepare is 400 TXC_TWO_PHASE_UNSUPPORTED; a failing statement rolls everything back', async () => {
    const w = await world();
    const refused = await execute(w, [{ participant: 'a', statement: 'setX', params: { value: 1, undo: 0 } }, { participant: 'c', statement: 'setX', params: { value: 2, undo: 0 } }], { mode: '2pc' });
    expect(refused.statusCode).toBe(400);
    expect(errorOf(refused).code).toBe('TXC_TWO_PHASE_UNSUPPORTED');
    const failed = await execute(w, [{ participant: 'a', statement: 'setX', params: { value: 9, undo: 0 } }, { participant: 'b', statement: 'boom' }]);
    expect(failed.statusCode).toBe(422);
    expect(errorOf(failed).code).toBe('TXC_QUERY_FAILED');
    expect(w.db.a.data.has('x')).toBe(false);
    expect(w.db.a.prepared.size).toBe(0);
  });

  it('sagas: 202, then GET follows it to committed; a repeated Idempotency-Key returns the first saga', async () => {
    const w = await world();
    const payload = {
      steps: [
        { name: 'charge', participant: 'svc', action: { path: '/charge', body: { cents: 5 } }, compensate: { path: '/refund', body: { cents: 5 } } },
        { name: 'book', participant: 'c', action: { statement: 'setX', params: { value: 5, undo: 0 } } },
      ],
    };
    const res = await w.app.inject({ method: 'POST', url: '/v1/sagas', headers: { ...client, 'idempotency-key': 'k-1' }, payload });
    expect(res.statusCode).toBe(202);
    const { id, existing } = res.json<{ id: string; existing: boolean }>();
    expect(existing).toBe(false);
    const view = await waitForSaga(w, id);
    expect(view.status).toBe('committed');
    expect(view.steps.map((s) => [s.name, s.action])).toEqual([
      ['charge', 'done'],
      ['book', 'done'],
    ]);
    expect(w.svc.count('/charge')).toBe(1);
    expect(w.db.c.data.get('x')).toBe(5);
    const again = await w.app.inject({ method: 'POST', url: '/v1/sagas', headers: { ...client, 'idempotency-key': 'k-1' }, payload });
    expect(again.json()).toEqual({ id, existing: true });
    expect(w.svc.count('/charge')).toBe(1);
  });

  it('sagas: a refused step compensates with the statement’s configured compensation', async () => {
    const w = await world();
    w.svc.refuse.add('/charge');
    const res = await w.app.inject({
      method: 'POST',
      url: '/v1/sagas',
      headers: client,
      payload: {
        steps: [
          { name: 'book', participant: 'c', action: { statement: 'setX', params: { value: 5, undo: -1 } } },
          { name: 'charge', participant: 'svc', action: { path: '/charge' } },
        ],
      },
    });
    const view = await waitForSaga(w, res.json<{ id: string }>().id);
    expect(view.status).toBe('compensated');
    expect(view.error?.code).toBe('TXC_STEP_REJECTED');
    expect(w.db.c.data.get('x')).toBe(-1);
  });

  it('client-driven 2PC: the application prepares each branch itself, then commit decides', async () => {
    const w = await world();
    const begun = await w.app.inject({ method: 'POST', url: '/v1/transactions', headers: client, payload: { participants: ['a'] } });
    expect(begun.statusCode).toBe(201);
    const view = begun.json<TransactionView>();
    const added = await w.app.inject({ method: 'POST', url: `/v1/transactions/${view.id}/branches`, headers: client, payload: { participant: 'b' } });
    expect(added.statusCode).toBe(201);
    const branches = [...view.branches, added.json<TransactionView['branches'][number]>()];
    // The application's own connections: run the work under each xid and prepare.
    for (const b of branches) {
      const adapter = w.adapters[b.participant as 'a' | 'b'];
      const branch = await adapter.begin({ formatId: b.formatId, gtrid: b.gtrid, bqual: b.bqual });
      await branch.query(`set ${b.participant}`, [42]);
      await branch.prepare();
      branch.release();
    }
    const commit = await w.app.inject({ method: 'POST', url: `/v1/transactions/${view.id}/commit`, headers: client });
    expect(commit.statusCode).toBe(200);
    expect(commit.json()).toMatchObject({ id: view.id, outcome: 'committed' });
    expect(w.db.a.data.get('a')).toBe(42);
    expect(w.db.b.data.get('b')).toBe(42);
    const got = await w.app.inject({ method: 'GET', url: `/v1/transactions/${view.id}`, headers: client });
    expect(got.json<TransactionView>().state).toMatch(/committ/);
  });

  it('client-driven 2PC: a branch not prepared makes commit a 409 and rolls the others back', async () => {
    const w = await world();
    const view = (await w.app.inject({ method: 'POST', url: '/v1/transactions', headers: client, payload: { participants: ['a', 'b'] } })).json<TransactionView>();
    const first = view.branches[0] as TransactionView['branches'][number];
    const branch = await w.adapters.a.begin({ formatId: first.formatId, gtrid: first.gtrid, bqual: first.bqual });
    await branch.query('set a', [1]);
    await branch.prepare();
    branch.release();
    const commit = await w.app.inject({ method: 'POST', url: `/v1/transactions/${view.id}/commit`, headers: client });
    expect(commit.statusCode).toBe(409);
    expect(errorOf(commit).code).toBe('TXC_PREPARE_FAILED');
    expect(w.db.a.prepared.size).toBe(0);
    expect(w.db.a.data.has('a')).toBe(false);
    const refused = await w.app.inject({ method: 'POST', url: '/v1/transactions', headers: client, payload: { participants: ['c'] } });
    expect(errorOf(refused).code).toBe('TXC_TWO_PHASE_UNSUPPORTED');
  });

  it("client-driven 2PC: another instance's transaction is 421 TXC_WRONG_INSTANCE naming it, on every route", async () => {
    const w = await world();
    const other = 'txc1.http-2.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b';
    for (const [method, url] of [['GET', ''], ['POST', '/commit'], ['POST', '/abort']] as const) {
      const res = await w.app.inject({ method, url: `/v1/transactions/${other}${url}`, headers: client, ...(method === 'POST' ? { payload: {} } : {}) });
      expect(res.statusCode).toBe(421);
      expect(res.json()).toMatchObject({ error: { code: 'TXC_WRONG_INSTANCE', details: { coordinatorId: 'http-2' } } });
    }
    const own = await w.app.inject({ method: 'GET', url: '/v1/transactions/txc1.http.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b', headers: client });
    expect(own.statusCode).toBe(404);
  });

  it('in-doubt: lists a prepared branch, refuses a resolution against the log, accepts it forced', async () => {
    const w = await world();
    // A branch left prepared by a crashed run of this coordinator: no commit record, and c and d
    // (one-phase) may hold a commit marker for it, so the log's answer is "ask the marker".
    const xid = branchXid(newGtrid('http'), 0);
    const branch = await w.adapters.a.begin(xid);
    await branch.query('set z', [1]);
    await branch.prepare();
    branch.release();
    const list = await w.app.inject({ method: 'GET', url: '/v1/in-doubt', headers: admin });
    expect(list.statusCode).toBe(200);
    const body = list.json<InDoubtAnswer>();
    expect(body.failures).toEqual([]);
    expect(body.branches).toEqual([expect.objectContaining({ participant: 'a', xid: `${xid.gtrid}.${xid.bqual}`, decision: 'marker', coordinatorId: 'http', inFlight: false })]);
    const url = `/v1/in-doubt/${xid.gtrid}.${xid.bqual}/resolve`;
    expect((await w.app.inject({ method: 'POST', url, headers: client, payload: { outcome: 'commit' } })).statusCode).toBe(403);
    const refused = await w.app.inject({ method: 'POST', url, headers: admin, payload: { outcome: 'commit' } });
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused).code).toBe('TXC_RESOLVE_REFUSED');
    const forced = await w.app.inject({ method: 'POST', url, headers: admin, payload: { outcome: 'commit', force: true } });
    expect(forced.statusCode).toBe(200);
    expect(forced.json()).toEqual({ xid: `${xid.gtrid}.${xid.bqual}`, outcome: 'commit', logDecision: 'marker', resolved: 1 });
    expect(w.db.a.data.get('z')).toBe(1);
    expect((await w.app.inject({ method: 'GET', url: '/v1/in-doubt', headers: admin })).json<InDoubtAnswer>().branches).toEqual([]);
    const missing = await w.app.inject({ method: 'POST', url, headers: admin, payload: { outcome: 'commit' } });
    expect(missing.statusCode).toBe(404);
    expect(xid.formatId).toBe(TXC_FORMAT_ID);
  });

  it('readiness and metrics reflect the real coordinator', async () => {
    const w = await world();
    expect((await w.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    await execute(w, [{ participant: 'a', statement: 'setX', params: { value: 1, undo: 0 } }, { participant: 'b', statement: 'setY', params: { value: 1, undo: 0 } }]);
    const metrics = await w.app.inject({ method: 'GET', url: '/metrics', headers: client });
    expect(metrics.body).toContain('txcoord_transactions_total{mode="2pc",outcome="committed"} 1');
    expect(metrics.body).toMatch(/txcoord_breaker_state\{participant="a",state="closed"\} 1/);

    const w2 = await world();
    w2.db.b.failNext('listInDoubt');
    const ready = await w2.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json<{ checks: Record<string, string> }>().checks['participant:b']).toBe('TXC_PARTICIPANT_UNAVAILABLE');
    await w2.coord.close();
    const closed = await w2.app.inject({ method: 'POST', url: '/v1/transactions/execute', headers: client, payload: { steps: [{ participant: 'a', statement: 'getX' }] } });
    expect(closed.statusCode).toBe(503);
    expect(errorOf(closed).code).toBe('TXC_COORDINATOR_CLOSED');
  });

  it('a deeply nested saga body is refused before it reaches the log', async () => {
    const w = await world();
    const res = await w.app.inject({
      method: 'POST',
      url: '/v1/sagas',
      headers: { ...client, 'content-type': 'application/json' },
      payload: `{"steps":[{"name":"a","participant":"svc","action":{"path":"/x","body":${'['.repeat(50_000)}${']'.repeat(50_000)}}}]}`,
    });
    expect(res.statusCode).toBe(400);
    expect(w.svc.calls).toBe(0);
  });
});
