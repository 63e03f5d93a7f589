import mysql from 'mysql2/promise';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { branchXid, fromMysqlRecoverRow, newGtrid, toMysqlXid, xidKey, type Xid } from '../../../coordinator/xid.js';
import { createMysqlParticipant } from '../../../participants/mysql/index.js';
import type { Branch, Participant } from '../../../participants/participant.js';
import { mysqlUrl, requireDbOrSkip, rollbackLeftovers } from '../db-env.js';

const COORD = 'itmy';
const TABLE = 'txc_it_my_participant';
const WRITER_FN = 'txc_it_my_participant_write';
const logger = pino({ level: 'silent' });

const available = await requireDbOrSkip('mysql');

describe.skipIf(!available)('MySQL/MariaDB participant against a real server', () => {
  let admin: mysql.Pool;
  let participant: Participant;
  const branches: Branch[] = [];
  let nextId = 1;

  const newXid = (index = 0): Xid => branchXid(newGtrid(COORD), index);
  const begin = async (xid: Xid = newXid()): Promise<Branch> => {
    const b = await participant.begin(xid);
    branches.push(b);
    return b;
  };
  const rowExists = async (id: number): Promise<boolean> => {
    const [rows] = await admin.query(`select 1 from ${TABLE} where id = ?`, [id]);
    return (rows as unknown[]).length === 1;
  };
  const recovered = async (): Promise<string[]> => {
    const [rows] = await admin.query('XA RECOVER');
    return (rows as Parameters<typeof fromMysqlRecoverRow>[0][]).flatMap((r) => {
      const xid = fromMysqlRecoverRow(r);
      return xid ? [xidKey(xid)] : [];
    });
  };
  const caught = async (p: Promise<unknown>): Promise<TxcError> => {
    try {
      await p;
    } catch (err) {
      if (TxcError.is(err)) return err;
      throw err;
    }
    throw new Error('expected a TxcError');
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    await rollbackLeftovers(COORD); // an interrupted earlier run must not block the setup below
    admin = mysql.createPool({ uri: mysqlUrl, connectionLimit: 3 });
    await admin.query(`drop table if exists ${TABLE}`);
    await admin.query(`create table ${TABLE} (id int primary key, v varchar(20) not null) engine=InnoDB`);
    await admin.query(`drop function if exists ${WRITER_FN}`);
    await admin.query(`create function ${WRITER_FN}(n int) returns int modifies sql data begin insert into ${TABLE} values (n, 'fn'); return n; end`);
    participant = createMysqlParticipant('my', { driver: 'mysql', uri: mysqlUrl, pool: { max: 4, acquireTimeoutMs: 5_000 } }, { logger });
  });

  afterEach(async () => {
    // Closing the preparing connections detaches their branches, so the admin session can end them.
    for (const b of branches.splice(0)) b.release(true);
    await sleep(20);
    const [rows] = await admin.query('XA RECOVER');
    for (const row of rows as Parameters<typeof fromMysqlRecoverRow>[0][]) {
      const xid = fromMysqlRecoverRow(row);
      if (xid?.gtrid.startsWith(`txc1.${COORD}.`)) await admin.query(`XA ROLLBACK ${toMysqlXid(xid)}`);
    }
  });

  afterAll(async () => {
    await participant?.close();
    await admin?.query(`drop function if exists ${WRITER_FN}`);
    await admin?.query(`drop table if exists ${TABLE}`);
    await admin?.end();
  });

  it('preflight passes', async () => {
    await participant.preflight();
  });

  it('begin, query, prepare, commitPrepared (on the preparing connection): the row appears after phase two', async () => {
    const id = nextId++;
    const b = await begin();
    expect(await b.query(`insert into ${TABLE} values (?, ?)`, [id, 'a'])).toEqual({ rows: [], rowCount: 1 });
    expect(await b.hasWritten()).toBe(true);
    expect(await b.prepare()).toEqual({});
    expect(await recovered()).toContain(xidKey(b.xid));
    expect(await rowExists(id)).toBe(false);
    expect(await b.commitPrepared()).toBe('done');
    expect(await rowExists(id)).toBe(true);
    expect(await recovered()).not.toContain(xidKey(b.xid));
  });

  it('rollback before prepare leaves nothing', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values (?, 'b')`, [id]);
    await b.rollback();
    await b.rollback();
    expect(await rowExists(id)).toBe(false);
  });

  it('rollback after prepare removes the branch', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values (?, 'c')`, [id]);
    await b.prepare();
    await b.rollback();
    expect(await recovered()).not.toContain(xidKey(b.xid));
    expect(await rowExists(id)).toBe(false);
  });

  it('while the preparing session lives, another session gets XAER_NOTA (unknown); after release it commits', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values (?, 'd')`, [id]);
    await b.prepare();
    expect(await participant.listInDoubt()).toContainEqual(b.xid);
    // Measured on MariaDB 10.11: the branch is bound to its session until that session ends.
    // (MySQL 8 with xa_detach_on_prepare=ON would commit it here instead.)
    expect(await participant.commitPrepared(b.xid)).toBe('unknown');
    b.release(true);
    await sleep(20);
    expect(await participant.commitPrepared(b.xid)).toBe('done');
    expect(await rowExists(id)).toBe(true);
    expect(await participant.commitPrepared(b.xid)).toBe('unknown');
    expect(await participant.listInDoubt()).not.toContainEqual(b.xid);
  });

  it('rollbackPrepared from a fresh connection after the preparing one is gone', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values (?, 'e')`, [id]);
    await b.prepare();
    b.release(true);
    await sleep(20);
    expect(await participant.rollbackPrepared(b.xid)).toBe('done');
    expect(await rowExists(id)).toBe(false);
  });

  it('a released prepared branch is committed by branch.commitPrepared through a fresh connection', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values (?, 'f')`, [id]);
    await b.prepare();
    b.release(true);
    await sleep(20);
    expect(await b.commitPrepared()).toBe('done');
    expect(await rowExists(id)).toBe(true);
  });

  it('an unknown xid resolves as unknown', async () => {
    const xid = newXid();
    expect(await participant.commitPrepared(xid)).toBe('unknown');
    expect(await participant.rollbackPrepared(xid)).toBe('unknown');
  });

  describe('read-only detection', () => {
    it('SELECTs (even FOR UPDATE) are read-only', async () => {
      const b = await begin();
      await b.query(`select * from ${TABLE}`);
      await b.query(`select * from ${TABLE} where id = 1 for update`);
      await b.query(`select v, count(*) from ${TABLE} group by v`);
      expect(await b.hasWritten()).toBe(false);
      await b.commitOnePhase();
    });

    it('a SELECT calling a writing function is a write (session write counters)', async () => {
      const id = nextId++;
      const b = await begin();
      expect((await b.query(`select ${WRITER_FN}(?) as id`, [id])).rows).toEqual([{ id }]);
      expect(await b.hasWritten()).toBe(true);
      await b.rollback();
      expect(await rowExists(id)).toBe(false);
    });

    it('any OK-packet statement counts as written (conservative, no round trip)', async () => {
      const b = await begin();
      expect(await b.query(`update ${TABLE} set v = v where id = -1`)).toEqual({ rows: [], rowCount: 0 });
      expect(await b.hasWritten()).toBe(true);
      await b.rollback();
    });

    it('measured: information_schema.innodb_trx misses a fresh write (100 ms cache), which is why it is not used', async () => {
      const conn = await admin.getConnection();
      const xid = newXid();
      try {
        await sleep(150);
        await conn.query(`XA START ${toMysqlXid(xid)}`);
        const trx = 'select trx_rows_modified from information_schema.innodb_trx where trx_mysql_thread_id = connection_id()';
        const t0 = Date.now();
        await conn.query(trx);
        await conn.query(`insert into ${TABLE} values (?, 'trx')`, [nextId++]);
        const [stale] = await conn.query(trx);
        if (Date.now() - t0 < 60) expect(stale).toEqual([]);
        await sleep(150);
        const [fresh] = await conn.query(trx);
        expect(fresh).toEqual([{ trx_rows_modified: 1 }]);
      } finally {
        await conn.query(`XA END ${toMysqlXid(xid)}`).catch(() => undefined);
        await conn.query(`XA ROLLBACK ${toMysqlXid(xid)}`).catch(() => undefined);
        conn.release();
      }
    });
  });

  describe('one-phase commit', () => {
    it('commits a single writer', async () => {
      const id = nextId++;
      const b = await begin();
      await b.query(`insert into ${TABLE} values (?, 'g')`, [id]);
      await b.commitOnePhase();
      expect(await rowExists(id)).toBe(true);
    });

    it('finishes a read-only branch', async () => {
      const b = await begin();
      await b.query('select 1');
      await b.commitOnePhase();
    });
  });

  it('a deadlock victim fails prepare (retryable), prepares nothing, and its connection is reusable', async () => {
    const [idA, idB] = [nextId++, nextId++];
    await admin.query(`insert into ${TABLE} values (?, 'x'), (?, 'y')`, [idA, idB]);
    const a = await begin();
    const b = await begin(newXid());
    await a.query(`update ${TABLE} set v = 'a' where id = ?`, [idA]);
    await b.query(`update ${TABLE} set v = 'b' where id = ?`, [idB]);
    const aWaits = a.query(`update ${TABLE} set v = 'a' where id = ?`, [idB]).then(
      () => null,
      (e: unknown) => e,
    );
    await sleep(200);
    const bErr = await b.query(`update ${TABLE} set v = 'b' where id = ?`, [idA]).then(
      () => null,
      (e: unknown) => e,
    );
    const aErr = await aWaits;
    const victim = bErr ? b : a;
    const survivor = bErr ? a : b;
    const victimErr = (bErr ?? aErr) as TxcError;
    expect(victimErr.code).toBe('TXC_QUERY_FAILED');
    expect(victimErr.details.errno).toBe(1213);
    expect(victimErr.retryable).toBe(true);
    expect(await victim.hasWritten()).toBe(true);
    await expect(victim.prepare()).rejects.toMatchObject({ code: 'TXC_PREPARE_FAILED', retryable: true });
    expect(await recovered()).not.toContain(xidKey(victim.xid));
    await survivor.rollback();
    // Pooled connections came back clean: a new branch can start and finish.
    const c = await begin();
    await c.query('select 1');
    await c.commitOnePhase();
  });

  it('DDL inside the XA transaction is refused (XAER_RMFAIL) as TXC_QUERY_FAILED', async () => {
    const b = await begin();
    await expect(b.query('create table txc_it_my_ddl (x int)')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED', details: { errno: 1399 } });
    await b.rollback();
  });

  it('a killed session fails prepare (retryable) and leaves nothing prepared', async () => {
    const b = await begin();
    const id = (await b.query('select connection_id() as id')).rows[0]?.id;
    await b.query(`insert into ${TABLE} values (?, 'k')`, [nextId++]);
    await admin.query(`kill ${Number(id)}`);
    await sleep(100);
    await expect(b.prepare()).rejects.toMatchObject({ code: 'TXC_PREPARE_FAILED', retryable: true });
    expect(await recovered()).not.toContain(xidKey(b.xid));
  });

  it('queues concurrent statements on one branch', async () => {
    const id = nextId++;
    const b = await begin();
    const results = await Promise.all([
      b.query('select sleep(0.05)'),
      b.query(`insert into ${TABLE} values (?, 'q')`, [id]),
      b.query(`select count(*) as n from ${TABLE} where id = ?`, [id]),
    ]);
    expect(results[2]?.rows).toEqual([{ n: 1 }]);
    await b.rollback();
  });
});
