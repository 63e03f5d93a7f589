import { describe, expect, it } from 'vitest';
import { pointerToField, STATUS_OF_CODE, toWireError } from '../../../../api/server/wire-error.js';
import { ERROR_CODES, TxcError, type TxcErrorCode } from '../../../../coordinator/errors.js';
import { ADMIN_TOKEN, CLIENT_TOKEN, admin, client, errorOf, gtrid, testConfig, testServer } from './harness.js';

/** Every route, with a body that passes validation. */
const ROUTES: readonly { method: 'GET' | 'POST'; url: string; payload?: object; admin?: boolean }[] = [
  { method: 'POST', url: '/v1/sagas', payload: { steps: [{ name: 'a', participant: 'billing', action: { path: '/x' } }] } },
  { method: 'GET', url: `/v1/sagas/${gtrid(1)}` },
  { method: 'POST', url: '/v1/transactions', payload: {} },
  { method: 'POST', url: `/v1/transactions/${gtrid(1)}/branches`, payload: { participant: 'ledger' } },
  { method: 'POST', url: `/v1/transactions/${gtrid(1)}/commit` },
  { method: 'POST', url: `/v1/transactions/${gtrid(1)}/abort` },
  { method: 'GET', url: `/v1/transactions/${gtrid(1)}` },
  { method: 'POST', url: '/v1/transactions/execute', payload: { steps: [{ participant: 'ledger', statement: 'read', params: { id: 1 } }] } },
  { method: 'GET', url: '/v1/in-doubt', admin: true },
  { method: 'POST', url: `/v1/in-doubt/${gtrid(1)}.b0/resolve`, payload: { outcome: 'commit' }, admin: true },
  { method: 'GET', url: '/metrics' },
  { method: 'GET', url: '/docs/json' },
];

describe('authentication', () => {
  it('every route but the probes answers 401 without a valid bearer token, and never reaches the coordinator', async () => {
    const s = await testServer();
    const bad = [
      {},
      { authorization: 'Bearer' },
      { authorization: `Basic ${Buffer.from(`u:${CLIENT_TOKEN}`).toString('base64')}` },
      { authorization: `Bearer ${CLIENT_TOKEN}x` },
      { authorization: `Bearer ${CLIENT_TOKEN.slice(0, -1)}` },
      { authorization: `Token ${CLIENT_TOKEN}` },
    ];
    for (const r of ROUTES) {
      for (const headers of bad) {
        const res = await s.request({ method: r.method, url: r.url, headers, ...(r.payload ? { payload: r.payload } : {}) });
        expect(res.statusCode, `${r.method} ${r.url} ${JSON.stringify(headers)}`).toBe(401);
        expect(errorOf(res).code).toBe('TXC_UNAUTHORIZED');
        expect(res.headers['www-authenticate']).toBe('Bearer realm="txcoord"');
      }
    }
    expect(s.coord.calls).toHaveLength(0);
    // An unknown path says 401 too: route names are not revealed to callers without a token.
    expect((await s.request({ method: 'GET', url: '/v1/secret' })).statusCode).toBe(401);
    expect((await s.request({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await s.request({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('a client token gets 403 on admin routes; an admin token may use every route; the scheme is case-insensitive', async () => {
    const s = await testServer();
    for (const r of ROUTES) {
      const res = await s.request({ method: r.method, url: r.url, headers: client, ...(r.payload ? { payload: r.payload } : {}) });
      if (r.admin) {
        expect(res.statusCode, r.url).toBe(403);
        expect(errorOf(res).code).toBe('TXC_FORBIDDEN');
      } else expect([200, 201, 202, 404], r.url).toContain(res.statusCode);
      const asAdmin = await s.request({ method: r.method, url: r.url, headers: admin, ...(r.payload ? { payload: r.payload } : {}) });
      expect([200, 201, 202, 404], r.url).toContain(asAdmin.statusCode);
    }
    expect((await s.request({ method: 'GET', url: '/metrics', headers: { authorization: `bearer ${ADMIN_TOKEN}` } })).statusCode).toBe(200);
  });
});

describe('configuration', () => {
  it('refuses to serve a token that is still a ${NAME} placeholder, or a config without api', async () => {
    await expect(testServer({ config: testConfig({ api: { tokens: { '${TXCOORD_CLIENT_TOKEN}': 'client' } } }) })).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_CONFIG_INVALID'));
    const { api: _api, ...noApi } = testConfig();
    await expect(testServer({ config: noApi })).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_CONFIG_INVALID') && e.details['field'] === 'api');
  });
});

describe('malformed requests', () => {
  it('malformed JSON, an empty JSON body, a JSON scalar and a forbidden key are 400 TXC_BAD_REQUEST', async () => {
    const s = await testServer();
    for (const payload of ['{"steps": [', '', '"steps"', '{"__proto__": {"polluted": true}}', '{"constructor": {"prototype": {"polluted": true}}}']) {
      const res = await s.request({ method: 'POST', url: '/v1/sagas', headers: { ...client, 'content-type': 'application/json' }, payload });
      expect(res.statusCode, payload).toBe(400);
      expect(errorOf(res).code).toBe('TXC_BAD_REQUEST');
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(s.coord.calls).toHaveLength(0);
  });

  it('a body over api.bodyLimitBytes is 413, another content type 415, both in the error shape', async () => {
    const s = await testServer({ config: testConfig({ api: { tokens: { [CLIENT_TOKEN]: 'client' }, bodyLimitBytes: 1024 } }) });
    const big = await s.request({ method: 'POST', url: '/v1/sagas', headers: client, payload: { steps: [{ name: 'a', participant: 'billing', action: { path: '/x', body: 'x'.repeat(2000) } }] } });
    expect(big.statusCode).toBe(413);
    expect(errorOf(big)).toMatchObject({ code: 'TXC_BAD_REQUEST' });
    expect(errorOf(big).message).toContain('1024 bytes');
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
      const res = await s.request({ method: 'POST', url: '/v1/transactions', headers: { ...client, 'content-type': type }, payload: 'a=b' });
      expect(res.statusCode, type).toBe(415);
      expect(errorOf(res).code).toBe('TXC_BAD_REQUEST');
    }
  });

  it('the default body limit is 1 MiB', async () => {
    const s = await testServer();
    const body = (n: number) => ({ steps: [{ name: 'a', participant: 'billing', action: { path: '/x', body: 'x'.repeat(n) } }] });
    expect((await s.request({ method: 'POST', url: '/v1/sagas', headers: client, payload: body(1_000_000) })).statusCode).toBe(202);
    expect((await s.request({ method: 'POST', url: '/v1/sagas', headers: client, payload: body(1_048_576) })).statusCode).toBe(413);
  });

  it('names the field for wrong types, missing and extra fields, and refuses coercion', async () => {
    const s = await testServer();
    const cases: [object, string, RegExp][] = [
      [{ steps: [{ name: 'a', participant: 'billing', action: { path: '/x' }, timeoutMs: '5' }] }, 'steps[0].timeoutMs', /must be integer/],
      [{ steps: [{ name: 'a', participant: 'billing' }] }, 'steps[0].action', /is required/],
      [{ steps: [{ name: 'a', participant: 'billing', action: { path: '/x', extra: 1 } }] }, 'steps[0].action.extra', /is not allowed/],
      [{ steps: [{ name: 'a b', participant: 'billing', action: { path: '/x' } }] }, 'steps[0].name', /step name/],
      [{ steps: [{ name: 'a', participant: 'billing', action: { path: '/x' } }], meta: { k: { nested: 1 } } }, 'meta.k', /string, number, boolean or null/],
      [{ steps: [{ name: 'a', participant: 'billing', action: { path: '/x' } }], meta: { 'bad key': 1 } }, 'meta["bad key"]', /not a valid key/],
      [{ steps: [{ name: 'a', participant: 'billing', action: {} }] }, 'steps[0].action', /fewer than 1 properties|must NOT have fewer/],
    ];
    for (const [payload, field, problem] of cases) {
      const res = await s.request({ method: 'POST', url: '/v1/sagas', headers: client, payload });
      expect(res.statusCode, field).toBe(400);
      const e = errorOf(res);
      expect(e.details?.['field']).toBe(field);
      expect(e.message).toContain(`\`${field}\``);
      expect(e.message).toMatch(problem);
    }
  });

  it('a body nested too deeply is a 400 naming where, not a stack overflow', async () => {
    const s = await testServer();
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const res = await s.request({
      method: 'POST',
      url: '/v1/sagas',
      headers: { ...client, 'content-type': 'application/json' },
      payload: `{"steps":[{"name":"a","participant":"billing","action":{"path":"/x","body":${'['.repeat(100_000)}${']'.repeat(100_000)}}}]}`,
    });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).details?.['field']).toMatch(/^steps\[0\]\.action\.body\[0\]/);
  });

  it('unknown query parameters are refused; an unknown route with a token is 404; a bad percent-encoding is 400', async () => {
    const s = await testServer();
    const q = await s.request({ method: 'GET', url: `/v1/transactions/${gtrid(1)}?force=true`, headers: client });
    expect(errorOf(q).details?.['field']).toBe('querystring.force');
    const nf = await s.request({ method: 'DELETE', url: '/v1/sagas/x', headers: client });
    expect(nf.statusCode).toBe(404);
    expect(errorOf(nf).code).toBe('TXC_NOT_FOUND');
    const url = await s.request({ method: 'GET', url: '/v1/sagas/%E0%A4%A', headers: client });
    expect(url.statusCode).toBe(400);
    expect(errorOf(url).code).toBe('TXC_BAD_REQUEST');
  });
});

describe('error mapping', () => {
  const ctx = { bodyLimit: 1, scrub: (s: string) => s.replace('secret', '***'), requestId: 'req-9' };

  it('maps every TxcError code: listed ones keep their message and status, the rest are 500 with the code and its generic text', () => {
    for (const code of Object.keys(ERROR_CODES) as TxcErrorCode[]) {
      const a = toWireError(new TxcError(code, 'specific fact with secret', { details: { field: 'x', n: 1, nested: undefined } }), ctx);
      const status = STATUS_OF_CODE[code];
      expect(a.body.error.code).toBe(code);
      if (status !== undefined) {
        expect(a.status).toBe(status);
        expect(a.body.error.message).toContain('specific fact with ***');
        expect(a.body.error.details).toEqual({ field: 'x', n: 1 });
      } else {
        expect(a.status).toBe(500);
        expect(a.body.error.message).not.toContain('specific fact');
        expect(a.body.error.message).toContain('req-9');
        expect(a.body.error.details).toBeUndefined();
      }
    }
    expect(toWireError(new TxcError('TXC_PARTICIPANT_UNAVAILABLE'), ctx).headers).toEqual({ 'retry-after': '1' });
    expect(STATUS_OF_CODE).toMatchObject({
      TXC_NOT_FOUND: 404,
      TXC_BAD_REQUEST: 400,
      TXC_RESOLVE_REFUSED: 409,
      TXC_PREPARE_FAILED: 409,
      TXC_TRANSACTION_CLOSED: 409,
      TXC_PARTICIPANT_UNKNOWN: 400,
      TXC_COMPENSATION_REQUIRED: 400,
      TXC_TWO_PHASE_UNSUPPORTED: 400,
      TXC_PARTICIPANT_UNAVAILABLE: 503,
      TXC_POOL_TIMEOUT: 503,
      TXC_COORDINATOR_CLOSED: 503,
    });
  });

  it('an unexpected error is a 500 TXC_INTERNAL with the request id and no stack; a TxcError 500 keeps only its code', async () => {
    const s = await testServer({ level: 'error' });
    s.coord.sagaStatus = async () => {
      throw new Error('boom at /srv/app/secret.js:12');
    };
    const res = await s.request({ method: 'GET', url: `/v1/sagas/${gtrid(1)}`, headers: client });
    expect(res.statusCode).toBe(500);
    const e = errorOf(res);
    expect(e.code).toBe('TXC_INTERNAL');
    expect(e.message).toMatch(/request id req-/);
    expect(res.body).not.toMatch(/boom|secret\.js|at /);
    expect(s.logs.text).toMatch(/boom/);

    s.coord.sagaStatus = async () => {
      throw new TxcError('TXC_LOG_IO', 'disk /dev/sda1 failed');
    };
    const io = await s.request({ method: 'GET', url: `/v1/sagas/${gtrid(1)}`, headers: client });
    expect(io.statusCode).toBe(500);
    expect(errorOf(io).code).toBe('TXC_LOG_IO');
    expect(io.body).not.toContain('/dev/sda1');
  });

  it('coordinator errors reach the client with their status: 503 with Retry-After, 409, 400', async () => {
    const s = await testServer();
    const fail = (err: TxcError) => {
      s.coord.transaction = () => Promise.reject(err);
    };
    const run = () => s.request({ method: 'POST', url: '/v1/transactions/execute', headers: client, payload: { steps: [{ participant: 'ledger', statement: 'read', params: { id: 1 } }] } });
    fail(new TxcError('TXC_PARTICIPANT_UNAVAILABLE', 'ledger down', { retryable: true }));
    let res = await run();
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    fail(new TxcError('TXC_PREPARE_FAILED', 'refused'));
    expect((await run()).statusCode).toBe(409);
    fail(new TxcError('TXC_COMPENSATION_REQUIRED', 'legacy needs one'));
    res = await run();
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('TXC_COMPENSATION_REQUIRED');
    await s.coord.close();
    s.coord.transaction = () => Promise.reject(new TxcError('TXC_COORDINATOR_CLOSED'));
    expect((await run()).statusCode).toBe(503);
  });

  it('turns JSON pointers into field paths', () => {
    expect(pointerToField('/steps/0/action/path', '')).toBe('steps[0].action.path');
    expect(pointerToField('', 'params')).toBe('params');
    expect(pointerToField('', '')).toBe('body');
    expect(pointerToField('/meta/a~1b~0c', '')).toBe('meta["a/b~c"]');
  });
});
