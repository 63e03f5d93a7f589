import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { TxcError } from '../../coordinator/errors.js';
import type { Coordinator } from '../../coordinator/types.js';
import { branchXid, newGtrid, toMysqlXid, toPgGid } from '../../coordinator/xid.js';
import type { DecisionLog } from '../../log/decision-log.js';
import { openLog } from '../../log/open-log.js';
import { createMysqlParticipant } from '../../participants/mysql/index.js';
import { createPostgresParticipant } from '../../participants/postgres/index.js';
import { mysqlUrl, pgUrl, requireDbOrSkip, rollbackLeftovers } from './db-env.js';

const ready = (await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql'));
const ID = 'itcoord';
const T = 'txc_it_coord_accounts';
const silent = pino({ level: 'silent' });

describe.skipIf(!ready)('coordinator over real PostgreSQL + MariaDB', () => {
  let pgPool: pg.Pool;
  let my: mysql.Pool;
  let dir: string;

  async function balances(): Promise<[number, number]> {
    const a = await pgPool.query(`select balance from ${T} where id = 1`);
    const [b] = await my.query(`select balance from ${T} where id = 1`);
    return [Number(a.rows[0]?.balance), Number((b as { balance: number }[])[0]?.balance)];
  }

  async function preparedCount(): Promise<number> {
    const a = await pgPool.query(`select count(*)::int n from pg_prepared_xacts where gid like $1`, [`txc1.${ID}.%`]);
    const [rows] = await my.query('XA RECOVER');
    const mine = (rows as { data: Buffer }[]).filter((r) => r.data.toString('latin1').startsWith(`txc1.${ID}.`));
    return (a.rows[0]?.n as number) + mine.length;
  }

  function coordinator(extra: Partial<Parameters<typeof createCoordinator>[0]> = {}): Promise<Coordinator> {
    return createCoordinator({
      id: ID,
      log: { type: 'file', dir },
      participants: {
        erp: { driver: 'postgres', connectionString: pgUrl },
        crm: { driver: 'mysql', uri: mysqlUrl },
      },
      recovery: { intervalMs: 0 },
      backoff: { initialMs: 5, maxMs: 50 },
      logger: silent,
      ...extra,
    });
  }

  const transfer = (coord: Coordinator, amount: number) =>
    coord.transaction(async (tx) => {
      await tx.query('erp', `update ${T} set balance = balance - $1 where id = 1`, [amount]);
      await tx.query('crm', `update ${T} set balance = balance + ? where id = 1`, [amount]);
    });

  beforeAll(async () => {
    await rollbackLeftovers(ID);
    pgPool = new pg.Pool({ connectionString: pgUrl });
    my = mysql.createPool({ uri: mysqlUrl });
    await pgPool.query(`drop table if exists ${T}`);
    await pgPool.query(`create table ${T} (id int primary key, balance int not null check (balance >= 0))`);
    await my.query(`drop table if exists ${T}`);
    await my.query(`create table ${T} (id int primary key, balance int not null) engine=InnoDB`);
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'txc-it-coord-'));
    await pgPool.query(`delete from ${T}; insert into ${T} values (1, 1000)`);
    await my.query(`delete from ${T}`);
    await my.query(`insert into ${T} values (1, 1000)`);
    return async () => {
      await rm(dir, { recursive: true, force: true });
    };
  });

  afterAll(async () => {
    await pgPool.query(`drop table if exists ${T}`);
    await my.query(`drop table if exists ${T}`);
    await pgPool.end();
    await my.end();
  });

  it('commits atomically across both databases with two-phase commit', async () => {
    const coord = await coordinator();
    const r = await transfer(coord, 100);
    expect(r).toMatchObject({ mode: '2pc', phaseTwoPending: false });
    expect(await balances()).toEqual([900, 1100]);
    expect(await preparedCount()).toBe(0);
    await coord.close();
  });

  it('rolls back both sides when the callback throws', async () => {
    const coord = await coordinator();
    await expect(
      coord.transaction(async (tx) => {
        await tx.query('erp', `update ${T} set balance = balance - 100 where id = 1`);
        await tx.query('crm', `update ${T} set balance = balance + 100 where id = 1`);
        throw new Error('insufficient funds');
      }),
    ).rejects.toThrow('insufficient funds');
    expect(await balances()).toEqual([1000, 1000]);
    expect(await preparedCount()).toBe(0);
    await coord.close();
  });

  it('rolls back both sides when PostgreSQL silently refuses to prepare (a failed statement the app swallowed)', async () => {
    const coord = await coordinator();
    const err = await coord
      .transaction(async (tx) => {
        await tx.query('crm', `update ${T} set balance = balance + 5000 where id = 1`);
        await tx.query('erp', `update ${T} set balance = balance - 5000 where id = 1`).catch(() => undefined); // check violation
      })
      .catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_PREPARE_FAILED')).toBe(true);
    expect(await balances()).toEqual([1000, 1000]);
    expect(await preparedCount()).toBe(0);
    await coord.close();
  });

  it('uses one phase for a single writer and nothing for a read-only transaction', async () => {
    const coord = await coordinator();
    const one = await coord.transaction(async (tx) => {
      await tx.query('erp', `select balance from ${T} where id = 1`);
      await tx.query('crm', `update ${T} set balance = balance + 1 where id = 1`);
    });
    expect(one.mode).toBe('one-phase');
    const ro = await coord.transaction(async (tx) => {
      const a = await tx.query('erp', `select balance from ${T} where id = 1`);
      const b = await tx.query('crm', `select balance from ${T} where id = ?`, [1]);
      return [a.rows[0]?.['balance'], b.rows[0]?.['balance']];
    });
    expect(ro).toMatchObject({ mode: 'read-only', value: [1000, 1001] });
    await coord.close();
  });

  it('runs concurrent transfers on hot rows and keeps the total', async () => {
    const coord = await coordinator({ prepareTimeoutMs: 20_000 });
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => transfer(coord, 1)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const [a, b] = await balances();
    expect(a + b).toBe(2000);
    expect(a).toBe(1000 - ok);
    expect(ok).toBeGreaterThan(0);
    expect(await preparedCount()).toBe(0);
    await coord.close();
  });

  describe('recovery of each in-doubt state', () => {
    // Builds the state a crash leaves: both branches prepared by a "dead" process (connections
    // gone), with or without a durable commit record, then lets a new coordinator recover.
    async function leavePrepared(withRecord: boolean): Promise<string> {
      const gtrid = newGtrid(ID);
      const erp = createPostgresParticipant('erp', { driver: 'postgres', connectionString: pgUrl }, { logger: silent });
      const crm = createMysqlParticipant('crm', { driver: 'mysql', uri: mysqlUrl }, { logger: silent });
      const [be, bc] = [await erp.begin(branchXid(gtrid, 0)), await crm.begin(branchXid(gtrid, 1))];
      await be.query(`update ${T} set balance = balance - 10 where id = 1`);
      await bc.query(`update ${T} set balance = balance + 10 where id = 1`);
      const pe = await be.prepare();
      await bc.prepare();
      be.release(true);
      bc.release(true);
      await erp.close();
      await crm.close();
      if (withRecord) {
        const log: DecisionLog = await openLog({ type: 'file', dir });
        await log.append(
          {
            type: 'commit',
            gtrid,
            branches: [
              { participant: 'erp', bqual: 'b0', ...(pe.localTxId ? { localTxId: pe.localTxId } : {}) },
              { participant: 'crm', bqual: 'b1' },
            ],
            coordinatorId: ID,
            host: hostname(),
            pid: 1,
            startedAt: Date.now(),
            decidedAt: Date.now(),
          },
          true,
        );
        await log.close();
      }
      return gtrid;
    }

    it('prepared with no commit record: rolled back everywhere (presumed abort)', async () => {
      await leavePrepared(false);
      expect(await preparedCount()).toBe(2);
      const coord = await coordinator({ recovery: { onStart: false, intervalMs: 0 } });
      const report = await coord.recover();
      expect(report).toMatchObject({ rolledBack: 2, committed: 0 });
      expect(await balances()).toEqual([1000, 1000]);
      expect(await preparedCount()).toBe(0);
      await coord.close();
    });

    it('prepared with a commit record: committed everywhere, record ended', async () => {
      await leavePrepared(true);
      const coord = await coordinator({ recovery: { onStart: false, intervalMs: 0 } });
      expect((await coord.inDoubt()).map((b) => b.decision)).toEqual(['commit', 'commit']);
      const report = await coord.recover();
      expect(report).toMatchObject({ committed: 2, rolledBack: 0, ended: 1, heuristic: [] });
      expect(await balances()).toEqual([990, 1010]);
      expect(await preparedCount()).toBe(0);
      await coord.close();
    });

    it('one branch committed before the crash, the other prepared: the other is committed', async () => {
      const gtrid = await leavePrepared(true);
      await pgPool.query(`COMMIT PREPARED '${toPgGid(branchXid(gtrid, 0))}'`);
      const coord = await coordinator(); // recovers on start
      expect(await balances()).toEqual([990, 1010]);
      expect(await preparedCount()).toBe(0);
      await coord.close();
    });

    it('a branch rolled back by hand against a commit decision is reported as heuristic', async () => {
      const gtrid = await leavePrepared(true);
      await pgPool.query(`ROLLBACK PREPARED '${toPgGid(branchXid(gtrid, 0))}'`);
      const coord = await coordinator({ recovery: { onStart: false, intervalMs: 0 } });
      const report = await coord.recover();
      expect(report.heuristic).toEqual([{ gtrid, participant: 'erp', bqual: 'b0', expected: 'commit', actual: 'rolled-back' }]);
      expect(await balances()).toEqual([1000, 1010]);
      await coord.close();
    });

    it('leaves another coordinator\'s branches alone', async () => {
      const other = newGtrid('someone-else');
      const c = await my.getConnection();
      const xid = toMysqlXid(branchXid(other, 0));
      await c.query(`XA START ${xid}`);
      await c.query(`insert into ${T} values (2, 1)`);
      await c.query(`XA END ${xid}`);
      await c.query(`XA PREPARE ${xid}`);
      c.destroy();
      const coord = await coordinator();
      const report = await coord.recover();
      expect(report.remaining.some((b) => b.gtrid === other && b.decision === 'unknown')).toBe(true);
      await coord.close();
      const [still] = await my.query('XA RECOVER');
      expect((still as { data: Buffer }[]).some((r) => r.data.toString('latin1').startsWith(other))).toBe(true);
      await my.query(`XA ROLLBACK ${xid}`);
    });
  });

  it('starts when a participant is unreachable (it may come back; recovery retries it)', async () => {
    const err = await createCoordinator({
      id: ID,
      log: { type: 'memory' },
      participants: { erp: { driver: 'postgres', connectionString: 'postgres://postgres@127.0.0.1:1/test' } },
      logger: silent,
      recovery: { onStart: false, intervalMs: 0 },
    }).then(
      async (c) => {
        await c.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeUndefined();
  });
});
