// The PGlite adapter against real PGlite (WASM PostgreSQL) in temporary directories.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { branchXid, newGtrid, toPgGid, type Xid } from '../../../coordinator/xid.js';
import type { Participant } from '../../../participants/participant.js';
import { pgliteConf } from '../../../participants/pglite/driver.js';
import { createPgliteParticipant } from '../../../participants/pglite/index.js';

const logger = pino({ level: 'silent' });
let work: string;
let counter = 0;

/** A fresh xid per call. */
function xid(): Xid {
  const n = String(++counter).padStart(12, '0');
  return branchXid(newGtrid('itest', () => `0190d5a8-7b3c-7def-8123-${n}`), 0);
}

function open(dataDir: string, acquireTimeoutMs?: number): Participant {
  return createPgliteParticipant('lite', { driver: 'pglite', dataDir, ...(acquireTimeoutMs ? { acquireTimeoutMs } : {}) }, { logger });
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<TxcError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(TxcError.is(err), `expected ${code}, got ${String(err)}`).toBe(true);
  expect((err as TxcError).code).toBe(code);
  return err as TxcError;
}

/** Runs `sql` in its own one-phase branch and returns the rows. */
async function run(p: Participant, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const branch = await p.begin(xid());
  try {
    const { rows } = await branch.query(sql, params);
    await branch.commitOnePhase();
    return rows;
  } finally {
    branch.release();
  }
}

const balance = async (p: Participant, id: number) =>
  (await run(p, 'select balance from account where id = $1', [id]))[0]?.['balance'];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'txc-pglite-it-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('PGlite participant (one shared data directory)', () => {
  let p: Participant;

  beforeAll(async () => {
    p = open(join(work, 'shared'));
    await p.preflight();
    await run(p, 'create table account (id int primary key, balance int not null)');
    await run(p, 'insert into account select g, 100 from generate_series(1, 20) g');
  });

  afterAll(async () => {
    await p?.close();
  });

  it('prepare + commitPrepared makes the change visible and reports the local transaction id', async () => {
    const branch = await p.begin(xid());
    expect((await branch.query('update account set balance = balance - 10 where id = 1')).rowCount).toBe(1);
    expect(await branch.hasWritten()).toBe(true);
    const { localTxId } = await branch.prepare();
    expect(localTxId).toMatch(/^\d+$/);
    expect(await branch.commitPrepared()).toBe('done');
    branch.release();
    expect(await balance(p, 1)).toBe(90);
    expect(await p.localStatus!(localTxId!)).toBe('committed');
  });

  it('rollback before prepare discards the change', async () => {
    const branch = await p.begin(xid());
    await branch.query('update account set balance = 0 where id = 2');
    await branch.rollback();
    branch.release();
    expect(await balance(p, 2)).toBe(100);
  });

  it('rollback after prepare discards the change and leaves nothing in doubt', async () => {
    const branch = await p.begin(xid());
    await branch.query('update account set balance = 0 where id = 3');
    const { localTxId } = await branch.prepare();
    await branch.rollback();
    await branch.rollback(); // finished: a no-op
    branch.release();
    expect(await p.listInDoubt()).toEqual([]);
    expect(await balance(p, 3)).toBe(100);
    expect(await p.localStatus!(localTxId!)).toBe('aborted');
  });

  it('the silent-ROLLBACK trap: after a failed statement, prepare fails and nothing is prepared', async () => {
    const branch = await p.begin(xid());
    await branch.query('update account set balance = 1 where id = 4');
    const failed = await expectCode(branch.query('insert into account values (4, 0)'), 'TXC_QUERY_FAILED');
    expect(failed.details).toEqual({ participant: 'lite', sqlState: '23505' });
    await expectCode(branch.prepare(), 'TXC_PREPARE_FAILED');
    branch.release();
    expect(await p.listInDoubt()).toEqual([]);
    expect(await balance(p, 4)).toBe(100);
  });

  it('the same trap on one-phase commit: COMMIT of a failed transaction is TXC_COMMIT_FAILED', async () => {
    const branch = await p.begin(xid());
    await branch.query('update account set balance = 1 where id = 5');
    await expectCode(branch.query('select 1/0'), 'TXC_QUERY_FAILED');
    const err = await expectCode(branch.commitOnePhase(), 'TXC_COMMIT_FAILED');
    expect(err.message).toMatch(/answered ROLLBACK/);
    branch.release();
    expect(await balance(p, 5)).toBe(100);
  });

  it('a PREPARE refused with an error (temp table, 0A000) is TXC_PREPARE_FAILED and frees the connection', async () => {
    const branch = await p.begin(xid());
    await branch.query('update account set balance = 1 where id = 9');
    await branch.query('create temp table prep_scratch (x int)');
    const err = await expectCode(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.details).toEqual({ participant: 'lite', sqlState: '0A000' });
    branch.release();
    expect(await p.listInDoubt()).toEqual([]);
    expect(await balance(p, 9)).toBe(100);
  });

  it('refuses a statement that ends the transaction block, and commit cannot report success', async () => {
    const branch = await p.begin(xid());
    await branch.query('update account set balance = 1 where id = 6');
    await expectCode(branch.query('rollback'), 'TXC_QUERY_FAILED');
    await expectCode(branch.commitOnePhase(), 'TXC_COMMIT_FAILED');
    branch.release();
    expect(await balance(p, 6)).toBe(100);
  });

  it('one-phase commit', async () => {
    const branch = await p.begin(xid());
    await branch.query('update account set balance = 55 where id = 7');
    await branch.commitOnePhase();
    branch.release();
    expect(await balance(p, 7)).toBe(55);
  });

  it('detects read-only branches', async () => {
    const reader = await p.begin(xid());
    expect((await reader.query('select * from account where id = 8')).rowCount).toBe(1);
    expect((await reader.query('update account set balance = 0 where id = -1')).rowCount).toBe(0);
    expect(await reader.hasWritten()).toBe(false);
    await reader.commitOnePhase();
    reader.release();
    const writer = await p.begin(xid());
    await writer.query('create temp table if not exists scratch (x int)');
    expect(await writer.hasWritten()).toBe(true);
    await writer.rollback();
    writer.release();
  });

  it('localStatus says unknown for ids it cannot judge', async () => {
    expect(await p.localStatus!('999999999999')).toBe('unknown');
    expect(await p.localStatus!('not-a-number')).toBe('unknown');
  });

  it('serializes concurrent transactions on the single connection; all succeed', async () => {
    const transfer = async (i: number) => {
      const branch = await p.begin(xid());
      try {
        await branch.query('update account set balance = balance - 1 where id = 10');
        await branch.query('update account set balance = balance + 1 where id = $1', [11 + (i % 5)]);
        if (i % 2 === 0) {
          await branch.prepare();
          expect(await branch.commitPrepared()).toBe('done');
        } else {
          await branch.commitOnePhase();
        }
      } finally {
        branch.release();
      }
    };
    await Promise.all(Array.from({ length: 12 }, (_, i) => transfer(i)));
    expect(await balance(p, 10)).toBe(88);
    const rows = await run(p, 'select sum(balance)::int as total from account where id between 11 and 15');
    expect(rows[0]?.['total']).toBe(512);
  });

  it('a branch that is never finished is rolled back when released, and the next one starts clean', async () => {
    const branch = await p.begin(xid());
    await branch.query('update account set balance = 0 where id = 16');
    branch.release();
    expect(await balance(p, 16)).toBe(100);
  });
});

describe('PGlite participant: prepared branches across restarts', () => {
  it('a prepared branch survives close + reopen; begin is refused until it is resolved', async () => {
    const dataDir = join(work, 'restart');
    const first = open(dataDir);
    await run(first, 'create table item (id int primary key)');
    const x = xid();
    const branch = await first.begin(x);
    await branch.query('insert into item values (1)');
    const { localTxId } = await branch.prepare();
    branch.release(); // the coordinator "crashed" after prepare
    await expectCode(first.begin(xid()), 'TXC_RECOVERY_REQUIRED');
    await first.close();

    const second = open(dataDir);
    const err = await expectCode(second.begin(xid()), 'TXC_RECOVERY_REQUIRED');
    expect(err.details).toMatchObject({ prepared: 1, foreign: 0 });
    expect(await second.listInDoubt()).toEqual([x]);
    expect(await second.localStatus!(localTxId!)).toBe('in-progress');
    expect(await second.commitPrepared(x)).toBe('done');
    expect(await second.commitPrepared(x)).toBe('unknown');
    expect(await second.rollbackPrepared(x)).toBe('unknown');
    expect(await run(second, 'select id from item')).toEqual([{ id: 1 }]);
    expect(await second.localStatus!(localTxId!)).toBe('committed');
    await second.close();
  });

  it('a prepared transaction that is not txcoord\'s blocks begin but is not listed in doubt', async () => {
    const dataDir = join(work, 'foreign');
    const setup = open(dataDir);
    await run(setup, 'create table item (id int primary key)');
    await setup.close();
    // Someone else prepares a transaction by hand (same conf, or PGlite would not start).
    const raw = new PGlite(dataDir, { postgresqlconf: pgliteConf(64) });
    await raw.exec(`BEGIN; insert into item values (7); PREPARE TRANSACTION 'by-hand-1'`);
    await raw.close();

    const p = open(dataDir);
    const err = await expectCode(p.begin(xid()), 'TXC_RECOVERY_REQUIRED');
    expect(err.details).toMatchObject({ prepared: 1, foreign: 1 });
    expect(err.retryable).toBe(false);
    expect(await p.listInDoubt()).toEqual([]);
    await p.close();

    const admin = new PGlite(dataDir, { postgresqlconf: pgliteConf(64) });
    await admin.query(`ROLLBACK PREPARED 'by-hand-1'`);
    await admin.close();
    const again = open(dataDir);
    expect(await run(again, 'select count(*)::int as n from item')).toEqual([{ n: 0 }]);
    await again.close();
  });

  it('listInDoubt lists several prepared branches; resolving the last one reopens begin', async () => {
    const dataDir = join(work, 'several');
    const p = open(dataDir);
    await run(p, 'create table item (id int primary key)');
    const xids = [xid(), xid(), xid()];
    const branch = await p.begin(xids[0]!);
    await branch.query('insert into item values (0)');
    await branch.prepare();
    branch.release();
    // From here on the participant refuses new branches: prepare the other two by hand.
    await expectCode(p.begin(xid()), 'TXC_RECOVERY_REQUIRED');
    expect(await p.listInDoubt()).toEqual([xids[0]]);
    await p.close();

    // A raw instance prepares the other two; a new participant must find all three.
    const raw = new PGlite(dataDir, { postgresqlconf: pgliteConf(64) });
    for (const [i, x] of xids.slice(1).entries()) {
      await raw.exec(`BEGIN; insert into item values (${i + 1}); PREPARE TRANSACTION '${toPgGid(x)}'`);
    }
    await raw.close();

    const q = open(dataDir);
    const inDoubt = await q.listInDoubt();
    expect(new Set(inDoubt.map(toPgGid))).toEqual(new Set(xids.map(toPgGid)));
    expect(await q.commitPrepared(xids[0]!)).toBe('done');
    expect(await q.rollbackPrepared(xids[1]!)).toBe('done');
    await expectCode(q.begin(xid()), 'TXC_RECOVERY_REQUIRED');
    expect(await q.commitPrepared(xids[2]!)).toBe('done');
    expect(await run(q, 'select id from item order by id')).toEqual([{ id: 0 }, { id: 2 }]);
    await q.close();
  });

  it('refuses a second participant on a directory this process already has open', async () => {
    const dataDir = join(work, 'twice');
    const first = open(dataDir);
    await first.preflight();
    const second = open(dataDir);
    const err = await expectCode(second.preflight(), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect((err.cause as Error).message).toMatch(/already open in this process/);
    await first.close();
    await second.preflight(); // free again once the first has closed
    await second.close();
  });

  it('preflight reports the configured capacity and close is idempotent', async () => {
    const p = createPgliteParticipant('lite', { driver: 'pglite', dataDir: join(work, 'preflight'), maxPreparedTransactions: 7 }, { logger });
    await p.preflight();
    expect(await run(p, 'show max_prepared_transactions')).toEqual([{ max_prepared_transactions: '7' }]);
    await p.close();
    await p.close();
    await expectCode(p.begin(xid()), 'TXC_PARTICIPANT_UNAVAILABLE');
  });
});
