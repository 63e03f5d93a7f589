import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { barrierRangeBefore, branchXid, newGtrid, TXC_FORMAT_ID, type Xid } from '../../../coordinator/xid.js';
import { classifyOracleError } from '../../../participants/oracle/errors.js';
import { createOracleParticipant, oraclePoolAttributes } from '../../../participants/oracle/index.js';
import { OracleParticipant } from '../../../participants/oracle/participant.js';
import { resolvePoolSettings } from '../../../participants/pool-settings.js';
import {
  connectionLost,
  FakeOracleConnection,
  FakeOraclePool,
  njsError,
  oraError,
} from '../../fakes/fake-oracledb.js';

const logger = pino({ level: 'silent' });
const UUID = '0190d5a8-7b3c-7def-8123-456789abcdef';
const GTRID = newGtrid('unit', () => UUID);
const XID: Xid = branchXid(GTRID, 0);
const XID2: Xid = branchXid(GTRID, 1, 'ora');
const OXID = { formatId: TXC_FORMAT_ID, globalTransactionId: GTRID, branchQualifier: 'b0' };
const INSERT = 'insert into t (id, v) values (:1, :2)';

function setup(options: { acquireTimeoutMs?: number; queryTimeoutMs?: number } = {}) {
  const pool = new FakeOraclePool();
  let opened = 0;
  const participant = new OracleParticipant(
    'ora',
    async () => {
      opened++;
      return pool;
    },
    { acquireTimeoutMs: options.acquireTimeoutMs ?? 1_000, queryTimeoutMs: options.queryTimeoutMs ?? 30_000, logger },
  );
  const conn = (i: number) => pool.conns[i] as FakeOracleConnection;
  return { pool, server: pool.server, participant, conn, opened: () => opened };
}

async function rejection(p: Promise<unknown>): Promise<TxcError> {
  try {
    await p;
  } catch (err) {
    if (TxcError.is(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** The calls sent to the server, connection closes left out. */
const sent = (server: { calls: string[] }) => server.calls.filter((c) => !/^c\d+\.close/.test(c));

/** Lets fire-and-forget work (connection closes, background rollbacks) run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('Oracle participant (fake driver)', () => {
  it('begins with tpcBegin(TPC_BEGIN_NEW) on a pooled connection, timeout from queryTimeoutMs, callTimeout set', async () => {
    const { server, participant, conn } = setup({ queryTimeoutMs: 2_500 });
    await participant.begin(XID);
    expect(server.calls).toEqual([`c1.tpcBegin b0 flag=1 timeout=3`]);
    expect(conn(0).callTimeout).toBe(2_500);
    expect(server.branch(OXID)?.xid).toEqual(OXID);
  });

  it('rejects a non-txcoord xid before taking a connection', async () => {
    const { pool, participant } = setup();
    const err = await rejection(participant.begin({ formatId: 1, gtrid: 'x', bqual: 'y' }));
    expect(err.code).toBe('TXC_ID_INVALID');
    expect(pool.conns).toHaveLength(0);
  });

  it('queries with positional binds, OUT_FORMAT_OBJECT and autoCommit false; rows for queries, rowsAffected for DML', async () => {
    const { server, participant, conn } = setup();
    server.rows.set(7, 'x');
    const b = await participant.begin(XID);
    expect(await b.query(INSERT, [1, 'a'])).toEqual({ rows: [], rowCount: 1 });
    expect(await b.query('select id, v from t')).toEqual({ rows: [{ ID: 7, V: 'x' }], rowCount: 1 });
    expect(conn(0).executeOptions).toEqual([
      { outFormat: 4002, autoCommit: false },
      { outFormat: 4002, autoCommit: false },
    ]);
  });

  it('hasWritten: plain queries no; DML (even of zero rows), PL/SQL and SELECT … FOR UPDATE yes', async () => {
    const { participant } = setup();
    const cases: Array<[string, unknown[], boolean]> = [
      ['select id, v from t', [], false],
      ['select 1 from dual', [], false],
      ['update t set v = :1 where id = :2', ['z', 99], true], // 0 rows: statement triggers may still write
      ['begin null; end;', [], true],
      ['select id from t where id = 1 FOR\n UPDATE nowait', [], true],
    ];
    let i = 0;
    for (const [sql, params, written] of cases) {
      const b = await participant.begin(branchXid(GTRID, 10 + i++));
      await b.query(sql, params);
      expect(await b.hasWritten(), sql).toBe(written);
      await b.rollback();
    }
  });

  it('DDL or COMMIT inside a TPC branch is refused by the server (ORA-02089) as TXC_QUERY_FAILED', async () => {
    const { participant } = setup();
    const b = await participant.begin(XID);
    const err = await rejection(b.query('create table x (a int)'));
    expect(err.code).toBe('TXC_QUERY_FAILED');
    expect(err.details).toMatchObject({ participant: 'ora', errorNum: 2089, code: 'ORA-02089' });
    // The branch goes on (Oracle rolls back the statement only).
    await b.query(INSERT, [1, 'a']);
  });

  it('prepares with tpcEnd + tpcPrepare, keeps the connection, commits on it with tpcCommit(xid, false), then releases it', async () => {
    const { server, participant, conn } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    expect(await b.hasWritten()).toBe(true);
    expect(await b.prepare()).toEqual({});
    expect(sent(server).slice(-2)).toEqual(['c1.tpcEnd b0 flag=0', 'c1.tpcPrepare b0']);
    expect(conn(0).closed).toBeUndefined();
    expect(await participant.listInDoubt()).toEqual([XID]);
    expect(server.rows.has(1)).toBe(false);
    expect(await b.commitPrepared()).toBe('done');
    expect(server.calls).toContain('c1.tpcCommit b0 onePhase=false');
    expect(server.rows.get(1)).toBe('a');
    await settle();
    expect(conn(0).closed).toEqual({ drop: false });
    b.release(true);
    expect(await participant.listInDoubt()).toEqual([]);
  });

  it('a read-only prepare (tpcPrepare false) answers readOnly and is never committed or rolled back afterwards', async () => {
    const { server, participant, conn } = setup();
    const b = await participant.begin(XID);
    await b.query('select id, v from t');
    expect(await b.prepare()).toEqual({ readOnly: true });
    expect(await participant.listInDoubt()).toEqual([]);
    const before = server.calls.length;
    expect(await b.commitPrepared()).toBe('done');
    await b.rollback();
    expect(server.calls.length).toBe(before);
    await settle();
    expect(conn(0).closed).toEqual({ drop: false });
  });

  it('one-phase commit is tpcEnd + tpcCommit(xid, true) on the pinned connection', async () => {
    const { server, participant, conn } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    await b.commitOnePhase();
    expect(sent(server).slice(-2)).toEqual(['c1.tpcEnd b0 flag=0', 'c1.tpcCommit b0 onePhase=true']);
    expect(server.rows.get(1)).toBe('a');
    await settle();
    expect(conn(0).closed).toEqual({ drop: false });
    expect(server.branches.size).toBe(0);
    await expect(b.query('select 1 from dual')).rejects.toMatchObject({ code: 'TXC_TRANSACTION_CLOSED' });
  });

  it('a connection lost during the one-phase tpcCommit is TXC_OUTCOME_UNKNOWN (whether it landed or not)', async () => {
    for (const landed of [true, false]) {
      const { server, participant } = setup();
      const b = await participant.begin(XID);
      await b.query(INSERT, [1, 'a']);
      server.failNext('tpcCommit', connectionLost(), { landed });
      const err = await rejection(b.commitOnePhase());
      expect(err.code).toBe('TXC_OUTCOME_UNKNOWN');
      expect(server.rows.has(1)).toBe(landed);
      // A detached branch the commit never reached is rolled back by xid at once, not left to the server's timeout.
      await settle();
      expect(server.branches.size).toBe(0);
      expect(sent(server).at(-1)).toBe('c2.tpcRollback b0');
    }
  });

  it('a one-phase commit refused by the server (deferred constraint) is TXC_COMMIT_FAILED and rolls back', async () => {
    const { server, participant } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    server.failNext('tpcCommit', oraError(2091));
    const err = await rejection(b.commitOnePhase());
    expect(err.code).toBe('TXC_COMMIT_FAILED');
    expect(err.details).toMatchObject({ errorNum: 2091 });
    expect(sent(server).at(-1)).toBe('c1.tpcRollback b0');
    expect(server.branches.size).toBe(0);
    expect(server.rows.size).toBe(0);
  });

  it('rollback before prepare: tpcEnd + tpcRollback, nothing written; twice is harmless', async () => {
    const { server, participant, conn } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    await b.rollback();
    await b.rollback();
    expect(sent(server).slice(-2)).toEqual(['c1.tpcEnd b0 flag=0', 'c1.tpcRollback b0']);
    expect(server.branches.size).toBe(0);
    expect(server.rows.size).toBe(0);
    await settle();
    expect(conn(0).closed).toEqual({ drop: false });
  });

  it('rollback after prepare is tpcRollback(xid) on the pinned connection', async () => {
    const { server, participant } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    await b.prepare();
    await b.rollback();
    expect(sent(server).at(-1)).toBe('c1.tpcRollback b0');
    expect(server.prepared()).toEqual([]);
  });

  it('release of an active branch closes the connection, which rolls the attached branch back', async () => {
    const { server, participant, conn } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    b.release(true);
    await settle();
    expect(conn(0).closed).toEqual({ drop: true });
    expect(server.branches.size).toBe(0);
    expect(await b.hasWritten()).toBe(true);
  });

  it('a refused prepare (ORA-02091) is TXC_PREPARE_FAILED and leaves nothing prepared', async () => {
    const { server, participant } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    server.failNext('tpcPrepare', oraError(2091));
    const err = await rejection(b.prepare());
    expect(err.code).toBe('TXC_PREPARE_FAILED');
    expect(err.cause).toMatchObject({ errorNum: 2091 });
    expect(server.branches.size).toBe(0);
  });

  it('a connection lost during tpcPrepare is in doubt (not PREPARE_FAILED); rollback finishes it by xid from a fresh connection', async () => {
    for (const landed of [true, false]) {
      const { server, participant, pool } = setup();
      const b = await participant.begin(XID);
      await b.query(INSERT, [1, 'a']);
      server.failNext('tpcPrepare', connectionLost(), { landed });
      const err = await rejection(b.prepare());
      expect(err.code).toBe('TXC_PARTICIPANT_UNAVAILABLE');
      expect(err.retryable).toBe(true);
      // Prepared, or detached and unprepared: either way the branch still exists on the server.
      expect(server.branches.size).toBe(1);
      await b.rollback();
      expect(pool.conns).toHaveLength(2);
      expect(sent(server).at(-1)).toBe('c2.tpcRollback b0');
      expect(server.branches.size).toBe(0);
      await settle();
      expect(pool.conns[0]?.closed).toEqual({ drop: true });
    }
  });

  it('a connection lost during tpcEnd at prepare is in doubt too', async () => {
    const { server, participant } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    server.failNext('tpcEnd', connectionLost(), { landed: true });
    expect((await rejection(b.prepare())).code).toBe('TXC_PARTICIPANT_UNAVAILABLE');
    await b.rollback();
    expect(server.branches.size).toBe(0);
  });

  it('a statement that lost the connection makes the branch written, and prepare fails without sending anything', async () => {
    const { server, participant } = setup();
    const b = await participant.begin(XID);
    server.failNext('execute', connectionLost());
    const err = await rejection(b.query('select 1 from dual'));
    expect(err).toMatchObject({ code: 'TXC_QUERY_FAILED', retryable: true, details: { code: 'NJS-500' } });
    expect(await b.hasWritten()).toBe(true);
    const calls = server.calls.length;
    expect((await rejection(b.prepare())).code).toBe('TXC_PREPARE_FAILED');
    expect(server.calls.slice(calls)).toEqual(['c1.close drop']);
  });

  it('a connection lost during phase two is retryable; the retry commits from a fresh connection', async () => {
    const { server, participant, pool } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    await b.prepare();
    server.failNext('tpcCommit', connectionLost());
    const err = await rejection(b.commitPrepared());
    expect(err).toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', retryable: true, details: { operation: 'commit-prepared' } });
    await settle();
    expect(pool.conns[0]?.closed).toEqual({ drop: true });
    expect(await participant.listInDoubt()).toEqual([XID]);
    expect(await participant.commitPrepared(XID)).toBe('done');
    expect(server.rows.get(1)).toBe('a');
  });

  it('commitPrepared / rollbackPrepared by xid: done, then unknown (ORA-24756) once finished', async () => {
    const { server, participant } = setup();
    for (const [xid, action] of [
      [XID, 'commit'],
      [XID2, 'rollback'],
    ] as const) {
      const b = await participant.begin(xid);
      await b.query(INSERT, [xid === XID ? 1 : 2, 'a']);
      await b.prepare();
      b.release();
      const resolve = (x: Xid) => (action === 'commit' ? participant.commitPrepared(x) : participant.rollbackPrepared(x));
      expect(await resolve(xid)).toBe('done');
      expect(await resolve(xid)).toBe('unknown');
    }
    expect([...server.rows.keys()]).toEqual([1]);
    await settle();
    // Every connection went back to the pool.
    expect(server.calls.filter((c) => c.endsWith('.close drop'))).toEqual([]);
  });

  it('maps heuristic answers: forced rollback is rolled-back for a commit; forced commit contradicting a rollback throws', async () => {
    const { server, participant } = setup();
    const b = await participant.begin(XID);
    await b.query(INSERT, [1, 'a']);
    await b.prepare();
    b.release();
    server.forceHeuristic(OXID, 24765);
    expect(await participant.commitPrepared(XID)).toBe('rolled-back');
    expect(await participant.rollbackPrepared(XID)).toBe('done');
    server.forceHeuristic(OXID, 24764);
    expect(await participant.commitPrepared(XID)).toBe('done');
    const err = await rejection(participant.rollbackPrepared(XID));
    expect(err.code).toBe('TXC_HEURISTIC_OUTCOME');
    server.forceHeuristic(OXID, 24766);
    expect(await participant.commitPrepared(XID)).toBe('rolled-back');
  });

  it('listInDoubt keeps only txcoord xids (format id, gtrid and bqual shape) from tpcRecover’s raw bytes', async () => {
    const { server, participant } = setup();
    server.foreign.push(
      { formatId: 1, globalTransactionId: GTRID, branchQualifier: 'b0' },
      { formatId: TXC_FORMAT_ID, globalTransactionId: 'someone-else', branchQualifier: 'b0' },
      { formatId: TXC_FORMAT_ID, globalTransactionId: GTRID, branchQualifier: 'b\u00e90' },
      { formatId: TXC_FORMAT_ID, globalTransactionId: GTRID, branchQualifier: 'b3~ora' },
    );
    expect(await participant.listInDoubt()).toEqual([branchXid(GTRID, 3, 'ora')]);
    expect(server.calls).toEqual(['c1.tpcRecover', 'c1.close']);
  });

  it('listInDoubt without SELECT on DBA_PENDING_TRANSACTIONS names the grant', async () => {
    const { server, participant } = setup();
    server.privileges.selectPending = false;
    const err = await rejection(participant.listInDoubt());
    expect(err.code).toBe('TXC_PERMISSION_DENIED');
    expect(err.message).toContain('GRANT SELECT ON SYS.DBA_PENDING_TRANSACTIONS');
    expect(err.cause).toMatchObject({ errorNum: 942 });
  });

  it('preflight passes with both grants, and names each missing one with its GRANT statement', async () => {
    const { server, participant } = setup();
    await participant.preflight();
    server.privileges.forceAny = false;
    let err = await rejection(participant.preflight());
    expect(err.code).toBe('TXC_PERMISSION_DENIED');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('GRANT FORCE ANY TRANSACTION TO TXC');
    expect(err.message).not.toContain('DBA_PENDING_TRANSACTIONS');
    server.privileges.selectPending = false;
    err = await rejection(participant.preflight());
    expect(err.message).toContain('GRANT FORCE ANY TRANSACTION TO TXC; GRANT SELECT ON SYS.DBA_PENDING_TRANSACTIONS TO TXC');
    expect(err.details).toMatchObject({ missingGrants: 'FORCE ANY TRANSACTION, SELECT ON SYS.DBA_PENDING_TRANSACTIONS' });
  });

  it('an unreachable database is TXC_PARTICIPANT_UNAVAILABLE (retryable); a saturated pool is TXC_POOL_TIMEOUT', async () => {
    const { pool, participant } = setup({ acquireTimeoutMs: 20 });
    pool.connectError = njsError(503);
    const err = await rejection(participant.preflight());
    expect(err).toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', retryable: true, details: { code: 'NJS-503' } });
    pool.connectError = undefined;
    pool.gate = new Promise(() => undefined);
    expect((await rejection(participant.begin(XID))).code).toBe('TXC_POOL_TIMEOUT');
  });

  it('creates the pool on first use only, retries a failed creation, and closes it with a drain time', async () => {
    const pool = new FakeOraclePool();
    let attempts = 0;
    const participant = new OracleParticipant(
      'ora',
      async () => {
        if (++attempts === 1) throw njsError(503);
        return pool;
      },
      { acquireTimeoutMs: 1_000, queryTimeoutMs: 1_000, logger },
    );
    expect(attempts).toBe(0);
    expect((await rejection(participant.listInDoubt())).code).toBe('TXC_PARTICIPANT_UNAVAILABLE');
    expect(await participant.listInDoubt()).toEqual([]);
    expect(attempts).toBe(2);
    await participant.close();
    expect(pool.closedWith).toBe(5);
    expect((await rejection(participant.begin(XID))).code).toBe('TXC_PARTICIPANT_UNAVAILABLE');
    const unused = setup();
    await unused.participant.close();
    expect(unused.opened()).toBe(0);
  });

  it('beginLocal ensures the bookkeeping tables once, then runs a plain local transaction: no tpc calls, commit() to commit', async () => {
    const { server, participant } = setup();
    const b = await participant.beginLocal(XID);
    await b.query(INSERT, [1, 'a']);
    await b.commitOnePhase();
    expect(server.calls.filter((c) => c.startsWith('c2.'))).toEqual(['c2.execute insert into t (id, v) values (:1, :2)', 'c2.commit', 'c2.close']);
    expect(server.calls.filter((c) => c.startsWith('c1.'))).toHaveLength(5); // exists?, 2 × create, exists?, close
    expect(server.rows.get(1)).toBe('a');
    const c = await participant.beginLocal(XID2);
    expect(server.calls.at(-1)).not.toMatch(/^c\d+\.execute select count/); // ensured once per instance
    await c.query(INSERT, [2, 'b']);
    await c.rollback();
    expect(server.calls.slice(-2)).toEqual(['c3.rollback', 'c3.close']);
    expect(server.rows.has(2)).toBe(false);
  });

  it('prepare of a local branch is TXC_UNSUPPORTED and leaves it open', async () => {
    const { server, participant } = setup();
    const b = await participant.beginLocal(XID);
    await b.query(INSERT, [1, 'a']);
    expect((await rejection(b.prepare())).code).toBe('TXC_UNSUPPORTED');
    await b.commitOnePhase();
    expect(server.rows.get(1)).toBe('a');
  });

  describe('bookkeeping', () => {
    it('ensureBookkeeping creates both tables once per instance; ORA-00955 from a concurrent creator is success', async () => {
      const { server, participant } = setup();
      server.tables.add('txcoord_markers'); // another process was first with one of them
      await participant.ensureBookkeeping();
      await participant.ensureBookkeeping();
      expect([...server.tables]).toEqual(['txcoord_markers', 'txcoord_barrier']);
      expect(server.calls.filter((c) => c.includes('create table'))).toHaveLength(2);
      const other = setup();
      await other.participant.ensureBookkeeping();
      expect(other.server.calls.filter((c) => c.includes('create table'))).toHaveLength(2);
    });

    it('tables a DBA created are enough: no CREATE TABLE needed then', async () => {
      const { server, participant } = setup();
      server.privileges.createTable = false;
      server.tables.add('txcoord_markers').add('txcoord_barrier');
      await participant.ensureBookkeeping();
      expect(server.calls.filter((c) => c.includes('create table'))).toEqual([]);
    });

    it('ensureBookkeeping without CREATE TABLE names the grant', async () => {
      const { server, participant } = setup();
      server.privileges.createTable = false;
      const err = await rejection(participant.ensureBookkeeping());
      expect(err.message).toContain('GRANT CREATE TABLE');
      expect(err.details).toMatchObject({ errorNum: 1031 });
    });

    it('insertMarker: inserted, then the committed outcome for a duplicate', async () => {
      const { server, participant } = setup();
      await participant.ensureBookkeeping();
      const a = await participant.beginLocal(XID);
      expect(await a.insertMarker?.(GTRID, 'commit')).toBe('inserted');
      expect(await a.hasWritten()).toBe(true);
      await a.commitOnePhase();
      const b = await participant.beginLocal(XID2);
      expect(await b.insertMarker?.(GTRID, 'abort')).toBe('commit');
      await b.commitOnePhase();
      expect(server.markers.get(GTRID)?.outcome).toBe('commit');
    });

    it('insertMarker waits for a conflicting uncommitted insert: its outcome if it commits, inserted if it rolls back', async () => {
      for (const firstCommits of [true, false]) {
        const { participant } = setup();
        await participant.ensureBookkeeping();
        const a = await participant.beginLocal(XID);
        expect(await a.insertMarker?.(GTRID, 'abort')).toBe('inserted');
        const b = await participant.beginLocal(XID2);
        let answered = false;
        const waiting = b.insertMarker?.(GTRID, 'commit').then((r) => ((answered = true), r));
        await settle();
        expect(answered).toBe(false);
        if (firstCommits) await a.commitOnePhase();
        else await a.rollback();
        expect(await waiting).toBe(firstCommits ? 'abort' : 'inserted');
      }
    });

    it('insertBarrier returns the existing origin for a duplicate key', async () => {
      const { participant } = setup();
      await participant.ensureBookkeeping();
      const row = { gid: GTRID, step: 'pay', op: 'action', origin: 'compensate' } as const;
      const a = await participant.beginLocal(XID);
      expect(await a.insertBarrier?.(row)).toBe('inserted');
      await a.commitOnePhase();
      const b = await participant.beginLocal(XID2);
      expect(await b.insertBarrier?.({ ...row, origin: 'action' })).toBe('compensate');
      expect(await b.insertBarrier?.({ ...row, op: 'compensate', origin: 'compensate' })).toBe('inserted');
    });

    it('insertMarker in a TPC branch ensures the tables first, from another pooled connection', async () => {
      const { server, participant, pool } = setup();
      const b = await participant.begin(XID);
      expect(await b.insertMarker?.(GTRID, 'commit')).toBe('inserted');
      expect(pool.conns).toHaveLength(2);
      await b.prepare();
      expect(await b.commitPrepared()).toBe('done');
      expect(server.markers.get(GTRID)?.outcome).toBe('commit');
    });

    it('refuses keys another database could not hold the same way (TXC_ID_INVALID), before any statement', async () => {
      const { participant } = setup();
      await participant.ensureBookkeeping();
      const b = await participant.beginLocal(XID);
      expect((await rejection(b.insertMarker?.('has space', 'commit') ?? Promise.resolve())).code).toBe('TXC_ID_INVALID');
      expect((await rejection(b.insertBarrier?.({ gid: GTRID, step: '', op: 'action', origin: 'action' }) ?? Promise.resolve())).code).toBe('TXC_ID_INVALID');
      expect((await rejection(participant.listMarkers('txc1.', 0))).code).toBe('TXC_ID_INVALID');
      expect((await rejection(participant.deleteMarkers(['a b']))).code).toBe('TXC_ID_INVALID');
    });

    it('listMarkers matches the prefix literally (LIKE wildcards escaped), oldest first, up to limit; deleteMarkers removes', async () => {
      const { server, participant } = setup();
      await participant.ensureBookkeeping();
      const g = (coord: string, n: number) => newGtrid(coord, () => `0190d5a8-7b3c-7def-8123-45678900000${n}`);
      const mine = [g('c_1', 1), g('c_1', 2), g('c_1', 3)];
      const other = g('cx1', 4); // would match an unescaped `c_1`
      for (const gtrid of [mine[1], other, mine[0], mine[2]]) {
        const b = await participant.beginLocal(XID);
        await b.insertMarker?.(gtrid as string, 'commit');
        await b.commitOnePhase();
      }
      const listed = await participant.listMarkers('txc1.c_1.', 2);
      expect(listed.map((m) => m.gtrid)).toEqual([mine[1], mine[0]]);
      expect(listed[0]).toMatchObject({ outcome: 'commit', createdAt: Date.UTC(2026, 0, 1) });
      await participant.deleteMarkers(mine as string[]);
      expect([...server.markers.keys()]).toEqual([other]);
      await participant.deleteMarkers([]);
    });

    it('deleteBarriers: nothing while the table is missing (never creates it), then the rows of the range', async () => {
      const { server, participant } = setup();
      const range = barrierRangeBefore('c1', 0x2000);
      expect(await participant.deleteBarriers(range)).toBe(0);
      expect(server.tables.has('txcoord_barrier')).toBe(false);
      await participant.ensureBookkeeping();
      for (const gid of ['txc1.c1.000000001000aa', 'txc1.c1.000000003000aa', 'txc1.c10.000000001000aa']) server.barriers.set(`${gid}|s|action`, 'action');
      expect(await participant.deleteBarriers(range)).toBe(1);
      expect([...server.barriers.keys()].sort()).toEqual(['txc1.c1.000000003000aa|s|action', 'txc1.c10.000000001000aa|s|action']);
    });
  });
});

describe('createOracleParticipant (the installed oracledb, Thin mode)', () => {
  it('loads the driver, creates the pool only when used, and reports a refused connection as retryable UNAVAILABLE', async () => {
    const p = createOracleParticipant(
      'ora',
      { driver: 'oracle', connectionString: 'oracle://app:secret@127.0.0.1:1/FREEPDB1', pool: { acquireTimeoutMs: 5_000 } },
      { logger },
    );
    expect(p.driver).toBe('oracle');
    expect(p.capabilities).toEqual({ twoPhase: true, localTransactions: true });
    const err = await rejection(p.listInDoubt());
    expect(err).toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', retryable: true });
    expect(err.message).not.toContain('secret');
    await p.close();
  });
});

describe('classifyOracleError', () => {
  it('classifies by errorNum first, then by code; never by message', () => {
    // Thin rewrites the code of a session-ending ORA error to NJS-500 and keeps errorNum.
    expect(classifyOracleError(Object.assign(new Error('x'), { errorNum: 3113, code: 'NJS-500' }))).toEqual({
      kind: 'connection',
      errorNum: 3113,
      code: 'NJS-500',
      retryable: true,
    });
    expect(classifyOracleError(oraError(24756)).kind).toBe('unknown-xid');
    expect(classifyOracleError(oraError(60))).toMatchObject({ kind: 'deadlock', retryable: true });
    expect(classifyOracleError(oraError(1))).toMatchObject({ kind: 'unique', retryable: false });
    expect(classifyOracleError(oraError(955)).kind).toBe('exists');
    expect(classifyOracleError(oraError(1031)).kind).toBe('privilege');
    expect(classifyOracleError(oraError(942)).kind).toBe('privilege');
    expect(classifyOracleError(oraError(2049))).toMatchObject({ kind: 'transient', retryable: true });
    expect(classifyOracleError(oraError(904))).toMatchObject({ kind: 'refused', retryable: false });
    expect(classifyOracleError(njsError(123))).toMatchObject({ kind: 'timeout', retryable: true });
    expect(classifyOracleError(njsError(500))).toMatchObject({ kind: 'connection', retryable: true });
    expect(classifyOracleError(njsError(3))).toMatchObject({ kind: 'connection' });
    expect(classifyOracleError(njsError(65))).toMatchObject({ kind: 'connection', retryable: false });
    expect(classifyOracleError(njsError(152))).toMatchObject({ kind: 'unknown-state', retryable: true });
    expect(classifyOracleError(njsError(5))).toMatchObject({ kind: 'refused', retryable: false });
    expect(classifyOracleError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toMatchObject({ kind: 'connection', retryable: true });
    expect(classifyOracleError(new TypeError('bad bind'))).toMatchObject({ kind: 'refused' });
    expect(classifyOracleError(new Error('ORA-00001: looks like a unique violation'))).toMatchObject({ kind: 'connection' });
  });
});

describe('oraclePoolAttributes', () => {
  const pool = resolvePoolSettings('ora', { max: 4, acquireTimeoutMs: 2_500 });

  it('turns oracle://user:password@host:port/service into Easy Connect pool attributes', () => {
    expect(oraclePoolAttributes('ora', 'oracle://app:p%40ss%3Aw@db.example:1522/FREEPDB1', pool)).toEqual({
      user: 'app',
      password: 'p@ss:w',
      connectString: 'db.example:1522/FREEPDB1',
      poolMin: 0,
      poolMax: 4,
      poolIncrement: 1,
      queueTimeout: 3_500,
      connectTimeout: 3,
      expireTime: 1,
    });
    expect(oraclePoolAttributes('ora', 'oracle://app:x@[::1]/orcl.example.com?expire_time=2', pool).connectString).toBe(
      '[::1]/orcl.example.com?expire_time=2',
    );
  });

  it('rejects other shapes with TXC_CONFIG_INVALID naming the field, never echoing the password', () => {
    for (const bad of ['postgres://app:secret@h/s', 'oracle://app:secret@h', 'oracle://:secret@h/s', 'not a url secret', 'oracle://app:secret@h/a/b/c']) {
      let err: unknown;
      try {
        oraclePoolAttributes('ora', bad, pool);
      } catch (e) {
        err = e;
      }
      expect(TxcError.is(err, 'TXC_CONFIG_INVALID'), bad).toBe(true);
      expect((err as TxcError).message).toContain('participants.ora.connectionString');
      expect((err as TxcError).message).not.toContain('secret');
    }
  });
});
