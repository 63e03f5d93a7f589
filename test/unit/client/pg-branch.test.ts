import { describe, expect, it } from 'vitest';
import { branchXid, newGtrid, toMysqlXid, toPgGid } from '../../../coordinator/xid.js';
import { pgBranch, type PgBranchClient, type WireBranch } from '../../../client/index.js';
import { FakeDatabase, FakePgClient, pgError } from './fake-drivers.js';
import { txcRejection } from './txc-rejection.js';

const GTRID = newGtrid('unit', () => '0190d5a8-7b3c-7def-8123-456789abcdef');
const XID = branchXid(GTRID, 0);
const GID = toPgGid(XID);
const BRANCH: WireBranch = { participant: 'erp', driver: 'postgres', ...XID, gid: GID };

describe('pgBranch', () => {
  it('sends BEGIN, the statements, then PREPARE TRANSACTION with the gid', async () => {
    const db = new FakeDatabase();
    const client = new FakePgClient(db);
    const branch = await pgBranch(client, BRANCH);
    expect(await branch.query('update stock set qty = qty - $1', [1])).toEqual({ rows: [], rowCount: 2 });
    expect(await branch.query<{ n: number }>('select 1 as n')).toEqual({ rows: [{ n: 1 }], rowCount: 1 });
    await branch.prepare();
    expect(client.sql).toEqual(['BEGIN', 'update stock set qty = qty - $1', 'select 1 as n', `PREPARE TRANSACTION '${GID}'`]);
    expect(db.prepared.has(GID)).toBe(true);
    // Prepared: the session is idle again, and the branch is the coordinator's now.
    expect(client.status).toBe('I');
    await branch.prepare();
    await branch.rollback();
    expect(client.sql).toHaveLength(4);
    await txcRejection(branch.query('select 1'), 'TXC_TRANSACTION_CLOSED');
  });

  it('reports PREPARE answered with the tag ROLLBACK as TXC_PREPARE_FAILED: the work was rolled back', async () => {
    const db = new FakeDatabase();
    const client = new FakePgClient(db);
    client.failOn = (sql) => (sql.startsWith('insert') ? pgError('40001', 'could not serialize access') : undefined);
    const branch = await pgBranch(client, BRANCH);
    const statement = await txcRejection(branch.query('insert into t values (1)'), 'TXC_QUERY_FAILED');
    expect(statement.details['sqlState']).toBe('40001');
    expect(statement.retryable).toBe(true);
    const err = await txcRejection(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.message).toContain('answered ROLLBACK');
    // Retryable because the statement that failed was a serialization failure, which is its cause.
    expect(err.retryable).toBe(true);
    expect((err.cause as { code?: string }).code).toBe('40001');
    expect(db.prepared.size).toBe(0);
    await txcRejection(branch.prepare(), 'TXC_PREPARE_FAILED');
    await branch.rollback();
    expect(client.sql.filter((s) => s === 'ROLLBACK')).toHaveLength(0);
  });

  it('rolls back when PostgreSQL refuses PREPARE with an error', async () => {
    const client = new FakePgClient();
    client.failOn = (sql) => (sql.startsWith('PREPARE') ? pgError('0A000', 'cannot PREPARE a transaction that has operated on temporary objects') : undefined);
    const branch = await pgBranch(client, BRANCH);
    const err = await txcRejection(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.details['sqlState']).toBe('0A000');
    expect(err.details['inDoubt']).toBeUndefined();
    expect(client.sql.at(-1)).toBe('ROLLBACK');
  });

  it('says the branch may be prepared when the connection breaks during PREPARE', async () => {
    const client = new FakePgClient();
    client.failOn = (sql) => (sql.startsWith('PREPARE') ? Object.assign(new Error('Connection terminated unexpectedly')) : undefined);
    const branch = await pgBranch(client, BRANCH);
    const err = await txcRejection(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.details['inDoubt']).toBe(true);
    expect(err.message).toContain('abort the transaction');
    await branch.rollback();
    expect(client.sql).not.toContain('ROLLBACK');
  });

  it('rollback() ends an unprepared branch with ROLLBACK', async () => {
    const client = new FakePgClient();
    const branch = await pgBranch(client, BRANCH);
    await branch.query('select 1');
    await branch.rollback();
    expect(client.sql).toEqual(['BEGIN', 'select 1', 'ROLLBACK']);
    await txcRejection(branch.prepare(), 'TXC_PREPARE_FAILED');
  });

  it('runs statements and prepare in call order even when not awaited one by one', async () => {
    const client = new FakePgClient();
    const branch = await pgBranch(client, BRANCH);
    const q = branch.query('select 1');
    const p = branch.prepare();
    const late = branch.query('select 2');
    await Promise.all([q, p]);
    await txcRejection(late, 'TXC_TRANSACTION_CLOSED');
    expect(client.sql).toEqual(['BEGIN', 'select 1', `PREPARE TRANSACTION '${GID}'`]);
  });

  it('refuses a gid that is not the validated form of the xid, before sending anything', async () => {
    const client = new FakePgClient();
    const evil = `${GID}'; drop table accounts; --`;
    await txcRejection(pgBranch(client, { ...BRANCH, gid: evil }), 'TXC_ID_INVALID');
    await txcRejection(pgBranch(client, { ...BRANCH, bqual: "b0'" }), 'TXC_ID_INVALID');
    await txcRejection(pgBranch(client, { ...BRANCH, gtrid: 'not-a-gtrid' }), 'TXC_ID_INVALID');
    await txcRejection(pgBranch(client, { ...BRANCH, formatId: 1 }), 'TXC_ID_INVALID');
    expect(client.sql).toEqual([]);
  });

  it('refuses a branch of another driver, a pool, and a client already in a transaction block', async () => {
    const client = new FakePgClient();
    await txcRejection(pgBranch(client, { ...BRANCH, driver: 'mysql', gid: undefined, xa: toMysqlXid(XID) } as WireBranch), 'TXC_UNSUPPORTED');
    const pool = { query: client.query.bind(client), totalCount: 1 } as unknown as PgBranchClient;
    await txcRejection(pgBranch(pool, BRANCH), 'TXC_BAD_REQUEST');
    client.status = 'T';
    await txcRejection(pgBranch(client, BRANCH), 'TXC_BAD_REQUEST');
    expect(client.sql).toEqual([]);
  });

  it('reports a failed BEGIN as TXC_QUERY_FAILED', async () => {
    const client = new FakePgClient();
    client.failOn = (sql) => (sql === 'BEGIN' ? Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) : undefined);
    const err = await txcRejection(pgBranch(client, BRANCH), 'TXC_QUERY_FAILED');
    expect(err.retryable).toBe(true);
  });
});
