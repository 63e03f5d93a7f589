/**
 * The operator verbs against real databases: `status`, `resolve` (refused against the log unless
 * forced, recorded as heuristic), `log compact`, and `log inspect|verify` on a shared PostgreSQL log.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlUrl, pgUrl, requireDbOrSkip, rollbackLeftovers } from './db-env.js';
import { CLI, ROOT, runNode } from './run-node.js';

const ready = (await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql'));
const CHILD = join(ROOT, 'dist/test/fixtures/crash-child.js');
const work = mkdtempSync(join(tmpdir(), 'txc-cliops-'));
const SCHEMA = `txc_cliops_${randomBytes(4).toString('hex')}`;
const env = { ...process.env, TXCOORD_PG_URL: pgUrl, TXCOORD_MYSQL_URL: mysqlUrl };

function config(name: string, log: unknown, id: string): string {
  const file = join(work, `${name}.json`);
  writeFileSync(file, JSON.stringify({ id, log, participants: { pg: { driver: 'postgres', connectionString: '${TXCOORD_PG_URL}' }, maria: { driver: 'mysql', uri: '${TXCOORD_MYSQL_URL}' } }, recovery: { intervalMs: 0 } }));
  return file;
}

describe.skipIf(!ready)('operator CLI verbs', () => {
  const fileCfg = config('file', { type: 'file', dir: join(work, 'txlog') }, 'cliops');
  const pgCfg = config('shared', { type: 'postgres', connectionString: '${TXCOORD_PG_URL}', schema: SCHEMA, leaseMs: 2000 }, 'cliopspg');

  beforeAll(async () => {
    await rollbackLeftovers('cliops');
    await rollbackLeftovers('cliopspg');
    // The tables crash-child moves money between, one account each.
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    await c.query('drop table if exists txc_cliops_accounts, txc_cliops_transfers');
    await c.query('create table txc_cliops_accounts (id int primary key, balance bigint not null)');
    await c.query('create table txc_cliops_transfers (id text primary key, amount bigint not null)');
    await c.query('insert into txc_cliops_accounts values (1, 1000000)');
    await c.end();
    const my = await mysql.createConnection({ uri: mysqlUrl });
    await my.query('drop table if exists txc_cliops_accounts, txc_cliops_transfers');
    await my.query('create table txc_cliops_accounts (id int primary key, balance bigint not null) engine=InnoDB');
    await my.query('create table txc_cliops_transfers (id varchar(64) primary key, amount bigint not null) engine=InnoDB');
    await my.query('insert into txc_cliops_accounts values (1, 1000000)');
    await my.end();
  });

  afterAll(async () => {
    await rollbackLeftovers('cliops');
    await rollbackLeftovers('cliopspg');
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    await c.query(`drop schema if exists ${SCHEMA} cascade`);
    await c.query('drop table if exists txc_cliops_accounts, txc_cliops_transfers');
    await c.end();
    const my = await mysql.createConnection({ uri: mysqlUrl });
    await my.query('drop table if exists txc_cliops_accounts, txc_cliops_transfers');
    await my.end();
    await rm(work, { recursive: true, force: true });
  });

  it('status shows a decided transaction left prepared by a crash; resolve refuses to contradict the log, then obeys --force', async () => {
    const ack = join(work, 'ack');
    writeFileSync(ack, '');
    const child = await runNode(CHILD, [fileCfg, 'after-decision'], { env: { ...env, TXC_ACK_FILE: ack, TXC_CRASH_AT: '1', TXC_CRASH_PREFIX: 'txc_cliops', TXC_CRASH_RUN: `ops${Date.now()}` } });
    expect(child.signal).toBe('SIGKILL');

    const status = await runNode(CLI, ['status', '--config', fileCfg, '--json'], { env });
    expect(status.code, status.stderr).toBe(1);
    const view = JSON.parse(status.stdout) as { committing: { gtrid: string }[]; inDoubt: { gtrid: string; bqual: string; decision: string }[] };
    expect(view.committing).toHaveLength(1);
    const gtrid = view.committing[0]!.gtrid;
    expect(view.inDoubt.filter((b) => b.gtrid === gtrid).map((b) => b.decision)).toEqual(['commit', 'commit']);

    const refused = await runNode(CLI, ['resolve', gtrid, '--rollback', '--config', fileCfg], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^txcoord: TXC_RESOLVE_REFUSED: /);
    const usage = await runNode(CLI, ['resolve', gtrid, '--config', fileCfg], { env });
    expect(usage.code).toBe(2);

    const forced = await runNode(CLI, ['resolve', `${gtrid}.${view.inDoubt.find((b) => b.gtrid === gtrid)!.bqual}`, '--commit', '--config', fileCfg, '--json'], { env });
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ outcome: 'commit', logDecision: 'commit', resolved: 1 });

    // Recovery commits the other branch and ends the transaction; compact then keeps nothing.
    const rec = await runNode(CLI, ['recover', '--config', fileCfg, '--json'], { env });
    expect(rec.code, rec.stdout + rec.stderr).toBe(0);
    const after = await runNode(CLI, ['status', '--config', fileCfg, '--json'], { env });
    expect(JSON.parse(after.stdout)).toMatchObject({ committing: [], inDoubt: [] });
    const compact = await runNode(CLI, ['log', 'compact', '--config', fileCfg, '--json'], { env });
    expect(compact.code, compact.stderr).toBe(0);
    expect(JSON.parse(compact.stdout)).toMatchObject({ ok: true, liveRecords: 0 });
  });

  it('log inspect and verify read a shared PostgreSQL log, with its coordinator processes', async () => {
    const ack = join(work, 'ack2');
    writeFileSync(ack, '');
    const child = await runNode(CHILD, [pgCfg, 'after-decision'], { env: { ...env, TXC_ACK_FILE: ack, TXC_CRASH_AT: '2', TXC_CRASH_PREFIX: 'txc_cliops', TXC_CRASH_RUN: `opspg${Date.now()}` } });
    expect(child.signal, child.stderr).toBe('SIGKILL');
    const inspect = await runNode(CLI, ['log', 'inspect', '--config', pgCfg, '--json'], { env });
    expect(inspect.code, inspect.stderr).toBe(0);
    const ins = JSON.parse(inspect.stdout) as { instances: { coordinatorId: string }[]; transactions: unknown[]; live: { type: string }[] };
    expect(ins.instances.map((i) => i.coordinatorId)).toContain('cliopspg');
    expect(ins.transactions).toHaveLength(1);
    expect(ins.live.map((r) => r.type)).toEqual(['commit']);
    const verify = await runNode(CLI, ['log', 'verify', '--config', pgCfg, '--json'], { env });
    expect(verify.code, verify.stdout).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, liveTransactions: 1 });
    // The dead process's lease must expire before another process (here: the CLI with the same id) may open the log.
    await new Promise((r) => setTimeout(r, 3_000));
    const rec = await runNode(CLI, ['recover', '--config', pgCfg, '--json'], { env });
    expect(rec.code, rec.stdout + rec.stderr).toBe(0);
    expect(JSON.parse(rec.stdout)).toMatchObject({ committed: 2 });
  }, 60_000);
});
