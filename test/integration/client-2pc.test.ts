/**
 * Client-driven two-phase commit end to end: an application holding its own `pg` client and
 * `mysql2` connection runs a transaction's branches on them through TxcoordClient, against a
 * real `txcoord serve` (in-process) and the real PostgreSQL and MariaDB.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type RunningServer } from '../../api/server/serve.js';
import { TxcoordClient } from '../../client/index.js';
import { TxcError } from '../../coordinator/errors.js';
import { mysqlUrl, pgUrl, requireDbOrSkip, rollbackLeftovers } from './db-env.js';

const ready = (await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql'));
const TOKEN = `client-${randomBytes(12).toString('hex')}`;
const ADMIN = `admin-${randomBytes(12).toString('hex')}`;
const T = 'txc_client_2pc';
const work = mkdtempSync(join(tmpdir(), 'txc-client2pc-'));

describe.skipIf(!ready)('client-driven 2PC through TxcoordClient, on the application\'s own connections', () => {
  let server: RunningServer;
  let client: TxcoordClient;
  let admin: TxcoordClient;
  let pgc: pg.Client;
  let myPool: mysql.Pool;

  const rows = async () => {
    const a = (await pgc.query<{ id: string }>(`select id from ${T} order by id`)).rows.map((r) => r.id);
    const [b] = await myPool.query(`select id from ${T} order by id`);
    return { pg: a, maria: (b as { id: string }[]).map((r) => r.id) };
  };

  beforeAll(async () => {
    await rollbackLeftovers('client2pc');
    pgc = new pg.Client({ connectionString: pgUrl });
    await pgc.connect();
    myPool = mysql.createPool({ uri: mysqlUrl, connectionLimit: 4 });
    await pgc.query(`drop table if exists ${T}`);
    await pgc.query(`create table ${T} (id text primary key)`);
    await myPool.query(`drop table if exists ${T}`);
    await myPool.query(`create table ${T} (id varchar(64) primary key) engine=InnoDB`);
    const config = join(work, 'txcoord.json');
    writeFileSync(
      config,
      JSON.stringify({
        id: 'client2pc',
        log: { type: 'file', dir: join(work, 'txlog') },
        api: { host: '127.0.0.1', port: 0, tokens: { [TOKEN]: 'client', [ADMIN]: 'admin' } },
        recovery: { intervalMs: 0 },
        participants: { erp: { driver: 'postgres', connectionString: pgUrl }, crm: { driver: 'mysql', uri: mysqlUrl } },
      }),
    );
    server = await serve(config, { env: { ...process.env, TXCOORD_LOG_LEVEL: 'silent' } });
    client = new TxcoordClient({ baseUrl: server.url, token: TOKEN });
    admin = new TxcoordClient({ baseUrl: server.url, token: ADMIN });
  });

  afterAll(async () => {
    await server?.close({ timeoutMs: 5_000 });
    await pgc?.query(`drop table if exists ${T}`);
    await myPool?.query(`drop table if exists ${T}`);
    await pgc?.end();
    await myPool?.end();
    await rm(work, { recursive: true, force: true });
  });

  it('commits on both databases; the MariaDB session is released so the service can commit it', async () => {
    const own = new pg.Client({ connectionString: pgUrl });
    await own.connect();
    try {
      const r = await client.runTransaction(['erp', 'crm'], async (tx) => {
        const erp = await tx.pg('erp', own);
        await erp.query(`insert into ${T} (id) values ($1)`, ['ok-1']);
        const crm = await tx.mysql('crm', await myPool.getConnection());
        await crm.query(`insert into ${T} (id) values (?)`, ['ok-1']);
        return 'done';
      });
      expect(r.value).toBe('done');
      expect(r.phaseTwoPending).toBe(false);
      expect(await rows()).toEqual({ pg: ['ok-1'], maria: ['ok-1'] });
      expect((await client.getTransaction(r.id)).state).toBe('committed');
      // The application's pg client is usable again after PREPARE.
      expect((await own.query('select 1 as one')).rows[0]?.one).toBe(1);
    } finally {
      await own.end();
    }
  });

  it('a branch that fails rolls back everything, including the other prepared branch', async () => {
    const own = new pg.Client({ connectionString: pgUrl });
    await own.connect();
    try {
      const err = await client
        .runTransaction(['erp', 'crm'], async (tx) => {
          const erp = await tx.pg('erp', own);
          await erp.query(`insert into ${T} (id) values ($1)`, ['bad-1']);
          const crm = await tx.mysql('crm', await myPool.getConnection());
          await crm.query(`insert into ${T} (id) values (?)`, ['ok-1']); // duplicate key: fails
        })
        .catch((e: unknown) => e);
      expect(TxcError.is(err)).toBe(true);
      expect(await rows()).toEqual({ pg: ['ok-1'], maria: ['ok-1'] });
      expect((await admin.inDoubt()).branches.filter((b) => b.coordinatorId === 'client2pc')).toEqual([]);
    } finally {
      await own.end();
    }
  });

  it('an undecided transaction past its deadline is aborted and its prepared branch rolled back by recovery', async () => {
    const t = await client.beginTransaction({ participants: ['erp'], timeoutMs: 300 });
    const b = t.branches[0]!;
    await pgc.query('BEGIN');
    await pgc.query(`insert into ${T} (id) values ($1)`, ['late-1']);
    await new Promise((r) => setTimeout(r, 600));
    await pgc.query(`PREPARE TRANSACTION '${b.gid}'`);
    expect((await client.getTransaction(t.id)).state).toBe('aborted');
    await expect(client.commit(t.id)).rejects.toMatchObject({ code: 'TXC_TRANSACTION_CLOSED' });
    await server.coord.recover();
    expect((await rows()).pg).toEqual(['ok-1']);
    expect((await pgc.query(`select count(*)::int as n from pg_prepared_xacts where gid = $1`, [b.gid])).rows[0]?.n).toBe(0);
  });
});
