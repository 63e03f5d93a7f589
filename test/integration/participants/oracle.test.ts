import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { branchXid, coordinatorOf, newGtrid, type Xid } from '../../../coordinator/xid.js';
import { createOracleParticipant } from '../../../participants/oracle/index.js';
import type { Branch, Participant } from '../../../participants/participant.js';

// Runs only against a server named by TXCOORD_ORACLE_URL (see docs/oracle.md), e.g. the
// `oracle` service of docker-compose.yml: oracle://system:txcoord@127.0.0.1:1522/FREEPDB1.
const url = process.env.TXCOORD_ORACLE_URL;
if (!url) {
  console.warn('[txcoord] skipping Oracle integration tests: set TXCOORD_ORACLE_URL=oracle://user:password@host:port/service to run them (docs/oracle.md)');
}

const COORD = 'itora';
const TABLE = 'txc_it_ora';
const logger = pino({ level: 'silent' });

(url ? describe : describe.skip)('Oracle participant against a real server', () => {
  let participant: Participant;
  const branches: Branch[] = [];
  let nextId = 1;

  const newXid = (index = 0, markerIn?: string): Xid => branchXid(newGtrid(COORD), index, markerIn);
  const begin = async (xid: Xid = newXid()): Promise<Branch> => {
    const b = await participant.begin(xid);
    branches.push(b);
    return b;
  };
  /** Runs `sql` in a local transaction of its own (another session), then commits. */
  const local = async (sql: string, params: unknown[] = []) => {
    const b = await participant.beginLocal?.(newXid(9));
    if (!b) throw new Error('beginLocal missing');
    try {
      const out = await b.query(sql, params);
      await b.commitOnePhase();
      return out;
    } finally {
      b.release();
    }
  };
  const rowExists = async (id: number): Promise<boolean> =>
    Number((await local(`select count(*) as n from ${TABLE} where id = :1`, [id])).rows[0]?.N) === 1;
  const isPrepared = async (xid: Xid): Promise<boolean> => (await participant.listInDoubt()).some((x) => x.gtrid === xid.gtrid && x.bqual === xid.bqual);
  const rollbackOurs = async () => {
    for (const xid of await participant.listInDoubt()) if (coordinatorOf(xid.gtrid) === COORD) await participant.rollbackPrepared(xid);
  };

  beforeAll(async () => {
    participant = createOracleParticipant(
      'ora',
      { driver: 'oracle', connectionString: url as string, pool: { max: 4, acquireTimeoutMs: 15_000, queryTimeoutMs: 30_000 } },
      { logger },
    );
    await rollbackOurs(); // an interrupted earlier run must not block the setup below
    await local(`begin execute immediate 'drop table ${TABLE} purge'; exception when others then if sqlcode != -942 then raise; end if; end;`);
    await local(`create table ${TABLE} (id number primary key, v varchar2(20) not null)`);
  });

  afterEach(async () => {
    for (const b of branches.splice(0)) b.release(true);
    await rollbackOurs();
  });

  afterAll(async () => {
    if (!participant) return;
    await local(`drop table ${TABLE} purge`).catch(() => undefined);
    await participant.close();
  });

  it('preflight passes (the user has FORCE ANY TRANSACTION and SELECT on DBA_PENDING_TRANSACTIONS)', async () => {
    await participant.preflight();
  });

  it('commit across prepare: the row appears only after phase two, committed from a fresh connection', async () => {
    const id = nextId++;
    const b = await begin();
    expect(await b.query(`insert into ${TABLE} (id, v) values (:1, :2)`, [id, 'a'])).toEqual({ rows: [], rowCount: 1 });
    expect(await b.hasWritten()).toBe(true);
    expect(await b.prepare()).toEqual({});
    expect(await isPrepared(b.xid)).toBe(true);
    expect(await rowExists(id)).toBe(false);
    b.release(); // the preparing session lets go: the prepared branch must survive it
    expect(await isPrepared(b.xid)).toBe(true);
    expect(await participant.commitPrepared(b.xid)).toBe('done');
    expect(await rowExists(id)).toBe(true);
    expect(await participant.commitPrepared(b.xid)).toBe('unknown');
  });

  it('commit on the preparing connection', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} (id, v) values (:1, :2)`, [id, 'b']);
    await b.prepare();
    expect(await b.commitPrepared()).toBe('done');
    expect(await rowExists(id)).toBe(true);
    expect(await isPrepared(b.xid)).toBe(false);
  });

  it('read-only prepare: tpcPrepare answers false, nothing is listed, a commit by xid finds nothing', async () => {
    const b = await begin();
    await b.query(`select count(*) as n from ${TABLE}`);
    expect(await b.hasWritten()).toBe(false);
    expect(await b.prepare()).toEqual({ readOnly: true });
    expect(await isPrepared(b.xid)).toBe(false);
    expect(await b.commitPrepared()).toBe('done');
    expect(await participant.commitPrepared(b.xid)).toBe('unknown');
  });

  it('recovery listing: prepared branches come back as txcoord xids and can be rolled back by xid', async () => {
    const gtrid = newGtrid(COORD);
    const ids = [nextId++, nextId++];
    const xids = [branchXid(gtrid, 0), branchXid(gtrid, 1, 'ora')];
    for (const [i, xid] of xids.entries()) {
      const b = await begin(xid);
      await b.query(`insert into ${TABLE} (id, v) values (:1, 'r')`, [ids[i]]);
      await b.prepare();
      b.release();
    }
    const listed = await participant.listInDoubt();
    for (const xid of xids) expect(listed).toContainEqual(xid);
    for (const xid of xids) expect(await participant.rollbackPrepared(xid)).toBe('done');
    for (const xid of xids) expect(await participant.rollbackPrepared(xid)).toBe('unknown');
    for (const id of ids) expect(await rowExists(id)).toBe(false);
  });

  it('rollback before and after prepare leaves nothing', async () => {
    const before = nextId++;
    const a = await begin();
    await a.query(`insert into ${TABLE} (id, v) values (:1, 'x')`, [before]);
    await a.rollback();
    await a.rollback();
    const after = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} (id, v) values (:1, 'y')`, [after]);
    await b.prepare();
    await b.rollback();
    expect(await isPrepared(b.xid)).toBe(false);
    expect(await rowExists(before)).toBe(false);
    expect(await rowExists(after)).toBe(false);
  });

  it('one-phase commit (tpcEnd + tpcCommit(xid, true)) and a read-only one-phase commit', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} (id, v) values (:1, 'o')`, [id]);
    await b.commitOnePhase();
    expect(await rowExists(id)).toBe(true);
    const r = await begin();
    await r.query('select 1 as one from dual');
    await r.commitOnePhase();
  });

  it('DDL inside a TPC branch is refused (ORA-02089) and the branch goes on', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} (id, v) values (:1, 'd')`, [id]);
    await expect(b.query('create table txc_it_ora_never (a number)')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED', details: { errorNum: 2089 } });
    await b.commitOnePhase();
    expect(await rowExists(id)).toBe(true);
  });

  it('bookkeeping: tables created idempotently; markers and barriers insert once and report the existing row', async () => {
    await participant.ensureBookkeeping?.();
    await participant.ensureBookkeeping?.();
    const gtrid = newGtrid(COORD);
    const a = await participant.beginLocal?.(newXid());
    expect(await a?.insertMarker?.(gtrid, 'commit')).toBe('inserted');
    await a?.commitOnePhase();
    const b = await participant.beginLocal?.(newXid());
    expect(await b?.insertMarker?.(gtrid, 'abort')).toBe('commit');
    const row = { gid: gtrid, step: 's1', op: 'action', origin: 'compensate' } as const;
    expect(await b?.insertBarrier?.(row)).toBe('inserted');
    expect(await b?.insertBarrier?.({ ...row, origin: 'action' })).toBe('compensate');
    await b?.commitOnePhase();
    const listed = await participant.listMarkers?.(`txc1.${COORD}.`, 100);
    expect(listed?.map((m) => m.gtrid)).toContain(gtrid);
    const mine = listed?.find((m) => m.gtrid === gtrid);
    expect(Math.abs((mine?.createdAt ?? 0) - Date.now())).toBeLessThan(10 * 60_000);
    await participant.deleteMarkers?.([gtrid]);
    expect((await participant.listMarkers?.(`txc1.${COORD}.`, 100))?.map((m) => m.gtrid)).not.toContain(gtrid);
    await local('delete from txcoord_barrier where gid = :1', [gtrid]);
  });
});
