/**
 * Sagas and saga-mode transactions against the real databases: PostgreSQL and MariaDB in
 * local-only mode stand in for databases that cannot prepare (SQL Server), so every barrier,
 * compensation and local commit runs for real; an in-process ledger service plays the HTTP service.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { TxcError } from '../../coordinator/errors.js';
import type { Coordinator } from '../../coordinator/types.js';
import { startLedgerService, type LedgerService } from '../fixtures/ledger-service.js';
import { mysqlUrl, pgUrl, requireDbOrSkip, rollbackLeftovers } from './db-env.js';

const ready = (await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql'));
const T = 'txc_saga_it';

describe.skipIf(!ready)('sagas on real databases', () => {
  let pgc: pg.Client;
  let my: mysql.Connection;
  let ledger: LedgerService;
  let coord: Coordinator;

  const balance = async (where: 'pg' | 'maria', id: number): Promise<number> => {
    if (where === 'pg') return Number((await pgc.query(`select balance from ${T} where id = $1`, [id])).rows[0]?.balance);
    const [rows] = await my.query(`select balance from ${T} where id = ?`, [id]);
    return Number((rows as { balance: number }[])[0]?.balance);
  };

  beforeAll(async () => {
    await rollbackLeftovers('sagait');
    pgc = new pg.Client({ connectionString: pgUrl });
    await pgc.connect();
    my = await mysql.createConnection({ uri: mysqlUrl });
    await pgc.query(`drop table if exists ${T}, ${T}_deferred`);
    await pgc.query(`create table ${T} (id int primary key, balance bigint not null)`);
    await pgc.query(`insert into ${T} select g, 1000 from generate_series(1, 10) g`);
    // A constraint checked only at COMMIT: the way to make a local commit itself fail.
    await pgc.query(`create table ${T}_deferred (k int, constraint ${T}_u unique (k) deferrable initially deferred)`);
    await my.query(`drop table if exists ${T}`);
    await my.query(`create table ${T} (id int primary key, balance bigint not null) engine=InnoDB`);
    await my.query(`insert into ${T} values (1,1000),(2,1000),(3,1000),(4,1000),(5,1000)`);
    ledger = await startLedgerService();
    coord = await createCoordinator({
      id: 'sagait',
      log: { type: 'memory' },
      participants: {
        pg: { driver: 'postgres', connectionString: pgUrl, localOnly: true },
        maria: { driver: 'mysql', uri: mysqlUrl, localOnly: true },
        pg2: { driver: 'postgres', connectionString: pgUrl },
        billing: { driver: 'http', baseUrl: ledger.url },
      },
      recovery: { intervalMs: 0 },
      backoff: { initialMs: 10, maxMs: 50 },
      logger: pino({ level: 'silent' }),
    });
  });

  afterAll(async () => {
    await coord?.close();
    await ledger?.close();
    await pgc?.query(`drop table if exists ${T}, ${T}_deferred`);
    await my?.query(`drop table if exists ${T}`);
    await pgc?.end();
    await my?.end();
  });

  it('a transaction over two databases that cannot prepare runs as a saga and commits on both', async () => {
    const r = await coord.transaction(async (tx) => {
      await tx.query('pg', `update ${T} set balance = balance - 10 where id = 1`, [], { compensate: { sql: `update ${T} set balance = balance + 10 where id = 1` } });
      await tx.query('maria', `update ${T} set balance = balance + 10 where id = 1`, [], { compensate: { sql: `update ${T} set balance = balance - 10 where id = 1` } });
    });
    expect(r).toMatchObject({ mode: 'saga', guarantee: 'compensating' });
    expect([await balance('pg', 1), await balance('maria', 1)]).toEqual([990, 1010]);
  });

  it('when one local commit fails, the other is compensated for real', async () => {
    const before = [await balance('pg', 2), await balance('maria', 2)];
    const err = await coord
      .transaction(async (tx) => {
        await tx.query('maria', `update ${T} set balance = balance + 25 where id = 2`, [], { compensate: { sql: `update ${T} set balance = balance - 25 where id = 2` } });
        await tx.query('pg', `update ${T} set balance = balance - 25 where id = 2`, [], { compensate: { sql: `update ${T} set balance = balance + 25 where id = 2` } });
        // Two equal keys under a deferred unique constraint: PostgreSQL refuses at COMMIT.
        await tx.query('pg', `insert into ${T}_deferred values (1), (1)`, [], { compensate: false });
      })
      .catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_COMMIT_FAILED')).toBe(true);
    expect((err as TxcError).details['compensated']).toBe(true);
    expect([await balance('pg', 2), await balance('maria', 2)]).toEqual(before);
  });

  it('2PC runs inside the saga: the prepared branch rolls back when the saga compensates', async () => {
    const err = await coord
      .transaction(async (tx) => {
        await tx.query('pg2', `update ${T} set balance = balance + 1 where id = 3`);
        await tx.query('maria', `update ${T} set balance = balance + 1 where id = 3`, [], { compensate: { sql: `update ${T} set balance = balance - 1 where id = 3` } });
        await tx.query('pg', `insert into ${T}_deferred values (2), (2)`, [], { compensate: false });
      })
      .catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_COMMIT_FAILED')).toBe(true);
    expect([await balance('pg', 3), await balance('maria', 3)]).toEqual([1000, 1000]);
    expect((await pgc.query(`select count(*)::int as n from pg_prepared_xacts where gid like 'txc1.sagait.%'`)).rows[0]?.n).toBe(0);
  });

  it('a data saga over SQL and HTTP steps compensates the SQL steps exactly once when the service refuses', async () => {
    ledger.faults({ reset: true, rejectWhen: { op: 'charge', field: 'cents', equals: 999 } });
    const r = await coord.saga({
      steps: [
        { name: 'debit', participant: 'pg2', action: { sql: `update ${T} set balance = balance - 50 where id = 4` }, compensate: { sql: `update ${T} set balance = balance + 50 where id = 4` } },
        { name: 'credit', participant: 'maria', action: { sql: `update ${T} set balance = balance + 50 where id = 4` }, compensate: { sql: `update ${T} set balance = balance - 50 where id = 4` } },
        { name: 'charge', participant: 'billing', action: { path: '/charge', body: { cents: 999 } }, compensate: { path: '/refund', body: { cents: 999 } } },
      ],
    });
    expect(r.status).toBe('compensated');
    expect(r.steps.map((s) => s.compensation)).toEqual(['done', 'done', 'not-needed']);
    expect([await balance('pg', 4), await balance('maria', 4)]).toEqual([1000, 1000]);
    const rows = await pgc.query(`select step, op, origin from txcoord_barrier where gid = $1 order by step, op`, [r.id]);
    expect(rows.rows).toEqual([
      { step: 'debit', op: 'action', origin: 'action' },
      { step: 'debit', op: 'compensate', origin: 'compensate' },
    ]);
  });

  it('a data saga commits, and its HTTP effects carry the idempotency key', async () => {
    ledger.faults({ reset: true, applyThenFail: 1 });
    const r = await coord.saga({
      steps: [
        { name: 'debit', participant: 'maria', action: { sql: `update ${T} set balance = balance - 5 where id = 5` }, compensate: { sql: `update ${T} set balance = balance + 5 where id = 5` } },
        { name: 'charge', participant: 'billing', action: { path: '/charge', body: { cents: 5 } }, compensate: { path: '/refund', body: { cents: 5 } } },
      ],
    });
    expect(r.status).toBe('committed');
    expect(await balance('maria', 5)).toBe(995);
    const charges = ledger.ledger().filter((e) => e.key === `${r.id}:charge:action`);
    expect(charges).toHaveLength(1);
  });
});
