import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runServe } from '../../../../api/server/serve-command.js';
import { serve, type RunningServer } from '../../../../api/server/serve.js';
import { EXIT } from '../../../../api/exit-codes.js';
import { TxcError } from '../../../../coordinator/errors.js';
import { captureIO } from '../capture-io.js';
import { LogCapture } from './harness.js';

const TOKEN = 'serve-test-token-0123456789';
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A stand-in for a billing service: answers every POST with 200 and records the paths. */
async function billing(): Promise<{ url: string; paths: string[] }> {
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    paths.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
}

function configFile(config: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'txc-serve-'));
  const file = join(dir, 'txcoord.json');
  writeFileSync(file, JSON.stringify({ id: 'srv', log: { type: 'file', dir: join(dir, 'log') }, ...config }));
  return file;
}

describe('serve', () => {
  it('listens, serves a saga end to end over real HTTP, reports ready, and stops cleanly', async () => {
    const svc = await billing();
    const file = configFile({ participants: { billing: { driver: 'http', baseUrl: svc.url } }, api: { tokens: { '${SERVE_TEST_TOKEN}': 'admin' } } });
    const logs = new LogCapture();
    const running: RunningServer = await serve(file, { env: { SERVE_TEST_TOKEN: TOKEN }, port: 0, logDestination: logs });
    let closed = false;
    cleanups.push(() => (closed ? Promise.resolve() : running.close()));
    expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${running.url}/readyz`);
    expect(await ready.json()).toEqual({ ok: true, checks: { coordinator: 'ok', 'participant:billing': 'ok', log: 'ok' } });
    expect((await fetch(`${running.url}/v1/in-doubt`)).status).toBe(401);

    const submitted = await fetch(`${running.url}/v1/sagas`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ steps: [{ name: 'charge', participant: 'billing', action: { path: '/charge', body: { cents: 1 } } }] }),
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    let status = 'running';
    for (let i = 0; i < 1000 && status === 'running'; i++) {
      status = ((await (await fetch(`${running.url}/v1/sagas/${id}`, { headers: auth })).json()) as { status: string }).status;
      if (status === 'running') await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toBe('committed');
    expect(svc.paths).toEqual(['/charge']);

    const metrics = await fetch(`${running.url}/metrics`, { headers: auth });
    expect(await metrics.text()).toContain('process_cpu_seconds_total');

    await running.close();
    closed = true;
    expect(logs.text).toContain('txcoord serve listening');
    expect(logs.text).not.toContain(TOKEN);
  });

  it('refuses a config without api, and a statement the driver cannot take before starting anything', async () => {
    const noApi = configFile({ participants: { billing: { driver: 'http', baseUrl: 'http://127.0.0.1:1' } } });
    await expect(serve(noApi, { env: {} })).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_CONFIG_INVALID') && e.details['field'] === 'api');
    const unsetToken = configFile({ participants: { billing: { driver: 'http', baseUrl: 'http://127.0.0.1:1' } }, api: { tokens: { '${TXC_UNSET_TOKEN_VAR}': 'client' } } });
    await expect(serve(unsetToken, { env: {} })).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_CONFIG_INVALID') && /TXC_UNSET_TOKEN_VAR/.test(e.message));
    const badStatement = configFile({
      participants: { pg: { driver: 'postgres', connectionString: 'postgres://u:p@127.0.0.1:1/db', statements: { s: 'select $1' } } },
      api: { tokens: { [TOKEN]: 'client' } },
    });
    await expect(serve(badStatement, { env: {} })).rejects.toSatisfy(
      (e: unknown) => TxcError.is(e, 'TXC_CONFIG_INVALID') && e.details['field'] === 'participants.pg.statements.s',
    );
  });
});

describe('txcoord serve (command)', () => {
  it('serves until told to stop, then exits 0', async () => {
    const file = configFile({ participants: { billing: { driver: 'http', baseUrl: 'http://127.0.0.1:1' } }, api: { tokens: { [TOKEN]: 'client' }, port: 0 } });
    const io = captureIO({ env: { TXCOORD_LOG_LEVEL: 'silent' } });
    let stop = () => undefined as void;
    const stopped = new Promise<void>((r) => (stop = r));
    const exit = runServe({ config: file }, io, stopped);
    for (let i = 0; i < 1000 && !io.stderr.join('').includes('serving on'); i++) await new Promise((r) => setTimeout(r, 10));
    const url = /serving on (http:\/\/\S+)/.exec(io.stderr.join(''))?.[1];
    expect(url).toBeDefined();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    stop();
    expect(await exit).toBe(EXIT.OK);
    expect(io.stderr.join('')).toContain('stopping');
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('a bad --port is a usage error; a port in use is a config error naming api.port', async () => {
    const io = captureIO({ env: { TXCOORD_LOG_LEVEL: 'silent' } });
    await expect(runServe({ config: 'x.json', port: 'http' }, io)).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_USAGE'));
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => taken.close(r)));
    const port = (taken.address() as AddressInfo).port;
    const file = configFile({ participants: { billing: { driver: 'http', baseUrl: 'http://127.0.0.1:1' } }, api: { tokens: { [TOKEN]: 'client' } } });
    await expect(runServe({ config: file, port: String(port) }, io)).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_CONFIG_INVALID') && e.details['field'] === 'api.port');
  });
});
