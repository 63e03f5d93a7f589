import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { serve, type RunningServer } from '../api/server/serve.js';
import { startLedgerService, type LedgerService } from '../test/fixtures/ledger-service.js';

/**
 * `npm run bench:http`: load on the HTTP coordinator service with autocannon. Sagas (two steps on
 * an HTTP service, each with its compensation) submitted through POST /v1/sagas, and
 * server-executed transactions (a PostgreSQL debit and a MariaDB credit, 2PC) through POST
 * /v1/transactions/execute, at 16 and 64 connections, with the file decision log.
 * Environment: BENCH_SECONDS (default 10), TXCOORD_PG_URL, TXCOORD_MYSQL_URL.
 */
const TOKEN = 'bench-token-0123456789abcdef';

interface Row {
  readonly scenario: string;
  readonly connections: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
  readonly completed?: number;
}

async function run(url: string, connections: number, seconds: number, path: string, body: (n: number) => unknown): Promise<Omit<Row, 'scenario' | 'connections'>> {
  let n = 0;
  const r = await autocannon({
    url: `${url}${path}`,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    // A fresh body per request, so every transaction and saga is a different one.
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify(body(++n)) }) }],
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx + r.errors };
}

async function main(): Promise<void> {
  const seconds = Number(process.env['BENCH_SECONDS'] ?? 10);
  const pgUrl = process.env['TXCOORD_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  const mysqlUrl = process.env['TXCOORD_MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test';
  const dir = await mkdtemp(join(tmpdir(), 'txc-httpbench-'));
  const out = (s = '') => process.stdout.write(`${s}\n`);
  let ledger: LedgerService | undefined;
  let server: RunningServer | undefined;
  try {
    ledger = await startLedgerService();
    const config = join(dir, 'txcoord.json');
    await writeFile(
      config,
      JSON.stringify({
        id: 'httpbench',
        log: { type: 'file', dir: join(dir, 'txlog') },
        api: { host: '127.0.0.1', port: 0, tokens: { [TOKEN]: 'client' } },
        recovery: { intervalMs: 0 },
        participants: {
          billing: { driver: 'http', baseUrl: ledger.url },
          erp: { driver: 'postgres', connectionString: pgUrl, pool: { max: 32 }, statements: { debit: 'update txc_httpbench set balance = balance - :amount where id = :id' } },
          crm: { driver: 'mysql', uri: mysqlUrl, pool: { max: 32 }, statements: { credit: 'update txc_httpbench set balance = balance + :amount where id = :id' } },
        },
      }),
    );
    const pg = (await import('pg')).default;
    const mysql = (await import('mysql2/promise')).default;
    const pgc = new pg.Client({ connectionString: pgUrl });
    await pgc.connect();
    await pgc.query('drop table if exists txc_httpbench');
    await pgc.query('create table txc_httpbench (id int primary key, balance bigint not null)');
    await pgc.query('insert into txc_httpbench select g, 1000000 from generate_series(1, 10000) g');
    await pgc.end();
    const my = await mysql.createConnection({ uri: mysqlUrl });
    await my.query('drop table if exists txc_httpbench');
    await my.query('create table txc_httpbench (id int primary key, balance bigint not null) engine=InnoDB');
    await my.query('insert into txc_httpbench select seq, 1000000 from seq_1_to_10000');
    await my.end();

    server = await serve(config, { env: { ...process.env, TXCOORD_LOG_LEVEL: 'error' } });
    const url = server.url;
    out(`# txcoord HTTP service benchmark — ${new Date().toISOString()}`);
    out(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${seconds} s per row; service, databases, HTTP test service and autocannon on the same machine`);
    out();
    out('| scenario | connections | requests/s | p50 ms | p99 ms | non-2xx | completed/s |');
    out('|---|---:|---:|---:|---:|---:|---:|');
    for (const connections of [16, 64]) {
      const before = server.coord.stats().sagas.committed;
      const s = await run(url, connections, seconds, '/v1/sagas', (n) => ({
        steps: [
          { name: 'reserve', participant: 'billing', action: { path: '/reserve', body: { sku: `B${n % 100}`, qty: 1 } }, compensate: { path: '/release', body: { sku: `B${n % 100}`, qty: 1 } } },
          { name: 'charge', participant: 'billing', action: { path: '/charge', body: { cents: 1 + (n % 500) } }, compensate: { path: '/refund', body: { cents: 1 + (n % 500) } } },
        ],
      }));
      // POST /v1/sagas answers 202 once the saga is durable; let the accepted ones finish, then count.
      await new Promise((r) => setTimeout(r, 2_000));
      const completed = (server.coord.stats().sagas.committed - before) / seconds;
      out(`| saga (2 HTTP steps) | ${connections} | ${s.rps.toFixed(0)} | ${s.p50} | ${s.p99} | ${s.non2xx} | ${completed.toFixed(0)} |`);
      const t = await run(url, connections, seconds, '/v1/transactions/execute', (n) => ({
        steps: [
          { participant: 'erp', statement: 'debit', params: { id: 1 + (n % 10000), amount: 1 } },
          { participant: 'crm', statement: 'credit', params: { id: 1 + ((n * 7) % 10000), amount: 1 } },
        ],
      }));
      out(`| execute (2PC PostgreSQL + MariaDB) | ${connections} | ${t.rps.toFixed(0)} | ${t.p50} | ${t.p99} | ${t.non2xx} | ${t.rps.toFixed(0)} |`);
    }
  } finally {
    await server?.close({ timeoutMs: 10_000 });
    await ledger?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:http failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
