import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { branchXid, newGtrid, toPgGid, type Xid } from '../../../coordinator/xid.js';
import type { Branch, Participant } from '../../../participants/participant.js';
import { createPostgresParticipant } from '../../../participants/postgres/index.js';
import { pgUrl, requireDbOrSkip, rollbackLeftovers } from '../db-env.js';

const COORD = 'itpg';
const TABLE = 'txc_it_pg_participant';
const WRITER_FN = 'txc_it_pg_participant_write';
const logger = pino({ level: 'silent' });

const available = await requireDbOrSkip('postgres');

describe.skipIf(!available)('PostgreSQL participant against a real server', () => {
  let admin: pg.Pool;
  let participant: Participant;
  const branches: Branch[] = [];
  let nextId = 1;

  const newXid = (index = 0): Xid => branchXid(newGtrid(COORD), index);
  const begin = async (xid: Xid = newXid()): Promise<Branch> => {
    const b = await participant.begin(xid);
    branches.push(b);
    return b;
  };
  const rowExists = async (id: number): Promise<boolean> =>
    (await admin.query(`select 1 from ${TABLE} where id = $1`, [id])).rowCount === 1;
  const isPrepared = async (xid: Xid): Promise<boolean> =>
    (await admin.query('select 1 from pg_prepared_xacts where gid = $1', [toPgGid(xid)])).rowCount === 1;
  const caught = async (p: Promise<unknown>): Promise<TxcError> => {
    try {
      await p;
    } catch (err) {
      if (TxcError.is(err)) return err;
      throw err;
    }
    throw new Error('expected a TxcError');
  };

  beforeAll(async () => {
    await rollbackLeftovers(COORD); // an interrupted earlier run must not block the setup below
    admin = new pg.Pool({ connectionString: pgUrl, max: 3 });
    await admin.query(`drop table if exists ${TABLE}`);
    await admin.query(`create table ${TABLE} (id int primary key, v text not null)`);
    await admin.query(
      `create or replace function ${WRITER_FN}(n int) returns int language sql as $$ insert into ${TABLE} values (n, 'fn') returning id $$`,
    );
    participant = createPostgresParticipant('pg', { driver: 'postgres', connectionString: pgUrl, pool: { max: 4, acquireTimeoutMs: 5_000 } }, { logger });
  });

  afterEach(async () => {
    for (const b of branches.splice(0)) b.release(true);
    // Roll back anything this file left prepared (only this coordinator id's gids).
    const left = await admin.query<{ gid: string }>('select gid from pg_prepared_xacts where gid like $1', [`txc1.${COORD}.%`]);
    for (const { gid } of left.rows) await admin.query(`ROLLBACK PREPARED '${gid.replace(/'/g, "''")}'`);
  });

  afterAll(async () => {
    await participant?.close();
    await admin?.query(`drop function if exists ${WRITER_FN}(int)`);
    await admin?.query(`drop table if exists ${TABLE}`);
    await admin?.end();
  });

  it('preflight passes', async () => {
    await participant.preflight();
  });

  it('begin, query, prepare, commitPrepared: the row appears for other sessions only after phase two', async () => {
    const id = nextId++;
    const b = await begin();
    expect(await b.query(`insert into ${TABLE} values ($1, $2)`, [id, 'a'])).toEqual({ rows: [], rowCount: 1 });
    expect(await b.hasWritten()).toBe(true);
    const { localTxId } = await b.prepare();
    expect(localTxId).toMatch(/^[0-9]+$/);
    expect(await isPrepared(b.xid)).toBe(true);
    expect(await rowExists(id)).toBe(false);
    expect(await participant.localStatus?.(localTxId as string)).toBe('in-progress');
    expect(await b.commitPrepared()).toBe('done');
    expect(await rowExists(id)).toBe(true);
    expect(await participant.localStatus?.(localTxId as string)).toBe('committed');
  });

  it('rollback before prepare leaves nothing', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values ($1, 'b')`, [id]);
    await b.rollback();
    await b.rollback(); // finished: no throw
    expect(await rowExists(id)).toBe(false);
  });

  it('rollback after prepare removes the prepared transaction; localStatus says aborted', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values ($1, 'c')`, [id]);
    const { localTxId } = await b.prepare();
    await b.rollback();
    expect(await isPrepared(b.xid)).toBe(false);
    expect(await rowExists(id)).toBe(false);
    expect(await participant.localStatus?.(localTxId as string)).toBe('aborted');
  });

  it('a failed statement caught by the caller makes prepare fail (TXC_PREPARE_FAILED) and prepares nothing', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values ($1, 'd')`, [id]);
    const failed = await caught(b.query('select 1/0'));
    expect(failed.code).toBe('TXC_QUERY_FAILED');
    expect(failed.details.sqlState).toBe('22012');
    const err = await caught(b.prepare());
    expect(err.code).toBe('TXC_PREPARE_FAILED');
    expect(await isPrepared(b.xid)).toBe(false);
    const mine = await admin.query('select 1 from pg_prepared_xacts where gid like $1', [`txc1.${COORD}.%`]);
    expect(mine.rowCount).toBe(0);
    expect(await rowExists(id)).toBe(false);
    // The pool is healthy afterwards.
    const next = await begin();
    await next.query('select 1');
    await next.commitOnePhase();
  });

  it('a COMMIT sent through query() is caught at prepare instead of preparing an empty transaction', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values ($1, 'e')`, [id]);
    await b.query('COMMIT');
    await expect(b.prepare()).rejects.toMatchObject({ code: 'TXC_PREPARE_FAILED' });
    expect(await isPrepared(b.xid)).toBe(false);
    await admin.query(`delete from ${TABLE} where id = $1`, [id]);
  });

  it('a transaction that used a temporary table is refused at prepare (0A000), and the connection is clean', async () => {
    const b = await begin();
    await b.query('create temp table txc_it_tmp (x int) on commit drop');
    await expect(b.prepare()).rejects.toMatchObject({ code: 'TXC_PREPARE_FAILED', details: { sqlState: '0A000' } });
    expect(await isPrepared(b.xid)).toBe(false);
  });

  it('listInDoubt sees a prepared branch; commitPrepared from the participant resolves it, then answers unknown', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values ($1, 'f')`, [id]);
    await b.prepare();
    const inDoubt = await participant.listInDoubt();
    expect(inDoubt).toContainEqual(b.xid);
    expect(await participant.commitPrepared(b.xid)).toBe('done');
    expect(await rowExists(id)).toBe(true);
    expect(await participant.commitPrepared(b.xid)).toBe('unknown');
    expect(await participant.listInDoubt()).not.toContainEqual(b.xid);
  });

  it('rollbackPrepared from the participant resolves a prepared branch', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values ($1, 'g')`, [id]);
    await b.prepare();
    expect(await participant.rollbackPrepared(b.xid)).toBe('done');
    expect(await rowExists(id)).toBe(false);
    expect(await participant.rollbackPrepared(b.xid)).toBe('unknown');
  });

  it('listInDoubt ignores prepared transactions that are not txcoord gids', async () => {
    const client = await admin.connect();
    try {
      await client.query('BEGIN');
      await client.query(`insert into ${TABLE} values ($1, 'foreign')`, [nextId++]);
      await client.query("PREPARE TRANSACTION 'not-txcoord-itpg'");
      const xids = await participant.listInDoubt();
      expect(xids.every((x) => x.gtrid.startsWith('txc1.'))).toBe(true);
    } finally {
      await client.query("ROLLBACK PREPARED 'not-txcoord-itpg'").catch(() => undefined);
      client.release();
    }
  });

  it('an unknown xid resolves as unknown', async () => {
    const xid = newXid();
    expect(await participant.commitPrepared(xid)).toBe('unknown');
    expect(await participant.rollbackPrepared(xid)).toBe('unknown');
  });

  describe('read-only detection', () => {
    it('plain reads and an UPDATE of no rows are read-only', async () => {
      const b = await begin();
      await b.query(`select * from ${TABLE}`);
      await b.query(`update ${TABLE} set v = v where id = -1`);
      expect(await b.hasWritten()).toBe(false);
      await b.commitOnePhase();
    });

    it('a SELECT calling a writing function is a write', async () => {
      const id = nextId++;
      const b = await begin();
      expect((await b.query(`select ${WRITER_FN}($1) as id`, [id])).rows).toEqual([{ id }]);
      expect(await b.hasWritten()).toBe(true);
      await b.rollback();
    });

    it('DDL is a write', async () => {
      const b = await begin();
      await b.query('create table txc_it_pg_ddl (x int)');
      expect(await b.hasWritten()).toBe(true);
      await b.rollback();
    });
  });

  describe('one-phase commit', () => {
    it('commits a single writer', async () => {
      const id = nextId++;
      const b = await begin();
      await b.query(`insert into ${TABLE} values ($1, 'h')`, [id]);
      await b.commitOnePhase();
      expect(await rowExists(id)).toBe(true);
    });

    it('after a failed statement, COMMIT answers ROLLBACK: TXC_COMMIT_FAILED and nothing committed', async () => {
      const id = nextId++;
      const b = await begin();
      await b.query(`insert into ${TABLE} values ($1, 'i')`, [id]);
      await caught(b.query(`insert into ${TABLE} values ($1, 'dup')`, [id]));
      await expect(b.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_COMMIT_FAILED', details: { sqlState: '23505' } });
      expect(await rowExists(id)).toBe(false);
    });
  });

  it('a branch whose backend was terminated fails prepare (retryable) and prepares nothing', async () => {
    const b = await begin();
    const pid = (await b.query('select pg_backend_pid() as pid')).rows[0]?.pid;
    await b.query(`insert into ${TABLE} values ($1, 'j')`, [nextId++]);
    await admin.query('select pg_terminate_backend($1)', [pid]);
    await new Promise((r) => setTimeout(r, 200));
    const err = await caught(b.prepare());
    expect(err.code).toBe('TXC_PREPARE_FAILED');
    expect(err.retryable).toBe(true);
    expect(await isPrepared(b.xid)).toBe(false);
  });

  it('queues concurrent statements on one branch', async () => {
    const id = nextId++;
    const b = await begin();
    const results = await Promise.all([
      b.query('select pg_sleep(0.05)'),
      b.query(`insert into ${TABLE} values ($1, 'k')`, [id]),
      b.query(`select count(*)::int as n from ${TABLE} where id = $1`, [id]),
    ]);
    expect(results[2]?.rows).toEqual([{ n: 1 }]);
    await b.rollback();
  });
});
