import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, CLIENT_TOKEN, gtrid, testServer, type TestServer } from './harness.js';

/**
 * Throws malformed input at every route: random JSON, valid bodies with one field replaced by
 * anything, prototype-pollution keys, huge strings, invalid UTF-8, odd content types, random
 * headers and random paths. The server must answer every one without a 5xx, in the error
 * shape, without a stack trace, and keep answering /healthz.
 */

const RUNS_PER_PROPERTY = 2_600;
const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', ''];
const AUTH = [`Bearer ${CLIENT_TOKEN}`, `Bearer ${ADMIN_TOKEN}`];

interface Target {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  /** A body the route accepts. */
  readonly valid?: object;
}

const TARGETS: readonly Target[] = [
  {
    method: 'POST',
    url: '/v1/sagas',
    valid: {
      steps: [
        { name: 'a', participant: 'billing', action: { path: '/x', body: { n: 1 } }, compensate: { path: '/y' }, after: [], timeoutMs: 10 },
        { name: 'b', participant: 'ledger', action: { statement: 'debit', params: { amount: 1, id: 'x' } } },
      ],
      timeoutMs: 1000,
      meta: { k: 'v' },
    },
  },
  { method: 'POST', url: '/v1/transactions', valid: { participants: ['ledger'], timeoutMs: 1000, meta: { a: 1 } } },
  { method: 'POST', url: `/v1/transactions/${gtrid(1)}/branches`, valid: { participant: 'ledger' } },
  { method: 'POST', url: `/v1/transactions/${gtrid(1)}/commit`, valid: {} },
  { method: 'POST', url: `/v1/transactions/${gtrid(1)}/abort`, valid: { reason: 'r' } },
  { method: 'POST', url: '/v1/transactions/execute', valid: { steps: [{ participant: 'ledger', statement: 'debit', params: { amount: 1, id: 2 } }], mode: 'auto', meta: { m: true } } },
  { method: 'POST', url: `/v1/in-doubt/${gtrid(1)}.b0/resolve`, valid: { outcome: 'commit', force: false } },
  { method: 'GET', url: `/v1/sagas/${gtrid(1)}` },
  { method: 'GET', url: `/v1/transactions/${gtrid(1)}` },
  { method: 'GET', url: '/v1/in-doubt' },
  { method: 'GET', url: '/metrics' },
  { method: 'GET', url: '/readyz' },
  { method: 'GET', url: '/healthz' },
];

/** Every path (as keys) inside a JSON value. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((v: unknown, i) => out.push(...paths(v, [...prefix, i])));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

/** A deep copy with the value at `path` replaced (or with `extraKey` added next to it). */
function mutate(value: unknown, path: readonly (string | number)[], replacement: unknown, extraKey?: string): unknown {
  const copy: unknown = JSON.parse(JSON.stringify(value));
  if (path.length === 0) return replacement;
  let parent = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (extraKey !== undefined && parent && typeof parent === 'object' && !Array.isArray(parent)) {
    // defineProperty: `__proto__` must become an own key that JSON.stringify writes out.
    Object.defineProperty(parent, extraKey, { value: replacement, enumerable: true, configurable: true, writable: true });
  } else parent[last] = replacement;
  return copy;
}

const headerValue = fc.string({ unit: fc.constantFrom(...'\t abcXYZ019 !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~\u00e9\u00ff'.split('')), maxLength: 300 });
const headerName = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,40}$/).filter((n) => !['content-length', 'transfer-encoding', 'host', 'connection', 'expect'].includes(n.toLowerCase()));
const contentType = fc.oneof(
  fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=latin1', 'text/plain', 'application/xml', 'multipart/form-data', 'application/x-www-form-urlencoded', '*/*', ';;;', 'application/json;;', ''),
  headerValue,
);
const hugeString = fc.tuple(fc.string({ maxLength: 8 }), fc.integer({ min: 1_000, max: 400_000 })).map(([s, n]) => (s || 'x').repeat(Math.ceil(n / Math.max(1, s.length))));
const anyJson = fc.oneof({ weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }) }, { weight: 1, arbitrary: hugeString }, { weight: 1, arbitrary: fc.constantFrom(1e308, -0, 2 ** 53 + 1, '', '\u0000', '\ud800', 'a'.repeat(70)) });

/** A body: mutated valid body, random JSON, raw bytes, or a deeply nested array. */
const body = (target: Target) =>
  fc.oneof(
    { weight: 5, arbitrary: fc.tuple(fc.nat(), anyJson, fc.option(fc.oneof(fc.constantFrom(...POLLUTION_KEYS), fc.string({ maxLength: 20 })))).map(([i, replacement, key]) => {
      const valid = target.valid ?? {};
      const all = paths(valid);
      return JSON.stringify(mutate(valid, all[i % all.length] ?? [], replacement, key ?? undefined)) ?? 'null';
    }) },
    { weight: 2, arbitrary: fc.json({ maxDepth: 5 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2_000 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.integer({ min: 30, max: 50_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`) },
    { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}', '{"steps":[{"__proto__":1}]}', '{"a":1,"a":2}', '{', 'nul', '\ufeff{}', '{}garbage') },
  );

describe('fuzzing the HTTP API', () => {
  let s: TestServer;
  let sent = 0;
  const seen = new Map<number, number>();

  beforeAll(async () => {
    s = await testServer({ logger: pino({ level: 'silent' }) });
  });

  afterAll(async () => {
    await s.app.close();
  });

  const send = async (options: InjectOptions): Promise<LightMyRequestResponse> => {
    const res = await s.request(options);
    sent++;
    seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
    const where = `${options.method} ${String(options.url)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
    expect(res.statusCode, where).toBeLessThan(500);
    expect(res.body, where).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
    if (res.statusCode >= 400 && options.method !== 'HEAD') {
      const parsed = JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown } };
      expect(typeof parsed.error?.code, where).toBe('string');
      expect(parsed.error?.code as string, where).toMatch(/^TXC_/);
      expect(typeof parsed.error?.message, where).toBe('string');
    }
    return res;
  };

  it('malformed bodies and content types never give a 5xx', { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...TARGETS.filter((t) => t.method === 'POST')).chain((t) => fc.tuple(fc.constant(t), body(t), fc.oneof({ weight: 6, arbitrary: fc.constant('application/json') }, { weight: 2, arbitrary: contentType }), fc.constantFrom(...AUTH))),
        async ([target, payload, type, auth]) => {
          const headers: Record<string, string> = { authorization: auth, 'content-type': type };
          await send({ method: target.method, url: target.url, headers, payload });
        },
      ),
      { numRuns: RUNS_PER_PROPERTY },
    );
  });

  it('random headers never give a 5xx', { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...TARGETS),
        fc.dictionary(headerName, headerValue, { maxKeys: 8 }),
        fc.oneof(fc.constantFrom(...AUTH), fc.constant(undefined), headerValue, headerValue.map((v) => `Bearer ${v}`)),
        fc.option(fc.oneof(headerValue, fc.constantFrom('', ' ', 'x'.repeat(256), '\u00e9'))),
        async (target, extra, auth, key) => {
          const headers: Record<string, string> = { ...extra, ...(auth !== undefined ? { authorization: auth } : {}), ...(key !== null ? { 'idempotency-key': key } : {}) };
          await send({ method: target.method, url: target.url, headers, ...(target.valid ? { payload: target.valid } : {}) });
        },
      ),
      { numRuns: RUNS_PER_PROPERTY },
    );
  });

  it('random paths, query strings and methods never give a 5xx', { timeout: 240_000 }, async () => {
    const segment = fc.oneof(
      fc.constantFrom('v1', 'sagas', 'transactions', 'in-doubt', 'execute', 'commit', 'abort', 'branches', 'resolve', '..', '.', '', '%2e%2e', '%00', '%', '%zz', '%E0%A4%A', gtrid(1), `${gtrid(1)}.b0`, 'docs', 'json', 'metrics'),
      fc.string({ maxLength: 30 }).map(encodeURIComponent),
      fc.string({ unit: 'binary', maxLength: 10 }).map((s) => encodeURIComponent(s)),
      fc.integer({ min: 90, max: 2_000 }).map((n) => 'a'.repeat(n)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(segment, { minLength: 0, maxLength: 6 }),
        fc.option(fc.string({ maxLength: 60 })),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
        fc.option(fc.constantFrom(...AUTH)),
        async (segments, query, method, auth) => {
          const url = `/${segments.join('/')}${query !== null ? `?${query.replace(/[#\s]/g, '')}` : ''}`;
          await send({ method, url, headers: auth !== null ? { authorization: auth } : {}, ...(method === 'POST' || method === 'PUT' ? { payload: {} } : {}) });
        },
      ),
      { numRuns: RUNS_PER_PROPERTY },
    );
  });

  it('valid bodies with one wrong field name the field', { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...TARGETS.filter((t) => t.valid && Object.keys(t.valid).length > 0)), fc.nat(), fc.jsonValue({ maxDepth: 2 }), async (target, i, replacement) => {
        const all = paths(target.valid).filter((p) => p.length > 0);
        const path = all[i % all.length] ?? [];
        const res = await send({ method: target.method, url: target.url, headers: { authorization: AUTH[1] as string, 'content-type': 'application/json' }, payload: JSON.stringify(mutate(target.valid, path, replacement)) ?? 'null' });
        if (res.statusCode === 400) {
          const e = res.json<{ error: { message: string; details?: { field?: string } } }>().error;
          // Shape errors always name a field; a refusal for another reason (unknown statement...) names one too.
          if (e.details?.field !== undefined) expect(e.message).toContain(`\`${e.details.field}\``);
        }
      }),
      { numRuns: RUNS_PER_PROPERTY },
    );
  });

  it('sent at least 10 000 requests, nothing polluted, and the server still answers', async () => {
    expect(sent).toBeGreaterThanOrEqual(10_000);
    expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('admin');
    expect((await s.request({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await s.request({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    // The mix really exercised the error paths, not only the happy ones.
    for (const status of [400, 401, 404, 415]) expect(seen.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);
  });
});
