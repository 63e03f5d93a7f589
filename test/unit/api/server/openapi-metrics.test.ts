import { describe, expect, it } from 'vitest';
import { client, gtrid, testServer } from './harness.js';

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown[]; requestBody?: unknown; responses: Record<string, unknown>; parameters?: { name: string; in: string }[] }>>;
  components: { securitySchemes: Record<string, unknown> };
}

describe('GET /docs/json', () => {
  it('is an OpenAPI 3.1 document listing every route, with bodies, params, errors and bearer security', async () => {
    const s = await testServer();
    const res = await s.request({ method: 'GET', url: '/docs/json', headers: client });
    expect(res.statusCode).toBe(200);
    const doc = res.json<OpenApiDoc>();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes['bearer']).toEqual({ type: 'http', scheme: 'bearer' });
    const expected: [string, string][] = [
      ['post', '/v1/sagas'],
      ['get', '/v1/sagas/{id}'],
      ['post', '/v1/transactions'],
      ['post', '/v1/transactions/{id}/branches'],
      ['post', '/v1/transactions/{id}/commit'],
      ['post', '/v1/transactions/{id}/abort'],
      ['get', '/v1/transactions/{id}'],
      ['post', '/v1/transactions/execute'],
      ['get', '/v1/in-doubt'],
      ['post', '/v1/in-doubt/{xid}/resolve'],
      ['get', '/healthz'],
      ['get', '/readyz'],
      ['get', '/metrics'],
    ];
    for (const [method, path] of expected) expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    const listed = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    expect(listed.sort()).toEqual(expected.map(([m, p]) => `${m} ${p}`).sort());
    expect(doc.paths['/healthz']?.['get']?.security).toEqual([]);
    expect(doc.paths['/v1/sagas']?.['post']?.requestBody).toBeDefined();
    expect(Object.keys(doc.paths['/v1/sagas']?.['post']?.responses ?? {})).toEqual(expect.arrayContaining(['202', '400', '401', '413', '415']));
    expect(doc.paths['/v1/sagas']?.['post']?.parameters?.some((p) => p.name === 'idempotency-key' && p.in === 'header')).toBe(true);
    expect(Object.keys(doc.paths['/v1/in-doubt/{xid}/resolve']?.['post']?.responses ?? {})).toEqual(expect.arrayContaining(['200', '403', '409']));
  });
});

describe('GET /metrics', () => {
  it('exports coordinator counters, breakers, in-doubt figures and latency histograms as Prometheus text', async () => {
    const s = await testServer();
    s.coord.counters.committed['2pc'] = 3;
    s.coord.counters.rolledBack = 2;
    s.coord.counters.phaseTwoRetries = 4;
    s.coord.counters.sagaRetries = 1;
    s.coord.counters.sagas.compensated = 5;
    s.coord.breakers = { ledger: { state: 'open', opened: 2 } };
    s.coord.branches = [
      { participant: 'ledger', gtrid: gtrid(1), bqual: 'b0', coordinatorId: 'unit', decision: 'commit', inFlight: false, ageMs: 90_000 },
      { participant: 'ledger', gtrid: gtrid(2), bqual: 'b0', coordinatorId: 'unit', decision: 'rollback', inFlight: false, ageMs: 1_000 },
    ];
    await s.request({ method: 'POST', url: '/v1/transactions/execute', headers: client, payload: { steps: [{ participant: 'ledger', statement: 'read', params: { id: 1 } }] } });
    await s.request({ method: 'GET', url: `/v1/sagas/${gtrid(5)}`, headers: client });
    await s.request({ method: 'GET', url: '/no/such/thing', headers: client });

    const res = await s.request({ method: 'GET', url: '/metrics', headers: client });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    expect(text).toContain('txcoord_transactions_total{mode="2pc",outcome="committed"} 4');
    expect(text).toContain('txcoord_transactions_total{mode="none",outcome="rolled_back"} 2');
    expect(text).toContain('txcoord_retries_total{kind="phase_two"} 4');
    expect(text).toContain('txcoord_retries_total{kind="saga"} 1');
    expect(text).toContain('txcoord_sagas_total{status="compensated"} 5');
    expect(text).toContain('txcoord_breaker_state{participant="ledger",state="open"} 1');
    expect(text).toContain('txcoord_breaker_state{participant="ledger",state="closed"} 0');
    expect(text).toContain('txcoord_breaker_opened_total{participant="ledger"} 2');
    expect(text).toContain('txcoord_in_doubt_branches 2');
    expect(text).toContain('txcoord_in_doubt_oldest_age_seconds 90');
    expect(text).toContain('txcoord_in_doubt_scan_ok 1');
    expect(text).toMatch(/txcoord_http_request_duration_seconds_count\{method="POST",route="\/v1\/transactions\/execute",status_code="200"\} 1/);
    expect(text).toMatch(/txcoord_http_request_duration_seconds_count\{method="GET",route="\/v1\/sagas\/:id",status_code="404"\} 1/);
    expect(text).toMatch(/route="unmatched",status_code="404"/);
    expect(text).toMatch(/txcoord_transaction_duration_seconds_count\{source="execute",mode="2pc",outcome="committed"\} 1/);
    // The raw path of an unmatched request never becomes a label.
    expect(text).not.toContain('/no/such/thing');
  });

  it('caches the in-doubt scan for scrapes (5 s) and survives a failing scan', async () => {
    const s = await testServer();
    await s.request({ method: 'GET', url: '/metrics', headers: client });
    await s.request({ method: 'GET', url: '/metrics', headers: client });
    expect(s.coord.calls.filter((c) => c.method === 'recover')).toHaveLength(1);
    await s.coord.close();
    const fresh = await testServer({ coord: s.coord });
    const res = await fresh.request({ method: 'GET', url: '/metrics', headers: client });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('txcoord_in_doubt_scan_ok 0');
  });
});
