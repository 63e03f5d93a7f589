import { EventEmitter } from 'node:events';
import mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { branchXid, newGtrid, toMysqlXid, toPgGid } from '../../../coordinator/xid.js';
import { mysqlBranch, type MysqlBranchConnection, type WireBranch } from '../../../client/index.js';
import { FakeDatabase, FakeMysqlConnection, mysqlError } from './fake-drivers.js';
import { txcRejection } from './txc-rejection.js';

const GTRID = newGtrid('unit', () => '0190d5a8-7b3c-7def-8123-456789abcdef');
const XID = branchXid(GTRID, 1);
const XA = toMysqlXid(XID);
const BRANCH: WireBranch = { participant: 'crm', driver: 'mysql', ...XID, xa: XA };

describe('mysqlBranch', () => {
  it('sends XA START, the statements, XA END and XA PREPARE through query(), then destroys a pool connection', async () => {
    const db = new FakeDatabase();
    const conn = new FakeMysqlConnection(true, db);
    const branch = await mysqlBranch(conn, BRANCH);
    expect(await branch.query('insert into orders (sku) values (?)', ['A'])).toEqual({ rows: [], rowCount: 1 });
    expect(await branch.query('select 1 as n')).toEqual({ rows: [{ n: 1 }], rowCount: 1 });
    await branch.prepare();
    expect(conn.sql).toEqual([`XA START ${XA}`, 'insert into orders (sku) values (?)', 'select 1 as n', `XA END ${XA}`, `XA PREPARE ${XA}`]);
    expect(db.prepared.has(XA)).toBe(true);
    // Destroyed (removed from the pool), never released or ended (which releases a PoolConnection).
    expect(conn.destroyed).toBe(true);
    expect(conn.released).toBe(false);
    expect(conn.releasedHoldingBranch).toBe(false);
    // The session is gone, so another session (the coordinator's) can finish the branch.
    expect(db.attached.has(XA)).toBe(false);
    // A caller's `finally { conn.release() }` afterwards is harmless: mysql2 ignores it once destroyed.
    await branch.prepare();
    await branch.rollback();
    expect(conn.sql).toHaveLength(5);
  });

  it('ends a plain connection gracefully', async () => {
    const conn = new FakeMysqlConnection(false);
    const branch = await mysqlBranch(conn, BRANCH);
    await branch.prepare();
    expect(conn.ended).toBe(true);
    expect(conn.destroyed).toBe(false);
  });

  it('resolves after closeWaitMs when the server never reports the close', async () => {
    const conn = new FakeMysqlConnection(true);
    conn.emitsEnd = false;
    const branch = await mysqlBranch(conn, BRANCH, { closeWaitMs: 30 });
    const started = Date.now();
    await branch.prepare();
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(conn.destroyed).toBe(true);
  });

  it('waits for the server to close its side before resolving', async () => {
    const conn = new FakeMysqlConnection(true);
    const branch = await mysqlBranch(conn, BRANCH, { closeWaitMs: 10_000 });
    let ended = false;
    conn.once('end', () => (ended = true));
    await branch.prepare();
    expect(ended).toBe(true);
  });

  it('rolls back and closes the connection when XA PREPARE is refused', async () => {
    const db = new FakeDatabase();
    const conn = new FakeMysqlConnection(true, db);
    conn.failOn = (sql) => (sql.startsWith('XA PREPARE') ? mysqlError(1399, 'ER_XAER_RMFAIL') : undefined);
    const branch = await mysqlBranch(conn, BRANCH);
    const err = await txcRejection(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.details['errno']).toBe(1399);
    expect(conn.sql.slice(-2)).toEqual([`XA PREPARE ${XA}`, `XA ROLLBACK ${XA}`]);
    expect(conn.destroyed).toBe(true);
    expect(conn.released).toBe(false);
    expect(db.prepared.size).toBe(0);
  });

  it('reports a deadlock found at XA END as a retryable prepare failure, rolled back', async () => {
    const conn = new FakeMysqlConnection(true);
    conn.failOn = (sql) => (sql.startsWith('XA END') ? mysqlError(1614, 'ER_XA_RBDEADLOCK') : undefined);
    const branch = await mysqlBranch(conn, BRANCH);
    const err = await txcRejection(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.retryable).toBe(true);
    expect(conn.sql).toEqual([`XA START ${XA}`, `XA END ${XA}`, `XA ROLLBACK ${XA}`]);
    expect(conn.destroyed).toBe(true);
  });

  it('says the branch may be prepared when the connection breaks during XA PREPARE', async () => {
    const conn = new FakeMysqlConnection(true);
    conn.failOn = (sql) => (sql.startsWith('XA PREPARE') ? mysqlError(2013, 'PROTOCOL_CONNECTION_LOST', true) : undefined);
    const branch = await mysqlBranch(conn, BRANCH);
    const err = await txcRejection(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.details['inDoubt']).toBe(true);
    expect(conn.sql).not.toContain(`XA ROLLBACK ${XA}`);
    expect(conn.destroyed).toBe(true);
  });

  it('rollback() ends and rolls back an unprepared branch and keeps the connection', async () => {
    const conn = new FakeMysqlConnection(true);
    const branch = await mysqlBranch(conn, BRANCH);
    await branch.query('update t set a = 1');
    await branch.rollback();
    expect(conn.sql.slice(-2)).toEqual([`XA END ${XA}`, `XA ROLLBACK ${XA}`]);
    expect(conn.destroyed || conn.released || conn.ended).toBe(false);
    await txcRejection(branch.query('select 1'), 'TXC_TRANSACTION_CLOSED');
  });

  it('rollback() closes the connection when XA ROLLBACK fails (the disconnect rolls back)', async () => {
    const conn = new FakeMysqlConnection(true);
    conn.failOn = (sql) => (sql.startsWith('XA ROLLBACK') ? mysqlError(1399, 'ER_XAER_RMFAIL') : undefined);
    const branch = await mysqlBranch(conn, BRANCH);
    await branch.rollback();
    expect(conn.destroyed).toBe(true);
  });

  it('wraps statement failures as TXC_QUERY_FAILED and keeps the branch open', async () => {
    const conn = new FakeMysqlConnection(false);
    conn.failOn = (sql) => (sql.startsWith('insert') ? mysqlError(1062, 'ER_DUP_ENTRY') : undefined);
    const branch = await mysqlBranch(conn, BRANCH);
    const err = await txcRejection(branch.query('insert into t values (1)'), 'TXC_QUERY_FAILED');
    expect(err.details['errno']).toBe(1062);
    await branch.prepare();
    expect(conn.ended).toBe(true);
  });

  it('refuses a tampered xa clause, another driver, and a pool, before sending anything', async () => {
    const conn = new FakeMysqlConnection(true);
    await txcRejection(mysqlBranch(conn, { ...BRANCH, xa: `${XA}; drop table t` }), 'TXC_ID_INVALID');
    await txcRejection(mysqlBranch(conn, { ...BRANCH, driver: 'postgres', xa: undefined, gid: toPgGid(XID) } as WireBranch), 'TXC_UNSUPPORTED');
    const pool = Object.assign(new FakeMysqlConnection(false), { getConnection: async () => conn }) as unknown as MysqlBranchConnection;
    await txcRejection(mysqlBranch(pool, BRANCH), 'TXC_BAD_REQUEST');
    expect(conn.sql).toEqual([]);
  });

  it('reports a failed XA START as TXC_QUERY_FAILED and leaves the connection to the caller', async () => {
    const conn = new FakeMysqlConnection(true);
    conn.failOn = (sql) => (sql.startsWith('XA START') ? mysqlError(1400, 'ER_XAER_OUTSIDE') : undefined);
    await txcRejection(mysqlBranch(conn, BRANCH), 'TXC_QUERY_FAILED');
    expect(conn.destroyed || conn.released).toBe(false);
  });
});

describe('closing mysql2 connections', () => {
  /** A stand-in for mysql2's core connection, wrapped by mysql2's real promise classes below. */
  function core(pooled: boolean) {
    const calls: string[] = [];
    const conn = Object.assign(new EventEmitter(), {
      calls,
      query: (sql: string, ...rest: unknown[]) => {
        calls.push(sql);
        (rest.at(-1) as (err: null, rows: unknown, fields: unknown) => void)(null, { affectedRows: 0, serverStatus: 0 }, undefined);
      },
      end: (cb?: () => void) => {
        calls.push('end');
        cb?.();
      },
      destroy: () => void calls.push('destroy'),
      close: () => void calls.push('close'),
      config: {},
      ...(pooled ? { release: () => void calls.push('release') } : {}),
    });
    return conn;
  }

  it('destroys mysql2 PoolConnections and ends plain Connections (the real promise wrappers)', async () => {
    const pooledCore = core(true);
    const pooled = new (mysql.PoolConnection as unknown as new (c: unknown) => MysqlBranchConnection)(pooledCore);
    await (await mysqlBranch(pooled, BRANCH, { closeWaitMs: 1 })).prepare();
    expect(pooledCore.calls).toEqual([`XA START ${XA}`, `XA END ${XA}`, `XA PREPARE ${XA}`, 'destroy']);

    const plainCore = core(false);
    const plain = new (mysql.Connection as unknown as new (c: unknown) => MysqlBranchConnection)(plainCore);
    await (await mysqlBranch(plain, BRANCH, { closeWaitMs: 1 })).prepare();
    expect(plainCore.calls).toEqual([`XA START ${XA}`, `XA END ${XA}`, `XA PREPARE ${XA}`, 'end']);
  });
});
