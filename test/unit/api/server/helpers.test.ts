import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkJsonDepth } from '../../../../api/server/check-json-depth.js';
import { InDoubtScanner } from '../../../../api/server/in-doubt-scanner.js';
import { createLogProbe } from '../../../../api/server/log-probe.js';
import { bearerToken, createTokenVerifier, tokenIdOf } from '../../../../api/server/token-verifier.js';
import { toWireJson } from '../../../../api/server/to-wire-json.js';
import { TxcError } from '../../../../coordinator/errors.js';
import { FakeCoordinator } from './harness.js';

describe('log probe', () => {
  it('file log: ok while the directory is writable, TXC_LOG_IO (no path) when it is not; answers cached', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'txc-probe-'));
    expect(await createLogProbe({ type: 'file', dir })()).toBe('ok');
    const missing = createLogProbe({ type: 'file', dir: join(dir, 'nope') });
    const answer = await missing();
    expect(answer).toMatch(/^TXC_LOG_IO/);
    expect(answer).not.toContain(dir);
    expect(await createLogProbe({ type: 'memory' })()).toBe('ok');
    // Cached: a directory removed right after a check is noticed once the cache expires.
    const gone = mkdtempSync(join(tmpdir(), 'txc-probe-'));
    let now = 0;
    const probe = createLogProbe({ type: 'file', dir: gone }, { cacheMs: 100, now: () => now });
    expect(await probe()).toBe('ok');
    rmSync(gone, { recursive: true });
    expect(await probe()).toBe('ok');
    now = 1_000;
    expect(await probe()).toMatch(/^TXC_LOG_IO/);
  });

  it('postgres log: an unreachable server is TXC_LOG_IO without its address', async () => {
    const answer = await createLogProbe({ type: 'postgres', connectionString: 'postgres://u:secret@127.0.0.1:1/x' }, { timeoutMs: 500 })();
    expect(answer).toBe('TXC_LOG_IO: log database unreachable');
  });
});

describe('in-doubt scanner', () => {
  it('shares a running scan, reuses a fresh one, and forgets it on invalidate', async () => {
    const coord = new FakeCoordinator();
    let now = 0;
    const scanner = new InDoubtScanner(coord, () => now);
    await Promise.all([scanner.scan(0), scanner.scan(0), scanner.scan(5_000)]);
    expect(coord.calls.filter((c) => c.method === 'recover')).toHaveLength(1);
    await scanner.scan(5_000);
    expect(coord.calls.filter((c) => c.method === 'recover')).toHaveLength(1);
    now = 6_000;
    await scanner.scan(5_000);
    expect(coord.calls.filter((c) => c.method === 'recover')).toHaveLength(2);
    scanner.invalidate();
    await scanner.scan(5_000);
    expect(coord.calls.filter((c) => c.method === 'recover')).toHaveLength(3);
    expect(coord.calls.at(-1)?.args[0]).toEqual({ dryRun: true });
  });
});

describe('tokens', () => {
  it('parses only `Bearer <token>` and maps tokens to roles', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer   abc ')).toBe('abc');
    for (const h of [undefined, '', 'Bearer', 'Bearer a b', 'Basic abc', 'Bearer \u00e9t\u00e9']) expect(bearerToken(h)).toBeUndefined();
    const v = createTokenVerifier({ 'client-token-0123456789': 'client', 'admin-token-0123456789a': 'admin' });
    expect(v.roleOf('client-token-0123456789')).toBe('client');
    expect(v.roleOf('admin-token-0123456789a')).toBe('admin');
    expect(v.roleOf('admin-token-0123456789')).toBeUndefined();
    expect(tokenIdOf('Bearer client-token-0123456789')).toMatch(/^[0-9a-f]{8}$/);
  });
});

describe('JSON helpers', () => {
  it('checkJsonDepth refuses deep nesting, naming the field', () => {
    checkJsonDepth({ a: [[[1]]] }, 5);
    const err = (() => {
      try {
        checkJsonDepth({ a: { b: [[{ c: 1 }]] } }, 3);
      } catch (e) {
        return e;
      }
    })();
    expect(TxcError.is(err, 'TXC_BAD_REQUEST')).toBe(true);
    expect((err as TxcError).details['field']).toBe('a.b[0]');
  });

  it('toWireJson keeps a __proto__ column as a plain key and converts driver values', () => {
    const row = JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>;
    const out = toWireJson({ ...row, n: 12n, d: new Date(Date.UTC(2024, 0, 2)), u: undefined, f: () => 1 }) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toContain('__proto__');
    expect(JSON.parse(JSON.stringify(out))).toEqual(JSON.parse('{"__proto__": {"x": 1}, "n": "12", "d": "2024-01-02T00:00:00.000Z", "u": null, "f": "() => 1"}'));
  });
});
