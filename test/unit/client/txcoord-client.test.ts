import { afterEach, describe, expect, it } from 'vitest';
import { newGtrid } from '../../../coordinator/xid.js';
import { TxcoordClient, type FetchLike, type TxcoordClientOptions } from '../../../client/index.js';
import { startFakeServer, wireError, type FakeReply, type FakeRoute, type FakeServer } from './fake-server.js';
import { txcRejection } from './txc-rejection.js';

const TOKEN = 's3cr3t-t0ken';
const ID = newGtrid('unit', () => '0190d5a8-7b3c-7def-8123-456789abcdef');
const ok = (body: unknown, status = 200): FakeReply => ({ status, body });

let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(route: FakeRoute, options: Partial<TxcoordClientOptions> = {}) {
  server = await startFakeServer(route);
  const client = new TxcoordClient({ baseUrl: server.url, token: TOKEN, retryDelayMs: 1, ...options });
  return { client, server };
}

describe('TxcoordClient routes', () => {
  it('sends every call to its route with the bearer token, JSON bodies and typed answers', async () => {
    const view = { id: ID, state: 'active', deadlineAt: 1, branches: [] };
    const { client, server } = await setup((req) => {
      const route = `${req.method} ${req.url}`;
      switch (route) {
        case 'POST /v1/sagas':
          return ok({ id: ID, existing: false }, 202);
        case `GET /v1/sagas/${ID}`:
          return ok({ id: ID, status: 'committed', steps: [] });
        case 'POST /v1/transactions':
          return ok(view, 201);
        case `POST /v1/transactions/${ID}/branches`:
          return ok({ participant: 'erp', driver: 'postgres', formatId: 1, gtrid: ID, bqual: 'b0' });
        case `POST /v1/transactions/${ID}/commit`:
          return ok({ id: ID, outcome: 'committed', phaseTwoPending: false });
        case `POST /v1/transactions/${ID}/abort`:
          return ok({ id: ID, outcome: 'aborted' });
        case `GET /v1/transactions/${ID}`:
          return ok(view);
        case 'POST /v1/transactions/execute':
          return ok({ id: ID, outcome: 'committed', mode: '2pc', guarantee: 'atomic', results: [] });
        case 'GET /v1/in-doubt':
          return ok({ branches: [], failures: [] });
        case `POST /v1/in-doubt/${ID}.b0/resolve`:
          return ok({ xid: `${ID}.b0`, outcome: 'rollback', logDecision: 'unknown', resolved: 1 });
        case 'GET /healthz':
          return ok({ ok: true });
        case 'GET /readyz':
          return ok({ ok: true, checks: { log: 'ok' } });
        case 'GET /metrics':
          return { status: 200, text: 'txcoord_commits_total 3\n' };
        default:
          return wireError(404, 'TXC_NOT_FOUND', `no route ${route}`);
      }
    });
    const saga = { steps: [{ name: 's', participant: 'svc', action: { path: '/x' } }] };
    expect(await client.submitSaga(saga)).toEqual({ id: ID, existing: false });
    expect((await client.getSaga(ID)).status).toBe('committed');
    expect(await client.beginTransaction({ participants: ['erp'], timeoutMs: 5000, meta: { order: 7 } })).toEqual(view);
    expect((await client.addBranch(ID, 'erp')).participant).toBe('erp');
    expect((await client.commit(ID)).outcome).toBe('committed');
    expect((await client.abort(ID)).outcome).toBe('aborted');
    expect((await client.getTransaction(ID)).state).toBe('active');
    expect((await client.execute({ steps: [{ participant: 'erp', statement: 'debit', params: { n: 1 } }] })).guarantee).toBe('atomic');
    expect(await client.inDoubt()).toEqual({ branches: [], failures: [] });
    expect((await client.resolve(`${ID}.b0`, { outcome: 'rollback' })).resolved).toBe(1);
    await client.health();
    expect(await client.ready()).toEqual({ ok: true, checks: { log: 'ok' } });
    expect(await client.metrics()).toBe('txcoord_commits_total 3\n');

    expect(server.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    const posts = server.requests.filter((r) => r.method === 'POST');
    expect(posts.every((r) => r.headers['content-type'] === 'application/json')).toBe(true);
    expect(posts.map((r) => r.json)).toEqual([
      saga,
      { participants: ['erp'], timeoutMs: 5000, meta: { order: 7 } },
      { participant: 'erp' },
      {},
      {},
      { steps: [{ participant: 'erp', statement: 'debit', params: { n: 1 } }] },
      { outcome: 'rollback' },
    ]);
    // Without a key, no Idempotency-Key header is invented.
    expect(server.requests[0]?.headers['idempotency-key']).toBeUndefined();
  });

  it('keeps a path prefix of the base URL', async () => {
    const { server } = await setup(() => ok({ branches: [], failures: [] }));
    const client = new TxcoordClient({ baseUrl: `${server.url}/txcoord/`, token: TOKEN });
    await client.inDoubt();
    expect(server.requests[0]?.url).toBe('/txcoord/v1/in-doubt');
  });

  it('sends the idempotency key of submitSaga as a header', async () => {
    const { client, server } = await setup(() => ok({ id: ID, existing: true }, 202));
    expect(await client.submitSaga({ steps: [] }, { idempotencyKey: 'order-42' })).toEqual({ id: ID, existing: true });
    expect(server.requests[0]?.headers['idempotency-key']).toBe('order-42');
    for (const idempotencyKey of ['', ' k', 'k ', 'a\r\nb', 'ключ']) {
      await txcRejection(client.submitSaga({ steps: [] }, { idempotencyKey }), 'TXC_BAD_REQUEST');
    }
    expect(server.requests).toHaveLength(1);
  });

  it('uses an injected fetch', async () => {
    const urls: string[] = [];
    const fetch: FetchLike = async (url, init) => {
      urls.push(`${init.method} ${url}`);
      return { status: 200, headers: { get: () => null }, text: async () => '{"branches":[],"failures":[]}' };
    };
    const client = new TxcoordClient({ baseUrl: 'http://txcoord.test:8080', token: TOKEN, fetch });
    await client.inDoubt();
    expect(urls).toEqual(['GET http://txcoord.test:8080/v1/in-doubt']);
  });

  it('refuses ids that are not txcoord ids before sending anything', async () => {
    const { client, server } = await setup(() => ok({}));
    for (const id of ['..', '.', '', 'x/y', `${ID}/../..`]) {
      await txcRejection(client.getTransaction(id), 'TXC_ID_INVALID');
      await txcRejection(client.commit(id), 'TXC_ID_INVALID');
      await txcRejection(client.getSaga(id), 'TXC_ID_INVALID');
    }
    await txcRejection(client.resolve('../healthz', { outcome: 'commit' }), 'TXC_ID_INVALID');
    await txcRejection(client.addBranch(ID, 'bad name'), 'TXC_ID_INVALID');
    expect(server.requests).toHaveLength(0);
  });

  it('rejects invalid options with TXC_CONFIG_INVALID', () => {
    const bad: Partial<TxcoordClientOptions>[] = [
      { baseUrl: 'not a url' },
      { baseUrl: 'ftp://x' },
      { baseUrl: 'http://user:pw@x' },
      { baseUrl: 'http://x/?a=1' },
      { token: '' },
      { token: 'has space' },
      { timeoutMs: 0 },
      { retries: -1 },
      { retries: 1.5 },
      { retryDelayMs: Number.NaN },
    ];
    for (const over of bad) {
      expect(() => new TxcoordClient({ baseUrl: 'http://x', token: TOKEN, ...over }), JSON.stringify(over)).toThrow(
        expect.objectContaining({ code: 'TXC_CONFIG_INVALID' }),
      );
    }
  });
});

describe('TxcoordClient errors', () => {
  it('turns a WireError answer into a TxcError with the server code, message and details', async () => {
    const { client } = await setup(() =>
      wireError(409, 'TXC_PREPARE_FAILED', 'Transaction x was not prepared on crm, so it was rolled back everywhere. A participant refused to prepare, so the transaction was rolled back everywhere. See `cause`; retry the transaction if the failure was transient.', {
        participants: 'crm',
        nested: { a: [1] },
      }),
    );
    const err = await txcRejection(client.commit(ID), 'TXC_PREPARE_FAILED');
    // The server's message, exactly, not with the advice twice.
    expect(err.message).toBe(
      'Transaction x was not prepared on crm, so it was rolled back everywhere. A participant refused to prepare, so the transaction was rolled back everywhere. See `cause`; retry the transaction if the failure was transient.',
    );
    expect(err.details).toEqual({ participants: 'crm', nested: '{"a":[1]}', httpStatus: 409 });
    expect(err.retryable).toBe(false);
  });

  it.each([
    [401, 'TXC_UNAUTHORIZED', false],
    [403, 'TXC_FORBIDDEN', false],
    [404, 'TXC_NOT_FOUND', false],
    [400, 'TXC_BAD_REQUEST', false],
    [503, 'TXC_PARTICIPANT_UNAVAILABLE', true],
  ] as const)('maps HTTP %i with the code %s (retryable: %s)', async (status, code, retryable) => {
    const { client } = await setup(() => wireError(status, code, `fact for ${status}`));
    const err = await txcRejection(client.execute({ steps: [] }), code);
    expect(err.message.startsWith(`fact for ${status}. `)).toBe(true);
    expect(err.retryable).toBe(retryable);
    expect(err.details['httpStatus']).toBe(status);
  });

  it('falls back to a code from the status for bodies that are no WireError or unknown codes', async () => {
    const { client, server } = await setup(() => ({ status: 502, text: '<html>Bad Gateway</html>' }), { retries: 0 });
    let err = await txcRejection(client.inDoubt(), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('HTTP 502 to GET /v1/in-doubt: <html>Bad Gateway</html>');
    server.route = () => wireError(404, 'TXC_FROM_THE_FUTURE', 'new code');
    err = await txcRejection(client.getTransaction(ID), 'TXC_NOT_FOUND');
    expect(err.details['serverCode']).toBe('TXC_FROM_THE_FUTURE');
    server.route = () => ({ status: 500, text: '' });
    err = await txcRejection(client.inDoubt(), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(err.retryable).toBe(false);
  });

  it('reports a redirect as a misconfigured base URL instead of following it', async () => {
    const { client, server } = await setup(() => ({ status: 308, headers: { location: 'https://elsewhere/v1/transactions' } }));
    const err = await txcRejection(client.beginTransaction({}), 'TXC_CONFIG_INVALID');
    expect(err.message).toContain('https://elsewhere/v1/transactions');
    expect(server.requests).toHaveLength(1);
  });

  it('reports a refused connection as TXC_PARTICIPANT_UNAVAILABLE, retryable, with the cause', async () => {
    const { server } = await setup(() => ok({}));
    const url = server.url;
    await server.close();
    const client = new TxcoordClient({ baseUrl: url, token: TOKEN, retries: 0 });
    const err = await txcRejection(client.inDoubt(), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.cause).toBeDefined();
    expect(err.details['code']).toBe('ECONNREFUSED');
    expect(err.details['httpStatus']).toBeUndefined();
  });

  it('gives up on an attempt after timeoutMs', async () => {
    const { client, server } = await setup(() => 'hang', { timeoutMs: 50, retries: 0 });
    const started = Date.now();
    const err = await txcRejection(client.commit(ID), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.retryable).toBe(true);
    expect(err.details['timeoutMs']).toBe(50);
    expect(server.requests).toHaveLength(1);
  });

  it('reports a 2xx body that is not JSON', async () => {
    const { client } = await setup(() => ({ status: 200, text: 'hello' }));
    const err = await txcRejection(client.inDoubt(), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(err.retryable).toBe(false);
  });
});

describe('TxcoordClient retries', () => {
  /** Answers with `first` for the first `n` requests, then with `then`. */
  function flaky(n: number, first: FakeReply, then: FakeReply): FakeRoute {
    let seen = 0;
    return () => (++seen <= n ? first : then);
  }
  const unavailable = wireError(503, 'TXC_PARTICIPANT_UNAVAILABLE', 'not now');

  it('retries GETs after 503, dropped connections and timeouts, up to `retries` times', async () => {
    const { client, server } = await setup(flaky(2, unavailable, ok({ branches: [], failures: [] })), { retries: 2 });
    await client.inDoubt();
    expect(server.requests).toHaveLength(3);

    server.requests.length = 0;
    server.route = flaky(1, 'drop', ok({ id: ID, status: 'running', steps: [] }));
    await client.getSaga(ID);
    expect(server.requests).toHaveLength(2);

    server.requests.length = 0;
    server.route = flaky(5, unavailable, ok({}));
    const err = await txcRejection(client.inDoubt(), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(server.requests).toHaveLength(3);
    expect(err.details['attempts']).toBe(3);
  });

  it('honours Retry-After', async () => {
    const slow: FakeReply = { status: 503, body: { error: { code: 'TXC_PARTICIPANT_UNAVAILABLE', message: 'later' } }, headers: { 'retry-after': '1' } };
    const { client, server } = await setup(flaky(1, slow, ok({ branches: [], failures: [] })), { retries: 1 });
    const started = Date.now();
    await client.inDoubt();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(server.requests).toHaveLength(2);
  });

  it('never retries a 4xx or a 500', async () => {
    const { client, server } = await setup(() => wireError(404, 'TXC_NOT_FOUND', 'no'), { retries: 3 });
    await txcRejection(client.getTransaction(ID), 'TXC_NOT_FOUND');
    expect(server.requests).toHaveLength(1);
    server.route = () => wireError(500, 'TXC_LOG_IO', 'disk');
    await txcRejection(client.getTransaction(ID), 'TXC_LOG_IO');
    expect(server.requests).toHaveLength(2);
  });

  it('does not retry POSTs that are not idempotent', async () => {
    const { client, server } = await setup(() => unavailable, { retries: 3 });
    await txcRejection(client.execute({ steps: [] }), 'TXC_PARTICIPANT_UNAVAILABLE');
    await txcRejection(client.beginTransaction({}), 'TXC_PARTICIPANT_UNAVAILABLE');
    await txcRejection(client.addBranch(ID, 'erp'), 'TXC_PARTICIPANT_UNAVAILABLE');
    await txcRejection(client.resolve(ID, { outcome: 'commit' }), 'TXC_PARTICIPANT_UNAVAILABLE');
    await txcRejection(client.submitSaga({ steps: [] }), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(server.requests).toHaveLength(5);
  });

  it('retries submitSaga with an idempotency key, sending the same key each time', async () => {
    const { client, server } = await setup(flaky(1, 'drop', ok({ id: ID, existing: true }, 202)), { retries: 3 });
    expect(await client.submitSaga({ steps: [] }, { idempotencyKey: 'k-1' })).toEqual({ id: ID, existing: true });
    expect(server.requests.map((r) => r.headers['idempotency-key'])).toEqual(['k-1', 'k-1']);
  });

  it('never retries commit or abort unless asked to', async () => {
    const { client, server } = await setup(() => 'drop', { retries: 3 });
    await txcRejection(client.commit(ID), 'TXC_PARTICIPANT_UNAVAILABLE');
    await txcRejection(client.abort(ID), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(server.requests).toHaveLength(2);

    server.requests.length = 0;
    server.route = flaky(2, 'drop', ok({ id: ID, outcome: 'committed', phaseTwoPending: true }));
    expect(await client.commit(ID, { retry: true })).toEqual({ id: ID, outcome: 'committed', phaseTwoPending: true });
    expect(server.requests).toHaveLength(3);
    expect(server.requests.every((r) => r.url === `/v1/transactions/${ID}/commit`)).toBe(true);
  });
});

describe('ready, health and waitForSaga', () => {
  it('ready() returns a 503 ReadyAnswer as an answer, not an error, and does not retry it', async () => {
    const { client, server } = await setup(() => ok({ ok: false, checks: { log: 'ok', erp: 'TXC_PARTICIPANT_UNAVAILABLE' } }, 503));
    expect(await client.ready()).toEqual({ ok: false, checks: { log: 'ok', erp: 'TXC_PARTICIPANT_UNAVAILABLE' } });
    expect(server.requests).toHaveLength(1);
    server.route = () => ({ status: 503, text: 'starting' });
    await txcRejection(client.ready(), 'TXC_PARTICIPANT_UNAVAILABLE');
  });

  it('health() rejects when the server is not healthy', async () => {
    const { client } = await setup(() => wireError(401, 'TXC_UNAUTHORIZED', 'who are you'));
    await txcRejection(client.health(), 'TXC_UNAUTHORIZED');
  });

  it('waitForSaga polls until the saga is no longer running', async () => {
    const statuses = ['running', 'running', 'compensated'];
    const { client, server } = await setup(() => ok({ id: ID, status: statuses.shift() ?? 'compensated', steps: [] }));
    const view = await client.waitForSaga(ID, { pollMs: 5, timeoutMs: 5000 });
    expect(view.status).toBe('compensated');
    expect(server.requests).toHaveLength(3);
  });

  it('waitForSaga resolves with the running view once its timeout has passed', async () => {
    const { client, server } = await setup(() => ok({ id: ID, status: 'running', steps: [] }));
    const started = Date.now();
    const view = await client.waitForSaga(ID, { pollMs: 10, timeoutMs: 60 });
    expect(view.status).toBe('running');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(server.requests.length).toBeGreaterThan(1);
    await txcRejection(client.waitForSaga(ID, { pollMs: 0 }), 'TXC_BAD_REQUEST');
  });
});
