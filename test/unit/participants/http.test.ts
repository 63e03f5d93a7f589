import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TxcError, type TxcErrorCode } from '../../../coordinator/errors.js';
import { branchXid, newGtrid } from '../../../coordinator/xid.js';
import type { HttpFetch, HttpRequestInit, HttpResponse } from '../../../participants/http/driver.js';
import { classifyFetchError, classifyHttpStatus } from '../../../participants/http/errors.js';
import { createHttpParticipant } from '../../../participants/http/index.js';
import { HttpParticipant } from '../../../participants/http/participant.js';
import type { HttpParticipantConfig } from '../../../participants/participant-config.js';
import type { InvokeRequest, Participant } from '../../../participants/participant.js';
import { startLedgerService, type LedgerService } from '../../fixtures/ledger-service.js';

const silent = pino({ level: 'silent' });
const XID = branchXid(newGtrid('unit', () => '0190d5a8-7b3c-7def-8123-456789abcdef'), 0);
const TOKEN = 'Bearer s3cr3t-t0ken';

function config(over: Partial<HttpParticipantConfig> = {}): HttpParticipantConfig {
  return { driver: 'http', baseUrl: 'http://svc.test/api', ...over };
}

/** A scripted response as fetch would give it. */
function reply(status: number, body = '', contentType: string | null = 'application/json'): HttpResponse {
  return { status, headers: { get: (n) => (n.toLowerCase() === 'content-type' ? contentType : null) }, text: async () => body };
}

/** A fetch fake that records every call and answers with `answer`. */
function fakeFetch(answer: (url: string, init: HttpRequestInit) => Promise<HttpResponse> | HttpResponse = () => reply(200, '{}')) {
  const calls: { url: string; init: HttpRequestInit }[] = [];
  const fetch: HttpFetch = async (url, init) => {
    calls.push({ url, init });
    return answer(url, init);
  };
  return { fetch, calls };
}

/** A fetch fake that never answers, and rejects with the signal's reason when aborted (as fetch does). */
const hangingFetch: HttpFetch = (_url, init) =>
  new Promise((_resolve, reject) => {
    init.signal.addEventListener('abort', () => reject(init.signal.reason), { once: true });
  });

function participant(fetch: HttpFetch, over: Partial<HttpParticipantConfig> = {}, logger: Logger = silent): HttpParticipant {
  return new HttpParticipant('billing', config(over), { fetch, logger });
}

function capturingLogger() {
  const lines: string[] = [];
  return { lines, logger: pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }) };
}

const req = (over: Partial<InvokeRequest> = {}): InvokeRequest => ({ path: '/charge', body: { cents: 100 }, idempotencyKey: 'saga-1:charge:action', ...over });

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function txcRejection(p: Promise<unknown>, code: TxcErrorCode): Promise<TxcError> {
  const err = await rejection(p);
  expect(TxcError.is(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  return err as TxcError;
}

describe('classifyHttpStatus', () => {
  it.each([
    [200, 'ok'],
    [201, 'ok'],
    [204, 'ok'],
    [299, 'ok'],
    [409, 'rejected'],
    [422, 'rejected'],
    [400, 'misconfigured'],
    [401, 'misconfigured'],
    [403, 'misconfigured'],
    [404, 'misconfigured'],
    [405, 'misconfigured'],
    [301, 'misconfigured'],
    [302, 'misconfigured'],
    [408, 'unavailable'],
    [429, 'unavailable'],
    [500, 'unavailable'],
    [502, 'unavailable'],
    [503, 'unavailable'],
    [504, 'unavailable'],
  ] as const)('%i → %s', (status, kind) => {
    expect(classifyHttpStatus(status)).toBe(kind);
  });
});

describe('classifyFetchError', () => {
  it('finds the code on the cause, a nested cause or an AggregateError member', () => {
    expect(classifyFetchError(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }))).toEqual({
      kind: 'network',
      code: 'ECONNREFUSED',
    });
    const nested = new TypeError('fetch failed', { cause: new Error('y', { cause: Object.assign(new Error('z'), { code: 'UND_ERR_SOCKET' }) }) });
    expect(classifyFetchError(nested).code).toBe('UND_ERR_SOCKET');
    const agg = new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })]);
    expect(classifyFetchError(new TypeError('fetch failed', { cause: agg })).code).toBe('ECONNREFUSED');
  });

  it('a TypeError with no cause is a request fetch refused to build; anything else is the network', () => {
    expect(classifyFetchError(new TypeError('invalid header'))).toEqual({ kind: 'request' });
    expect(classifyFetchError(new Error('weird'))).toEqual({ kind: 'network' });
  });
});

describe('HttpParticipant with an injected fetch', () => {
  it('is compensation only and never takes part in a transaction', async () => {
    const { fetch, calls } = fakeFetch();
    const p = participant(fetch);
    expect(p.capabilities).toEqual({ twoPhase: false, localTransactions: false });
    expect(p.driver).toBe('http');
    for (const call of [() => p.begin(XID), () => p.commitPrepared(XID), () => p.rollbackPrepared(XID)]) {
      const err = await txcRejection(call(), 'TXC_UNSUPPORTED');
      expect(err.message).toContain('billing');
      expect(err.message).toContain('coord.saga');
    }
    expect(await p.listInDoubt()).toEqual([]);
    expect(calls).toHaveLength(0);
  });

  it('preflight checks the configuration without calling the service', async () => {
    const { fetch, calls } = fakeFetch();
    await participant(fetch).preflight();
    expect(calls).toHaveLength(0);

    const bad: Partial<HttpParticipantConfig>[] = [
      { baseUrl: 'not a url' },
      { baseUrl: 'ftp://svc.test/' },
      { baseUrl: 'http://svc.test/api?x=1' },
      { baseUrl: 'http://svc.test/api#frag' },
      { timeoutMs: 0 },
      { timeoutMs: Number.POSITIVE_INFINITY },
      { headers: { 'bad name': 'x' } },
      { headers: { authorization: 'a\r\nb' } },
      { headers: { 'Idempotency-Key': 'fixed' } },
      { headers: { Host: 'elsewhere' } },
      { headers: { 'X-A': '1', 'x-a': '2' } },
      { baseUrl: 'http://u:p@svc.test/', headers: { Authorization: TOKEN } },
    ];
    for (const over of bad) {
      const p = participant(fetch, over);
      const err = await txcRejection(p.preflight(), 'TXC_CONFIG_INVALID');
      expect(err.retryable).toBe(false);
      expect(err.message).not.toContain(TOKEN);
      // invoke refuses too, with a code of the invoke contract, instead of sending anything
      const e2 = await txcRejection(p.invoke(req()), 'TXC_STEP_MISCONFIGURED');
      expect(TxcError.is(e2.cause, 'TXC_CONFIG_INVALID')).toBe(true);
    }
    expect(calls).toHaveLength(0);
  });

  it('POSTs JSON to baseUrl + path with the key, the configured headers and JSON content type', async () => {
    const { fetch, calls } = fakeFetch(() => reply(201, '{"id":"ch_1"}'));
    const p = participant(fetch, { baseUrl: 'http://svc.test/api/', headers: { Authorization: TOKEN, 'X-Tenant': 't1' } });
    const out = await p.invoke(req());
    expect(out).toEqual({ status: 201, body: { id: 'ch_1' } });
    expect(calls).toHaveLength(1);
    const [{ url, init }] = calls as [{ url: string; init: HttpRequestInit }];
    expect(url).toBe('http://svc.test/api/charge');
    expect(init.method).toBe('POST');
    expect(init.redirect).toBe('manual');
    expect(init.body).toBe('{"cents":100}');
    expect(init.headers).toEqual({
      authorization: TOKEN,
      'x-tenant': 't1',
      'content-type': 'application/json',
      accept: 'application/json',
      'idempotency-key': 'saga-1:charge:action',
    });
  });

  it('joins base and path with exactly one slash', async () => {
    const cases: [string, string, string][] = [
      ['http://svc.test', '/x', 'http://svc.test/x'],
      ['http://svc.test/', '/x', 'http://svc.test/x'],
      ['http://svc.test/api', '/x/y?z=1', 'http://svc.test/api/x/y?z=1'],
      ['http://svc.test/api//', '/x', 'http://svc.test/api/x'],
    ];
    for (const [baseUrl, path, expected] of cases) {
      const { fetch, calls } = fakeFetch();
      await participant(fetch, { baseUrl }).invoke(req({ path }));
      expect(calls[0]?.url).toBe(expected);
    }
  });

  it('sends the same key on every retry and a configured accept header wins', async () => {
    const { fetch, calls } = fakeFetch(() => reply(503));
    const p = participant(fetch, { headers: { Accept: 'application/vnd.billing+json' } });
    for (let i = 0; i < 3; i++) await txcRejection(p.invoke(req()), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(calls.map((c) => c.init.headers['idempotency-key'])).toEqual(['saga-1:charge:action', 'saga-1:charge:action', 'saga-1:charge:action']);
    expect(calls[0]?.init.headers['accept']).toBe('application/vnd.billing+json');
  });

  it('classifies every answer', async () => {
    const table: [number, TxcErrorCode | 'ok', boolean][] = [
      [200, 'ok', false],
      [204, 'ok', false],
      [409, 'TXC_STEP_REJECTED', false],
      [422, 'TXC_STEP_REJECTED', false],
      [400, 'TXC_STEP_MISCONFIGURED', false],
      [401, 'TXC_STEP_MISCONFIGURED', false],
      [403, 'TXC_STEP_MISCONFIGURED', false],
      [404, 'TXC_STEP_MISCONFIGURED', false],
      [302, 'TXC_STEP_MISCONFIGURED', false],
      [408, 'TXC_PARTICIPANT_UNAVAILABLE', true],
      [429, 'TXC_PARTICIPANT_UNAVAILABLE', true],
      [500, 'TXC_PARTICIPANT_UNAVAILABLE', true],
      [502, 'TXC_PARTICIPANT_UNAVAILABLE', true],
      [503, 'TXC_PARTICIPANT_UNAVAILABLE', true],
    ];
    for (const [status, code, retryable] of table) {
      const { fetch } = fakeFetch(() => reply(status, status === 204 ? '' : '{"error":"e"}'));
      const p = participant(fetch);
      if (code === 'ok') {
        expect((await p.invoke(req())).status).toBe(status);
        continue;
      }
      const err = await txcRejection(p.invoke(req()), code);
      expect(err.retryable, `retryable of ${status}`).toBe(retryable);
      expect(err.details).toMatchObject({ participant: 'billing', status });
    }
  });

  it('puts the refusal body, truncated, in the message', async () => {
    const { fetch } = fakeFetch(() => reply(409, '{"error":"insufficient funds"}'));
    const err = await txcRejection(participant(fetch).invoke(req()), 'TXC_STEP_REJECTED');
    expect(err.message).toContain('insufficient funds');
    expect(err.message).toContain('409');
    expect(err.details).toEqual({ participant: 'billing', status: 409, path: '/charge' });

    const long = 'x'.repeat(5_000);
    const { fetch: f2 } = fakeFetch(() => reply(422, long, 'text/plain'));
    const e2 = await txcRejection(participant(f2).invoke(req()), 'TXC_STEP_REJECTED');
    expect(e2.message).toContain(`${'x'.repeat(500)}…`);
    expect(e2.message).not.toContain('x'.repeat(501));
  });

  it('parses JSON bodies, keeps other text, and gives null for an empty body', async () => {
    const cases: [string, string | null, unknown][] = [
      ['{"a":1}', 'application/json; charset=utf-8', { a: 1 }],
      ['{"a":1}', 'application/problem+json', { a: 1 }],
      ['{"a":1}', null, { a: 1 }],
      ['[1,2]', 'application/json', [1, 2]],
      ['42', 'text/plain', '42'],
      ['not json', 'application/json', 'not json'],
      ['not json', null, 'not json'],
      ['', 'application/json', null],
    ];
    for (const [text, type, expected] of cases) {
      const { fetch } = fakeFetch(() => reply(200, text, type));
      expect((await participant(fetch).invoke(req())).body).toEqual(expected);
    }
  });

  it('sends no body when the step has none, and refuses one that is not JSON', async () => {
    const { fetch, calls } = fakeFetch();
    const p = participant(fetch);
    await p.invoke({ path: '/ping', idempotencyKey: 'k' });
    expect(calls[0]?.init.body).toBeUndefined();
    expect(calls[0]?.init.headers['content-type']).toBe('application/json');
    await txcRejection(p.invoke(req({ body: { n: 10n } })), 'TXC_STEP_MISCONFIGURED');
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    await txcRejection(p.invoke(req({ body: cyclic })), 'TXC_STEP_MISCONFIGURED');
    await txcRejection(p.invoke(req({ body: () => 1 })), 'TXC_STEP_MISCONFIGURED');
    expect(calls).toHaveLength(1);
  });

  it('refuses bad paths, keys and timeouts before sending', async () => {
    const { fetch, calls } = fakeFetch();
    const p = participant(fetch);
    for (const path of ['charge', '', '//evil.test/x', '/a b', '/a\nb', '/a#b', 'http://other.test/x']) {
      const err = await txcRejection(p.invoke(req({ path })), 'TXC_STEP_MISCONFIGURED');
      expect(err.retryable).toBe(false);
    }
    for (const idempotencyKey of ['', ' k', 'k ', 'a\r\nb', 'ключ']) {
      await txcRejection(p.invoke(req({ idempotencyKey })), 'TXC_STEP_MISCONFIGURED');
    }
    for (const timeoutMs of [0, -1, Number.NaN, 2 ** 31]) {
      await txcRejection(p.invoke(req({ timeoutMs })), 'TXC_STEP_MISCONFIGURED');
    }
    expect(calls).toHaveLength(0);
  });

  it('a network failure is retryable UNAVAILABLE with its code; a request fetch cannot build is MISCONFIGURED', async () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'CERT_HAS_EXPIRED']) {
      const cause = Object.assign(new Error(code), { code });
      const { fetch } = fakeFetch(() => Promise.reject(new TypeError('fetch failed', { cause })));
      const err = await txcRejection(participant(fetch).invoke(req()), 'TXC_PARTICIPANT_UNAVAILABLE');
      expect(err.retryable).toBe(true);
      expect(err.details['code']).toBe(code);
      expect(err.cause).toBeInstanceOf(TypeError);
    }
    const { fetch } = fakeFetch(() => Promise.reject(new TypeError('Headers.append: invalid value')));
    const err = await txcRejection(participant(fetch).invoke(req()), 'TXC_STEP_MISCONFIGURED');
    expect(err.retryable).toBe(false);
  });

  it('a lost 2xx body is retryable (possibly completed); a lost error body keeps the status verdict', async () => {
    const lost = (status: number): HttpResponse => ({
      status,
      headers: { get: () => null },
      text: () => Promise.reject(new TypeError('terminated', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) })),
    });
    const e1 = await txcRejection(participant(fakeFetch(() => lost(200)).fetch).invoke(req()), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(e1.retryable).toBe(true);
    await txcRejection(participant(fakeFetch(() => lost(409)).fetch).invoke(req()), 'TXC_STEP_REJECTED');
  });

  it('times out each attempt: retryable UNAVAILABLE', async () => {
    const p = participant(hangingFetch, { timeoutMs: 10_000 });
    const started = Date.now();
    const err = await txcRejection(p.invoke(req({ timeoutMs: 30 })), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ participant: 'billing', timeoutMs: 30 });

    const p2 = participant(hangingFetch, { timeoutMs: 25 });
    expect((await txcRejection(p2.invoke(req()), 'TXC_PARTICIPANT_UNAVAILABLE')).details['timeoutMs']).toBe(25);
  });

  it("the caller's abort rejects with the signal's reason, not a retryable error", async () => {
    const p = participant(hangingFetch);
    const ac = new AbortController();
    const reason = new Error('saga deadline');
    const pending = p.invoke(req({ signal: ac.signal }));
    setTimeout(() => ac.abort(reason), 10);
    expect(await rejection(pending)).toBe(reason);

    // Already aborted: nothing is sent.
    const { fetch, calls } = fakeFetch();
    const ac2 = new AbortController();
    ac2.abort(reason);
    expect(await rejection(participant(fetch).invoke(req({ signal: ac2.signal })))).toBe(reason);
    expect(calls).toHaveLength(0);
  });

  it('leaves no listener on the caller signal after an attempt', async () => {
    const ac = new AbortController();
    let added = 0;
    let removed = 0;
    const add = ac.signal.addEventListener.bind(ac.signal);
    const remove = ac.signal.removeEventListener.bind(ac.signal);
    ac.signal.addEventListener = ((...args: Parameters<AbortSignal['addEventListener']>) => (added++, add(...args))) as AbortSignal['addEventListener'];
    ac.signal.removeEventListener = ((...args: Parameters<AbortSignal['removeEventListener']>) => (removed++, remove(...args))) as AbortSignal['removeEventListener'];
    const p = participant(fakeFetch().fetch);
    for (let i = 0; i < 5; i++) await p.invoke(req({ signal: ac.signal }));
    await txcRejection(participant(fakeFetch(() => reply(500)).fetch).invoke(req({ signal: ac.signal })), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(added).toBe(6);
    expect(removed).toBe(6);
  });

  it('close aborts requests in flight and refuses new ones', async () => {
    const p = participant(hangingFetch);
    const pending = p.invoke(req());
    await new Promise((r) => setTimeout(r, 5));
    await p.close();
    const err = await txcRejection(pending, 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('closed');
    await txcRejection(p.invoke(req()), 'TXC_PARTICIPANT_UNAVAILABLE');
  });

  it('turns credentials in the base URL into a Basic header and keeps them out of URLs', async () => {
    const { fetch, calls } = fakeFetch(() => reply(404, 'nope'));
    const p = participant(fetch, { baseUrl: 'https://svc%40user:p%3Ass@svc.test/api' });
    const err = await txcRejection(p.invoke(req()), 'TXC_STEP_MISCONFIGURED');
    expect(calls[0]?.url).toBe('https://svc.test/api/charge');
    expect(calls[0]?.init.headers['authorization']).toBe(`Basic ${Buffer.from('svc@user:p:ss').toString('base64')}`);
    expect(err.message).not.toContain('p%3Ass');
    expect(err.message).toContain('https://svc.test/api/charge');
  });

  it('logs each call at debug with status and ms, never header values or the query string', async () => {
    const { lines, logger } = capturingLogger();
    const p = participant(fakeFetch((url) => reply(url.includes('fail') ? 503 : 200, '{}')).fetch, { headers: { Authorization: TOKEN } }, logger);
    await p.invoke(req({ path: '/charge?api_key=QUERYSECRET' }));
    await txcRejection(p.invoke(req({ path: '/fail' })), 'TXC_PARTICIPANT_UNAVAILABLE');
    const hang = participant(hangingFetch, { headers: { Authorization: TOKEN } }, logger);
    await txcRejection(hang.invoke(req({ timeoutMs: 5 })), 'TXC_PARTICIPANT_UNAVAILABLE');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({ level: 20, participant: 'billing', path: '/charge', status: 200 });
    expect(typeof parsed[0]?.['ms']).toBe('number');
    expect(parsed[1]).toMatchObject({ status: 503, path: '/fail' });
    expect(parsed[2]).toMatchObject({ timeoutMs: 5 });
    const all = lines.join('\n');
    expect(all).not.toContain('s3cr3t');
    expect(all).not.toContain('QUERYSECRET');
    expect(all).not.toContain('saga-1:charge:action');
  });
});

/** A real server: `/status/<n>` answers n, `/echo` answers what it received, `/hang` never answers, `/reset` drops the socket. */
describe('HttpParticipant against a real node:http server', () => {
  let server: Server;
  let base: string;
  const sockets = new Set<Socket>();
  const seen: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((rq, rs) => {
      const chunks: Buffer[] = [];
      rq.on('data', (c: Buffer) => chunks.push(c));
      rq.on('end', () => {
        const path = rq.url ?? '/';
        const body = Buffer.concat(chunks).toString('utf8');
        seen.push({ path, headers: rq.headers, body });
        const status = /^\/status\/(\d+)$/.exec(path);
        if (status) {
          const n = Number(status[1]);
          rs.writeHead(n, n >= 300 && n < 400 ? { location: '/echo' } : { 'content-type': 'application/json' });
          rs.end(n === 204 || (n >= 300 && n < 400) ? undefined : JSON.stringify({ status: n, error: 'as asked' }));
        } else if (path === '/echo') {
          rs.writeHead(200, { 'content-type': 'application/json' });
          rs.end(JSON.stringify({ method: rq.method, body: JSON.parse(body) as unknown }));
        } else if (path === '/text') {
          rs.writeHead(200, { 'content-type': 'text/plain' });
          rs.end('plain words');
        } else if (path === '/reset') {
          rq.socket.destroy();
        } else if (path === '/hang') {
          // never answers
        } else {
          rs.writeHead(404).end();
        }
      });
    });
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  afterEach(() => {
    seen.length = 0;
  });

  const real = (over: Partial<HttpParticipantConfig> = {}): Participant =>
    createHttpParticipant('inventory', { driver: 'http', baseUrl: base, ...over }, { logger: silent });

  it('sends the key, merged headers and the JSON body; parses the answer', async () => {
    const p = real({ headers: { Authorization: TOKEN, 'X-Tenant': 't1' } });
    const out = await p.invoke!({ path: '/echo', body: { sku: 'A', qty: 2 }, idempotencyKey: 'g1:reserve:action' });
    expect(out).toEqual({ status: 200, body: { method: 'POST', body: { sku: 'A', qty: 2 } } });
    const h = seen[0]?.headers ?? {};
    expect(h['idempotency-key']).toBe('g1:reserve:action');
    expect(h['authorization']).toBe(TOKEN);
    expect(h['x-tenant']).toBe('t1');
    expect(h['content-type']).toBe('application/json');
    expect(h['accept']).toBe('application/json');
    expect((await p.invoke!({ path: '/text', body: {}, idempotencyKey: 'k' })).body).toBe('plain words');
    expect(await p.invoke!({ path: '/status/204', idempotencyKey: 'k' })).toEqual({ status: 204, body: null });
    await p.close();
  });

  it('classifies real answers, and does not follow redirects', async () => {
    const p = real();
    const expectations: [number, TxcErrorCode, boolean][] = [
      [409, 'TXC_STEP_REJECTED', false],
      [422, 'TXC_STEP_REJECTED', false],
      [400, 'TXC_STEP_MISCONFIGURED', false],
      [404, 'TXC_STEP_MISCONFIGURED', false],
      [302, 'TXC_STEP_MISCONFIGURED', false],
      [307, 'TXC_STEP_MISCONFIGURED', false],
      [429, 'TXC_PARTICIPANT_UNAVAILABLE', true],
      [500, 'TXC_PARTICIPANT_UNAVAILABLE', true],
      [503, 'TXC_PARTICIPANT_UNAVAILABLE', true],
    ];
    for (const [status, code, retryable] of expectations) {
      const err = await txcRejection(p.invoke!({ path: `/status/${status}`, body: {}, idempotencyKey: 'k' }), code);
      expect(err.retryable).toBe(retryable);
    }
    expect(seen.some((s) => s.path === '/echo')).toBe(false);
    await p.close();
  });

  it('a service that does not answer in time is retryable UNAVAILABLE', async () => {
    const p = real({ timeoutMs: 100 });
    const started = Date.now();
    const err = await txcRejection(p.invoke!({ path: '/hang', body: {}, idempotencyKey: 'k' }), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(err.retryable).toBe(true);
    await p.close();
  });

  it('a refused connection and a dropped one are retryable UNAVAILABLE', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = createHttpParticipant('down', { driver: 'http', baseUrl: `http://127.0.0.1:${port}` }, { logger: silent });
    const e1 = await txcRejection(refused.invoke!({ path: '/x', body: {}, idempotencyKey: 'k' }), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(e1.retryable).toBe(true);
    expect(e1.details['code']).toBe('ECONNREFUSED');

    const e2 = await txcRejection(real().invoke!({ path: '/reset', body: {}, idempotencyKey: 'k' }), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect(e2.retryable).toBe(true);
    expect(String(e2.details['code'])).toMatch(/^(ECONNRESET|UND_ERR_SOCKET)$/);
  });

  it("the caller's abort and close() both end a real request", async () => {
    const p = real();
    const ac = new AbortController();
    const reason = new Error('coordinator closing');
    const pending = p.invoke!({ path: '/hang', body: {}, idempotencyKey: 'k', signal: ac.signal });
    setTimeout(() => ac.abort(reason), 20);
    expect(await rejection(pending)).toBe(reason);

    const inFlight = p.invoke!({ path: '/hang', body: {}, idempotencyKey: 'k2' });
    await new Promise((r) => setTimeout(r, 20));
    await p.close();
    expect((await txcRejection(inFlight, 'TXC_PARTICIPANT_UNAVAILABLE')).retryable).toBe(false);
  });
});

describe('HttpParticipant with the ledger service', () => {
  let ledger: LedgerService;
  beforeAll(async () => {
    ledger = await startLedgerService();
  });
  afterAll(() => ledger.close());

  it('a "possibly completed" step retried with the same key takes effect once', async () => {
    const p = createHttpParticipant('billing', { driver: 'http', baseUrl: ledger.url }, { logger: silent });
    ledger.faults({ applyThenFail: 1 });
    const step = { path: '/charge', body: { cents: 250 }, idempotencyKey: 'g9:charge:action' };
    await txcRejection(p.invoke!(step), 'TXC_PARTICIPANT_UNAVAILABLE');
    const out = await p.invoke!(step);
    expect(out.status).toBe(200);
    expect(ledger.state().chargedCents).toBe(250);
    expect(ledger.ledger()).toHaveLength(1);

    ledger.faults({ rejectWhen: { op: 'charge', field: 'cents', equals: 666 } });
    const err = await txcRejection(p.invoke!({ path: '/charge', body: { cents: 666 }, idempotencyKey: 'g10:charge:action' }), 'TXC_STEP_REJECTED');
    expect(err.message).toContain('insufficient funds');
    await p.close();
  });
});
