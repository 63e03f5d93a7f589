/**
 * Several coordinator processes on one shared log: three `txcoord serve` processes share a
 * PostgreSQL decision log; load (client-driven-free server-executed transactions and sagas) goes
 * through all of them; one is SIGKILLed mid-load. The survivors take over its leases, finish its
 * phase two and its sagas, and roll back what it had not decided. Afterwards every transaction is
 * on both databases or neither, none twice, and every saga ended committed or compensated with
 * each service effect applied at most once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLedgerService, type LedgerService } from '../fixtures/ledger-service.js';
import { mysqlUrl, pgUrl, requireDbOrSkip } from './db-env.js';
import { CLI } from './run-node.js';

const ready = (await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql'));
const TOKEN = `client-${randomBytes(12).toString('hex')}`;
const SCHEMA = `txc_fo_${randomBytes(4).toString('hex')}`;
const T = 'txc_failover';
const work = mkdtempSync(join(tmpdir(), 'txc-failover-'));

interface Instance {
  readonly id: string;
  readonly proc: ChildProcess;
  url: string;
  stderr: string;
}

async function startInstance(id: string, ledgerUrl: string): Promise<Instance> {
  const config = join(work, `${id}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      id,
      log: { type: 'postgres', connectionString: pgUrl, schema: SCHEMA, leaseMs: 1500 },
      api: { host: '127.0.0.1', port: 0, tokens: { [TOKEN]: 'client' } },
      recovery: { onStart: true, intervalMs: 500 },
      backoff: { initialMs: 20, maxMs: 300 },
      participants: {
        erp: { driver: 'postgres', connectionString: pgUrl, pool: { max: 6 }, statements: { debit: `insert into ${T} (id, amount) values (:id, :amount)` } },
        crm: { driver: 'mysql', uri: mysqlUrl, pool: { max: 6 }, statements: { credit: `insert into ${T} (id, amount) values (:id, :amount)` } },
        billing: { driver: 'http', baseUrl: ledgerUrl, timeoutMs: 3000 },
      },
    }),
  );
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', config], { env: { ...process.env, TXCOORD_LOG_LEVEL: 'error' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const inst: Instance = { id, proc, url: '', stderr: '' };
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (inst.stderr += c));
  const deadline = Date.now() + 30_000;
  while (!inst.url) {
    const m = /serving on (http:\/\/[0-9.:]+)/.exec(inst.stderr);
    if (m?.[1]) inst.url = m[1];
    else if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`instance ${id} did not start: ${inst.stderr}`);
    else await new Promise((r) => setTimeout(r, 50));
  }
  return inst;
}

async function call(inst: Instance, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${inst.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: r.status, body: (await r.json().catch(() => ({}))) as Record<string, unknown> };
}

describe.skipIf(!ready)('three coordinator services on one shared PostgreSQL log, one SIGKILLed under load', () => {
  let pgc: pg.Client;
  let my: mysql.Connection;
  let ledger: LedgerService;
  const instances: Instance[] = [];

  beforeAll(async () => {
    pgc = new pg.Client({ connectionString: pgUrl });
    await pgc.connect();
    my = await mysql.createConnection({ uri: mysqlUrl });
    await pgc.query(`drop table if exists ${T}`);
    await pgc.query(`create table ${T} (id text primary key, amount int not null)`);
    await my.query(`drop table if exists ${T}`);
    await my.query(`create table ${T} (id varchar(64) primary key, amount int not null) engine=InnoDB`);
    ledger = await startLedgerService();
    for (const id of ['fo1', 'fo2', 'fo3']) instances.push(await startInstance(id, ledger.url));
  }, 90_000);

  afterAll(async () => {
    for (const i of instances) if (i.proc.exitCode === null) i.proc.kill('SIGKILL');
    await ledger?.close();
    await pgc?.query(`drop table if exists ${T}`);
    await pgc?.query(`drop schema if exists ${SCHEMA} cascade`);
    await my?.query(`drop table if exists ${T}`);
    await pgc?.end();
    await my?.end();
    await rm(work, { recursive: true, force: true });
  });

  it('every transaction ends on both databases or neither, none twice; every saga ends committed or compensated', async () => {
    const acknowledged = new Set<string>();
    const attempted = new Set<string>();
    const sagas = new Map<string, string>(); // saga id -> instance that accepted it
    let seq = 0;
    let stop = false;
    const worker = async (w: number) => {
      while (!stop) {
        const inst = instances[(w + seq) % instances.length] as Instance;
        const n = ++seq;
        if (n % 4 === 0) {
          const r = await call(inst, '/v1/sagas', {
            steps: [
              { name: 'reserve', participant: 'billing', action: { path: '/reserve', body: { sku: `S${n}`, qty: 1 } }, compensate: { path: '/release', body: { sku: `S${n}`, qty: 1 } } },
              { name: 'charge', participant: 'billing', action: { path: '/charge', body: { cents: n } }, compensate: { path: '/refund', body: { cents: n } } },
            ],
          }).catch(() => undefined);
          if (r?.status === 202) sagas.set(String(r.body['id']), inst.id);
          continue;
        }
        const id = `t${n}-${w}`;
        attempted.add(id);
        const r = await call(inst, '/v1/transactions/execute', {
          steps: [
            { participant: 'erp', statement: 'debit', params: { id, amount: -n } },
            { participant: 'crm', statement: 'credit', params: { id, amount: n } },
          ],
        }).catch(() => undefined);
        if (r?.status === 200) acknowledged.add(id);
      }
    };
    const load = Promise.all(Array.from({ length: 12 }, (_, w) => worker(w)));
    await new Promise((r) => setTimeout(r, 2_000));
    // Slow the service down around the kill, so the victim surely dies with sagas in flight
    // (otherwise the kill may land between two of its requests and nothing is taken over).
    ledger.faults({ delayMs: 300 });
    await new Promise((r) => setTimeout(r, 500));
    const victim = instances[1] as Instance;
    victim.proc.kill('SIGKILL');
    ledger.faults({ delayMs: 0 });
    await new Promise((r) => setTimeout(r, 2_500));
    stop = true;
    await load;
    expect(acknowledged.size, 'no transaction went through').toBeGreaterThan(20);

    // The survivors' recovery (every 500 ms) takes over the victim once its lease (1.5 s) expires.
    const survivor = instances[0] as Instance;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const prepPg = (await pgc.query(`select count(*)::int as n from pg_prepared_xacts where gid like 'txc1.fo%'`)).rows[0]?.n as number;
      const [xa] = await my.query('xa recover');
      const prepMy = (xa as { data: Buffer | string }[]).filter((x) => String(x.data).startsWith('txc1.fo')).length;
      const views = await Promise.all([...sagas.keys()].map(async (id) => (await call(survivor, `/v1/sagas/${id}`, undefined)).body['status']));
      const running = views.filter((s) => s === 'running' || s === undefined).length;
      if (prepPg === 0 && prepMy === 0 && running === 0) break;
      if (Date.now() > deadline) throw new Error(`still in doubt after 60 s: ${prepPg} pg, ${prepMy} mysql prepared, ${running} sagas running\n${survivor.stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }

    const erp = new Map((await pgc.query<{ id: string; amount: number }>(`select id, amount from ${T}`)).rows.map((r) => [r.id, r.amount]));
    const [crmRows] = await my.query(`select id, amount from ${T}`);
    const crm = new Map((crmRows as { id: string; amount: number }[]).map((r) => [r.id, r.amount]));
    for (const id of attempted) expect(erp.has(id), `${id}: on one side only`).toBe(crm.has(id));
    for (const id of acknowledged) expect(erp.has(id), `${id} was acknowledged but is missing`).toBe(true);
    expect([...erp.keys()].every((id) => attempted.has(id))).toBe(true);

    // Sagas: each ended, each effect at most once per key, compensated ones fully undone.
    const byKey = new Map<string, number>();
    for (const e of ledger.ledger()) byKey.set(e.key, (byKey.get(e.key) ?? 0) + 1);
    expect([...byKey.values()].every((n) => n === 1)).toBe(true);
    for (const id of sagas.keys()) {
      const v = (await call(survivor, `/v1/sagas/${id}`, undefined)).body;
      expect(['committed', 'compensated'], `saga ${id}: ${JSON.stringify(v)}`).toContain(v['status']);
      const applied = (op: string) => ledger.ledger().filter((e) => e.key.startsWith(`${id}:`) && e.op === op).length;
      if (v['status'] === 'committed') expect([applied('reserve'), applied('charge'), applied('release'), applied('refund')]).toEqual([1, 1, 0, 0]);
      else {
        expect(applied('release')).toBeGreaterThanOrEqual(applied('reserve'));
        expect(applied('refund')).toBeGreaterThanOrEqual(applied('charge'));
      }
    }
    // The victim's work was taken over: nothing of fo2 is left live in the shared log.
    const live = await pgc.query(`select count(*)::int as n from ${SCHEMA}.txcoord_log_owners where not ended`);
    expect(live.rows[0]?.n).toBe(0);
    const takenOver = await pgc.query(`select count(*)::int as n from ${SCHEMA}.txcoord_log_owners where gtrid like 'txc1.fo2.%' and owner <> 'fo2'`);
    const victimSagas = [...sagas.values()].filter((i) => i === 'fo2').length;
    expect(takenOver.rows[0]?.n, 'the survivors took over none of the victim\'s work: the kill hit no transaction in flight').toBeGreaterThan(0);
    console.log(
      `failover: ${attempted.size} transactions (${acknowledged.size} acknowledged), ${sagas.size} sagas (${victimSagas} accepted by the victim); ` +
        `${takenOver.rows[0]?.n} of the victim's transactions/sagas finished by a survivor`,
    );
  }, 150_000);
});
