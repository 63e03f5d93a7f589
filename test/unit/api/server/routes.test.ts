import { describe, expect, it } from 'vitest';
import type { InDoubtAnswer, SagaView, TransactionView } from '../../../../client/wire-types.js';
import type { SagaDefinition, SagaRunOptions } from '../../../../sagas/saga-types.js';
import { admin, client, errorOf, gtrid, testServer } from './harness.js';

const serviceStep = { name: 'charge', participant: 'billing', action: { path: '/charge', body: { cents: 100 } }, compensate: { path: '/refund', body: { cents: 100 } } };

describe('POST /v1/sagas', () => {
  it('answers 202 with the id and a Location, passing the key, timeout and meta through', async () => {
    const s = await testServer();
    const res = await s.request({
      method: 'POST',
      url: '/v1/sagas',
      headers: { ...client, 'idempotency-key': 'order-42' },
      payload: { steps: [serviceStep], timeoutMs: 5000, meta: { user: 'u1', n: 2, ok: true, none: null } },
    });
    expect(res.statusCode).toBe(202);
    const body = res.json<{ id: string; existing: boolean }>();
    expect(body).toEqual({ id: gtrid(1), existing: false });
    expect(res.headers['location']).toBe(`/v1/sagas/${gtrid(1)}`);
    const call = s.coord.calls.find((c) => c.method === 'submitSaga');
    expect(call?.args[0]).toEqual({ steps: [serviceStep] } satisfies SagaDefinition);
    expect(call?.args[1]).toEqual({ idempotencyKey: 'order-42', timeoutMs: 5000, meta: { user: 'u1', n: 2, ok: true, none: null } } satisfies SagaRunOptions);

    const again = await s.request({ method: 'POST', url: '/v1/sagas', headers: { ...client, 'idempotency-key': 'order-42' }, payload: { steps: [serviceStep] } });
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual({ id: gtrid(1), existing: true });
  });

  it('translates named statements for the driver, with the configured compensation unless the step gives one', async () => {
    const s = await testServer();
    const res = await s.request({
      method: 'POST',
      url: '/v1/sagas',
      headers: client,
      payload: {
        steps: [
          { name: 'debit', participant: 'ledger', action: { statement: 'debit', params: { amount: 5, id: 'acc-1' } }, after: [] },
          { name: 'touch', participant: 'crm', action: { statement: 'touch', params: { id: 9 } }, compensate: { statement: 'touch', params: { id: 8 } }, timeoutMs: 1000 },
          serviceStep,
        ],
      },
    });
    expect(res.statusCode).toBe(202);
    const def = s.coord.calls.find((c) => c.method === 'submitSaga')?.args[0] as SagaDefinition;
    expect(def.steps[0]).toEqual({
      name: 'debit',
      participant: 'ledger',
      action: { sql: 'update accounts set balance = balance - $1 where id = $2', params: [5, 'acc-1'] },
      compensate: { sql: 'update accounts set balance = balance + $1 where id = $2', params: [5, 'acc-1'] },
      after: [],
    });
    expect(def.steps[1]).toEqual({
      name: 'touch',
      participant: 'crm',
      action: { sql: "update customers set seen = 'y' where id = ? or parent = ?", params: [9, 9] },
      compensate: { sql: "update customers set seen = 'y' where id = ? or parent = ?", params: [8, 8] },
      timeoutMs: 1000,
    });
  });

  it('refuses the wrong operation shape for the participant, naming the field', async () => {
    const s = await testServer();
    const cases: [unknown, number, string, string][] = [
      [{ name: 'a', participant: 'billing', action: { statement: 'debit' } }, 400, 'TXC_BAD_REQUEST', 'steps[0].action.statement'],
      [{ name: 'a', participant: 'ledger', action: { path: '/x' } }, 400, 'TXC_BAD_REQUEST', 'steps[0].action.path'],
      [{ name: 'a', participant: 'ledger', action: { statement: 'debit', body: {} } }, 400, 'TXC_BAD_REQUEST', 'steps[0].action.body'],
      [{ name: 'a', participant: 'billing', action: { path: '/x', statement: 'y' } }, 400, 'TXC_BAD_REQUEST', 'steps[0].action'],
      [{ name: 'a', participant: 'billing', action: { path: '/x' }, compensate: { path: '/a/../admin' } }, 400, 'TXC_BAD_REQUEST', 'steps[0].compensate.path'],
      [{ name: 'a', participant: 'billing', action: { path: '/%2E%2e/admin' } }, 400, 'TXC_BAD_REQUEST', 'steps[0].action.path'],
      [{ name: 'a', participant: 'nobody', action: { path: '/x' } }, 400, 'TXC_PARTICIPANT_UNKNOWN', 'steps[0].participant'],
      [{ name: 'a', participant: 'ledger', action: { statement: 'nope' } }, 400, 'TXC_BAD_REQUEST', 'steps[0].action.statement'],
      [{ name: 'a', participant: 'ledger', action: { statement: 'debit', params: { amount: 1 } } }, 400, 'TXC_BAD_REQUEST', 'steps[0].action.params.id'],
      [{ name: 'a', participant: 'billing', action: { path: '//evil.example/x' } }, 400, 'TXC_BAD_REQUEST', 'steps[0].action.path'],
    ];
    for (const [step, status, code, field] of cases) {
      const res = await s.request({ method: 'POST', url: '/v1/sagas', headers: client, payload: { steps: [step] } });
      expect(res.statusCode, JSON.stringify(step)).toBe(status);
      expect(errorOf(res).code).toBe(code);
      expect(errorOf(res).details?.['field']).toBe(field);
      expect(errorOf(res).message).toContain(field);
    }
    expect(s.coord.calls.filter((c) => c.method === 'submitSaga')).toHaveLength(0);
  });

  it('validates the Idempotency-Key header', async () => {
    const s = await testServer();
    const res = await s.request({ method: 'POST', url: '/v1/sagas', headers: { ...client, 'idempotency-key': 'x'.repeat(300) }, payload: { steps: [serviceStep] } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).details?.['field']).toBe('headers.idempotency-key');
  });
});

describe('GET /v1/sagas/:id', () => {
  it('answers the saga view, 404 when unknown, 400 for an id that is no txcoord id', async () => {
    const s = await testServer();
    const view: SagaView = { id: gtrid(7), status: 'compensated', steps: [{ name: 'a', action: 'failed', compensation: 'not-needed', error: { code: 'TXC_STEP_REJECTED', message: 'no' } }], error: { code: 'TXC_STEP_REJECTED', message: 'no', step: 'a' } };
    s.coord.sagaViews.set(gtrid(7), { ...view, secret: 'not in the contract' } as SagaView);
    const ok = await s.request({ method: 'GET', url: `/v1/sagas/${gtrid(7)}`, headers: client });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual(view);
    const missing = await s.request({ method: 'GET', url: `/v1/sagas/${gtrid(8)}`, headers: client });
    expect(missing.statusCode).toBe(404);
    expect(errorOf(missing).code).toBe('TXC_NOT_FOUND');
    const bad = await s.request({ method: 'GET', url: '/v1/sagas/12', headers: client });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).details?.['field']).toBe('params.id');
  });
});

describe('client-driven transactions', () => {
  it('begin → branches → commit, and GET shows each state', async () => {
    const s = await testServer();
    const begun = await s.request({ method: 'POST', url: '/v1/transactions', headers: client, payload: { participants: ['ledger'], timeoutMs: 30_000, meta: { order: 1 } } });
    expect(begun.statusCode).toBe(201);
    const view = begun.json<TransactionView>();
    expect(view.branches.map((b) => b.participant)).toEqual(['ledger']);
    expect(begun.headers['location']).toBe(`/v1/transactions/${view.id}`);
    expect(s.coord.calls[0]?.args[0]).toEqual({ participants: ['ledger'], timeoutMs: 30_000, meta: { order: 1 } });

    const branch = await s.request({ method: 'POST', url: `/v1/transactions/${view.id}/branches`, headers: client, payload: { participant: 'crm' } });
    expect(branch.statusCode).toBe(201);
    expect(branch.json()).toMatchObject({ participant: 'crm', gtrid: view.id, bqual: 'b1' });

    const got = await s.request({ method: 'GET', url: `/v1/transactions/${view.id}`, headers: client });
    expect(got.json<TransactionView>().branches).toHaveLength(2);

    const commit = await s.request({ method: 'POST', url: `/v1/transactions/${view.id}/commit`, headers: client });
    expect(commit.statusCode).toBe(200);
    expect(commit.json()).toEqual({ id: view.id, outcome: 'committed', phaseTwoPending: false });
    expect((await s.request({ method: 'GET', url: `/v1/transactions/${view.id}`, headers: client })).json<TransactionView>().state).toBe('committed');
  });

  it('begin without a body, abort with a reason, then a commit is 409', async () => {
    const s = await testServer();
    const begun = await s.request({ method: 'POST', url: '/v1/transactions', headers: client });
    expect(begun.statusCode).toBe(201);
    const { id } = begun.json<TransactionView>();
    const abort = await s.request({ method: 'POST', url: `/v1/transactions/${id}/abort`, headers: client, payload: { reason: 'user cancelled' } });
    expect(abort.statusCode).toBe(200);
    expect(abort.json()).toEqual({ id, outcome: 'aborted' });
    expect(s.coord.calls.find((c) => c.method === 'external.abort')?.args).toEqual([id, 'user cancelled']);
    const commit = await s.request({ method: 'POST', url: `/v1/transactions/${id}/commit`, headers: client, payload: {} });
    expect(commit.statusCode).toBe(409);
    expect(errorOf(commit).code).toBe('TXC_TRANSACTION_CLOSED');
    const branch = await s.request({ method: 'POST', url: `/v1/transactions/${id}/branches`, headers: client, payload: { participant: 'ledger' } });
    expect(branch.statusCode).toBe(409);
  });

  it('refuses participants that cannot prepare or do not exist, naming the field, before calling the coordinator', async () => {
    const s = await testServer();
    const oneWay = await s.request({ method: 'POST', url: '/v1/transactions', headers: client, payload: { participants: ['ledger', 'legacy'] } });
    expect(oneWay.statusCode).toBe(400);
    expect(errorOf(oneWay)).toMatchObject({ code: 'TXC_TWO_PHASE_UNSUPPORTED', details: { field: 'participants[1]' } });
    const service = await s.request({ method: 'POST', url: `/v1/transactions/${gtrid(1)}/branches`, headers: client, payload: { participant: 'billing' } });
    expect(errorOf(service)).toMatchObject({ code: 'TXC_TWO_PHASE_UNSUPPORTED', details: { field: 'participant' } });
    const unknown = await s.request({ method: 'POST', url: '/v1/transactions', headers: client, payload: { participants: ['x'] } });
    expect(errorOf(unknown)).toMatchObject({ code: 'TXC_PARTICIPANT_UNKNOWN', details: { field: 'participants[0]' } });
    expect(s.coord.calls).toHaveLength(0);
  });

  it('unknown ids are 404 on every route', async () => {
    const s = await testServer();
    for (const [method, url, payload] of [
      ['GET', `/v1/transactions/${gtrid(99)}`, undefined],
      ['POST', `/v1/transactions/${gtrid(99)}/commit`, undefined],
      ['POST', `/v1/transactions/${gtrid(99)}/abort`, undefined],
      ['POST', `/v1/transactions/${gtrid(99)}/branches`, { participant: 'ledger' }],
    ] as const) {
      const res = await s.request({ method, url, headers: client, ...(payload ? { payload } : {}) });
      expect(res.statusCode, url).toBe(404);
      expect(errorOf(res).code).toBe('TXC_NOT_FOUND');
    }
  });

  it('the timeout is bounded by the schema (at most one hour)', async () => {
    const s = await testServer();
    const res = await s.request({ method: 'POST', url: '/v1/transactions', headers: client, payload: { timeoutMs: 3_600_001 } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).details?.['field']).toBe('timeoutMs');
  });
});

describe('POST /v1/transactions/execute', () => {
  it('runs the statements in order in one transaction, compensation only where the participant cannot prepare', async () => {
    const s = await testServer();
    s.coord.answer = (participant) =>
      participant === 'ledger' ? { rows: [{ balance: 10n, at: new Date(0), raw: Buffer.from('hi'), n: Number.NaN, j: { a: [1] } }], rowCount: 1 } : { rows: [], rowCount: 1 };
    const res = await s.request({
      method: 'POST',
      url: '/v1/transactions/execute',
      headers: client,
      payload: {
        steps: [
          { participant: 'ledger', statement: 'debit', params: { amount: 5, id: 1 } },
          { participant: 'legacy', statement: 'audit', params: { msg: 'paid' } },
          { participant: 'legacy', statement: 'note', params: { msg: 'n' } },
        ],
        mode: 'saga',
        meta: { request: 'r1' },
      },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      id: gtrid(1),
      outcome: 'committed',
      mode: '2pc',
      guarantee: 'atomic',
      results: [
        { rowCount: 1, rows: [{ balance: '10', at: '1970-01-01T00:00:00.000Z', raw: 'aGk=', n: null, j: { a: [1] } }] },
        { rowCount: 1, rows: [] },
        { rowCount: 1, rows: [] },
      ],
    });
    expect(s.coord.calls[0]).toEqual({ method: 'transaction', args: [{ mode: 'saga', meta: { request: 'r1' } }] });
    expect(s.coord.queries).toEqual([
      { participant: 'ledger', sql: 'update accounts set balance = balance - $1 where id = $2', params: [5, 1], options: undefined },
      { participant: 'legacy', sql: 'insert into audit(msg) values ($1)', params: ['paid'], options: { compensate: { sql: 'delete from audit where msg = $1', params: ['paid'] } } },
      { participant: 'legacy', sql: 'insert into notes(msg) values ($1)', params: ['n'], options: undefined },
    ]);
  });

  it('refuses HTTP participants, unknown statements and bad modes before starting anything', async () => {
    const s = await testServer();
    const cases: [unknown, string, string][] = [
      [{ steps: [{ participant: 'billing', statement: 'x' }] }, 'TXC_BAD_REQUEST', 'steps[0].participant'],
      [{ steps: [{ participant: 'ledger', statement: 'read', params: { id: 1 } }, { participant: 'ledger', statement: 'gone' }] }, 'TXC_BAD_REQUEST', 'steps[1].statement'],
      [{ steps: [{ participant: 'ledger', statement: 'read', params: { id: 1 } }], mode: 'fast' }, 'TXC_BAD_REQUEST', 'mode'],
      [{ steps: [] }, 'TXC_BAD_REQUEST', 'steps'],
      [{ steps: [{ participant: 'ledger', statement: 'read', params: { id: 1, 'bad-name': 2 } }] }, 'TXC_BAD_REQUEST', 'steps[0].params.bad-name'],
    ];
    for (const [payload, code, field] of cases) {
      const res = await s.request({ method: 'POST', url: '/v1/transactions/execute', headers: client, payload: payload as object });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(errorOf(res)).toMatchObject({ code, details: { field } });
    }
    expect(s.coord.calls).toHaveLength(0);
  });
});

describe('admin routes', () => {
  const branch = (n: number, decision: 'commit' | 'rollback', ageMs?: number) => ({
    participant: 'ledger',
    gtrid: gtrid(n),
    bqual: 'b0',
    coordinatorId: 'unit',
    decision,
    inFlight: false,
    markerIn: ['x'],
    ...(ageMs !== undefined ? { ageMs } : {}),
  });

  it('GET /v1/in-doubt lists branches with their xid, and the participants that failed (scrubbed)', async () => {
    const s = await testServer();
    s.coord.branches = [branch(1, 'commit', 1500), branch(2, 'rollback')];
    s.coord.failures = [{ participant: 'crm', code: 'TXC_PARTICIPANT_UNAVAILABLE', message: 'connect mysql://app:hunter2@db2:3306 refused' }];
    const res = await s.request({ method: 'GET', url: '/v1/in-doubt', headers: admin });
    expect(res.statusCode).toBe(200);
    const body = res.json<InDoubtAnswer>();
    expect(body.branches[0]).toEqual({ participant: 'ledger', gtrid: gtrid(1), bqual: 'b0', xid: `${gtrid(1)}.b0`, coordinatorId: 'unit', decision: 'commit', inFlight: false, ageMs: 1500 });
    expect(body.failures).toEqual([{ participant: 'crm', code: 'TXC_PARTICIPANT_UNAVAILABLE', message: 'connect mysql://app:***@db2:3306 refused' }]);
  });

  it('resolve: 200 with what the log said, 409 when it contradicts the log, then force; 404 unknown; 400 bad xid', async () => {
    const s = await testServer();
    s.coord.branches = [branch(1, 'commit'), branch(2, 'rollback')];
    const refused = await s.request({ method: 'POST', url: `/v1/in-doubt/${gtrid(1)}.b0/resolve`, headers: admin, payload: { outcome: 'rollback' } });
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused)).toMatchObject({ code: 'TXC_RESOLVE_REFUSED', details: { logDecision: 'commit' } });
    const forced = await s.request({ method: 'POST', url: `/v1/in-doubt/${gtrid(1)}.b0/resolve`, headers: admin, payload: { outcome: 'rollback', force: true } });
    expect(forced.statusCode).toBe(200);
    expect(forced.json()).toEqual({ xid: `${gtrid(1)}.b0`, outcome: 'rollback', logDecision: 'commit', resolved: 1 });
    expect(s.logs.text).toMatch(/in-doubt branch resolved by hand/);
    const byGtrid = await s.request({ method: 'POST', url: `/v1/in-doubt/${gtrid(2)}/resolve`, headers: admin, payload: { outcome: 'rollback' } });
    expect(byGtrid.json()).toMatchObject({ xid: gtrid(2), resolved: 1 });
    // The list reflects the resolution at once (the cached scan was dropped).
    expect((await s.request({ method: 'GET', url: '/v1/in-doubt', headers: admin })).json<InDoubtAnswer>().branches).toHaveLength(0);
    const missing = await s.request({ method: 'POST', url: `/v1/in-doubt/${gtrid(3)}.b0/resolve`, headers: admin, payload: { outcome: 'commit' } });
    expect(missing.statusCode).toBe(404);
    const bad = await s.request({ method: 'POST', url: '/v1/in-doubt/xyz/resolve', headers: admin, payload: { outcome: 'commit' } });
    expect(errorOf(bad)).toMatchObject({ code: 'TXC_BAD_REQUEST', details: { field: 'params.xid' } });
    const noOutcome = await s.request({ method: 'POST', url: `/v1/in-doubt/${gtrid(3)}/resolve`, headers: admin, payload: { outcome: 'maybe' } });
    expect(errorOf(noOutcome)).toMatchObject({ code: 'TXC_BAD_REQUEST', details: { field: 'outcome' } });
    expect(errorOf(noOutcome).message).toContain('"commit", "rollback"');
  });
});

describe('health', () => {
  it('/healthz is 200 without a token; /readyz is 200 when all is well', async () => {
    const s = await testServer();
    expect((await s.request({ method: 'GET', url: '/healthz' })).json()).toEqual({ ok: true });
    const ready = await s.request({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ok: true, checks: { coordinator: 'ok', 'participant:ledger': 'ok', 'participant:legacy': 'ok', 'participant:billing': 'ok', 'participant:crm': 'ok', log: 'ok' } });
  });

  it('/readyz is 503 naming the failing participant or log by code only', async () => {
    const s = await testServer({ logProbe: async () => 'TXC_LOG_IO: log directory not writable' });
    s.coord.failures = [{ participant: 'crm', code: 'TXC_PARTICIPANT_UNAVAILABLE', message: 'connect to mysql://app:pw@host failed' }];
    const ready = await s.request({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    const body = ready.json<{ ok: boolean; checks: Record<string, string> }>();
    expect(body.ok).toBe(false);
    expect(body.checks['participant:crm']).toBe('TXC_PARTICIPANT_UNAVAILABLE');
    expect(body.checks['log']).toMatch(/^TXC_LOG_IO/);
    expect(ready.body).not.toContain('mysql://');
  });

  it('/readyz is 503 once the coordinator is closed, /healthz stays 200', async () => {
    const s = await testServer();
    await s.coord.close();
    const ready = await s.request({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json<{ checks: Record<string, string> }>().checks['coordinator']).toBe('TXC_COORDINATOR_CLOSED');
    expect((await s.request({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});
