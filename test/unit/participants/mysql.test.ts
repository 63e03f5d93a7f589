import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { branchXid, newGtrid, type Xid } from '../../../coordinator/xid.js';
import type { MysqlConnection, MysqlOkPacket, MysqlPool } from '../../../participants/mysql/driver.js';
import { classifyMysqlError } from '../../../participants/mysql/errors.js';
import { MysqlParticipant } from '../../../participants/mysql/participant.js';
import type { Participant } from '../../../participants/participant.js';
import * as sql from '../../../participants/mysql/sql.js';

const logger = pino({ level: 'silent' });
const UUID = '0190d5a8-7b3c-7def-8123-456789abcdef';
const GTRID = newGtrid('unit', () => UUID);
const XID: Xid = branchXid(GTRID, 0);
const hex = (s: string) => Buffer.from(s, 'ascii').toString('hex');
const X = `X'${hex(GTRID)}',X'${hex('b0')}',1415070513`;
const COUNTERS = "SHOW SESSION STATUS WHERE Variable_name IN ('Handler_write', 'Handler_update', 'Handler_delete')";

function myError(errno: number | undefined, code?: string, fatal?: boolean): Error {
  return Object.assign(new Error('boom'), { errno, code, ...(fatal ? { fatal } : {}) });
}
const okPacket = (affectedRows = 0): MysqlOkPacket & Record<string, unknown> => ({ fieldCount: 0, affectedRows, serverStatus: 3 });

type XaState = 'ACTIVE' | 'IDLE' | 'ROLLBACK_ONLY' | 'PREPARED';
type Answer = unknown;
type Handler = (sql: string, values: unknown[] | undefined, conn: FakeConnection) => Answer | undefined;

/** A MariaDB-like server: XA states per connection, prepared branches bound to their session while it lives. */
class FakeServer {
  /** xid → the live session that prepared it (undefined once detached). */
  readonly prepared = new Map<string, FakeConnection | undefined>();
  readonly log: string[] = [];
  handlers: Handler[] = [];

  answer(sql: string, values: unknown[] | undefined, conn: FakeConnection): Answer {
    for (const h of this.handlers) {
      const a = h(sql, values, conn);
      if (a !== undefined) return a;
    }
    const m = /^XA (START|END|PREPARE|COMMIT|ROLLBACK) (X'[0-9a-f]+',X'[0-9a-f]+',\d+)( ONE PHASE)?$/.exec(sql);
    if (m) return this.xa(m[1] as string, m[2] as string, Boolean(m[3]), conn);
    if (sql === COUNTERS) {
      return [
        { Variable_name: 'Handler_delete', Value: '0' },
        { Variable_name: 'Handler_update', Value: '0' },
        { Variable_name: 'Handler_write', Value: String(conn.writes) },
      ];
    }
    if (sql === 'XA RECOVER') {
      return [...this.prepared.keys()].map((x) => {
        const [g, b, f] = x.split(',') as [string, string, string];
        const gt = Buffer.from(g.slice(2, -1), 'hex');
        const bq = Buffer.from(b.slice(2, -1), 'hex');
        return { formatID: Number(f), gtrid_length: gt.length, bqual_length: bq.length, data: Buffer.concat([gt, bq]) };
      });
    }
    if (/^(insert|update|delete)/i.test(sql)) {
      conn.writes++;
      return okPacket(1);
    }
    return [];
  }

  private xa(verb: string, xid: string, onePhase: boolean, conn: FakeConnection): Answer {
    const own = conn.xa?.xid === xid ? conn.xa : undefined;
    const rmfail = myError(1399, 'ER_XAER_RMFAIL');
    switch (verb) {
      case 'START':
        conn.xa = { xid, state: 'ACTIVE' };
        return okPacket();
      case 'END':
        if (own?.state !== 'ACTIVE') return rmfail;
        own.state = 'IDLE';
        return okPacket();
      case 'PREPARE':
        if (own?.state !== 'IDLE') return rmfail;
        own.state = 'PREPARED';
        this.prepared.set(xid, conn);
        return okPacket();
      case 'COMMIT':
        if (onePhase) {
          if (own?.state !== 'IDLE') return rmfail;
          conn.xa = undefined;
          return okPacket();
        }
        if (own?.state === 'PREPARED' || (this.prepared.has(xid) && this.prepared.get(xid) === undefined)) {
          this.prepared.delete(xid);
          if (own) conn.xa = undefined;
          return okPacket();
        }
        return myError(1397, 'ER_XAER_NOTA');
      case 'ROLLBACK':
        if (own?.state === 'ACTIVE') return rmfail;
        if (own || (this.prepared.has(xid) && this.prepared.get(xid) === undefined)) {
          this.prepared.delete(xid);
          conn.xa = undefined;
          return okPacket();
        }
        return myError(1397, 'ER_XAER_NOTA');
    }
    return myError(1064, 'ER_PARSE_ERROR');
  }
}

class FakeConnection implements MysqlConnection {
  xa: { xid: string; state: XaState } | undefined;
  writes = 10;
  readonly sent: string[] = [];
  readonly ends: Array<'release' | 'destroy'> = [];
  readonly errorListeners = new Set<(err: Error) => void>();

  constructor(private readonly server: FakeServer) {}

  async query(sql: string, values?: unknown[]): Promise<[unknown, unknown]> {
    this.sent.push(sql);
    this.server.log.push(sql);
    const a = await this.server.answer(sql, values, this);
    if (a instanceof Error) throw a;
    return [a, undefined];
  }
  on(_event: 'error', listener: (err: Error) => void): void {
    this.errorListeners.add(listener);
  }
  removeListener(_event: 'error', listener: (err: Error) => void): void {
    this.errorListeners.delete(listener);
  }
  release(): void {
    this.ends.push('release');
  }
  destroy(): void {
    this.ends.push('destroy');
    // Like MariaDB: a disconnect rolls back an unprepared branch and detaches a prepared one.
    for (const [x, c] of this.server.prepared) if (c === this) this.server.prepared.set(x, undefined);
    this.xa = undefined;
  }
}

class FakePool implements MysqlPool {
  readonly server = new FakeServer();
  readonly conns: FakeConnection[] = [];
  connectError: Error | undefined;
  /** When set, getConnection() waits until this promise resolves (a saturated pool). */
  gate: Promise<void> | undefined;
  ended = 0;

  async getConnection(): Promise<MysqlConnection> {
    if (this.connectError) throw this.connectError;
    const c = new FakeConnection(this.server);
    this.conns.push(c);
    if (this.gate) await this.gate;
    return c;
  }
  async end(): Promise<void> {
    this.ended++;
  }
}

function setup(acquireTimeoutMs = 1_000, localOnly = false) {
  const pool = new FakePool();
  const participant = new MysqlParticipant('my1', pool, { acquireTimeoutMs, logger, localOnly });
  return { pool, server: pool.server, participant };
}

/** The bookkeeping tables in the fake server, matched by the exact statements of sql.ts. */
function bookkeepingTables(server: FakeServer, count = 2) {
  const state = { count, markers: new Map<string, string>(), barrier: new Map<string, string>() };
  server.handlers.push((text, values) => {
    const v = (values ?? []).map(String);
    switch (text) {
      case sql.BOOKKEEPING_TABLES:
        return [{ n: state.count }];
      case sql.CREATE_MARKERS:
      case sql.CREATE_BARRIER:
        state.count++;
        return okPacket(0);
      case sql.INSERT_MARKER:
        if (state.markers.has(v[0]!)) return okPacket(0);
        state.markers.set(v[0]!, v[1]!);
        return okPacket(1);
      case sql.SELECT_MARKER:
        return state.markers.has(v[0]!) ? [{ outcome: state.markers.get(v[0]!) }] : [];
      case sql.INSERT_BARRIER: {
        const key = v.slice(0, 3).join('|');
        if (state.barrier.has(key)) return okPacket(0);
        state.barrier.set(key, v[3]!);
        return okPacket(1);
      }
      case sql.SELECT_BARRIER: {
        const key = v.join('|');
        return state.barrier.has(key) ? [{ origin: state.barrier.get(key) }] : [];
      }
      default:
        return undefined;
    }
  });
  return state;
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

describe('MySQL participant (fake driver)', () => {
  it('starts with XA START on a hex xid from toMysqlXid, and reads the write counters only before a non-DML statement', async () => {
    const { pool, participant } = setup();
    const branch = await participant.begin(XID);
    expect(pool.conns[0]?.sent).toEqual([`XA START ${X}`]);
    await branch.query('select * from t where id = ?', [1]);
    expect(pool.conns[0]?.sent).toEqual([`XA START ${X}`, COUNTERS, 'select * from t where id = ?']);
    await branch.query('select 2');
    expect(pool.conns[0]?.sent.filter((s) => s === COUNTERS)).toHaveLength(1);
  });

  it('never reads the write counters for a transaction that starts by writing', async () => {
    const { pool, participant } = setup();
    const branch = await participant.begin(XID);
    await branch.query('  UPDATE t set v = 1');
    await branch.query('select * from t');
    expect(await branch.hasWritten()).toBe(true);
    expect(pool.conns[0]?.sent).not.toContain(COUNTERS);
  });

  it('normalizes results: rows for SELECT, affected rows for DML', async () => {
    const { server, participant } = setup();
    server.handlers.push((sql) => (sql === 'select 2' ? [{ a: 1 }, { a: 2 }] : undefined));
    const branch = await participant.begin(XID);
    expect(await branch.query('select 2')).toEqual({ rows: [{ a: 1 }, { a: 2 }], rowCount: 2 });
    expect(await branch.query('insert into t values (1)')).toEqual({ rows: [], rowCount: 1 });
  });

  it('prepares with XA END + XA PREPARE, keeps the connection, commits on it, then releases it', async () => {
    const { pool, server, participant } = setup();
    const branch = await participant.begin(XID);
    await branch.query('insert into t values (1)');
    expect(await branch.prepare()).toEqual({});
    const conn = pool.conns[0] as FakeConnection;
    expect(conn.sent.slice(-2)).toEqual([`XA END ${X}`, `XA PREPARE ${X}`]);
    expect(conn.ends).toEqual([]);
    expect(await participant.listInDoubt()).toEqual([XID]);
    // Like MariaDB: another session cannot commit it while the preparer is connected.
    expect(await participant.commitPrepared(XID)).toBe('unknown');
    expect(await branch.commitPrepared()).toBe('done');
    expect(conn.sent.at(-1)).toBe(`XA COMMIT ${X}`);
    expect(conn.ends).toEqual(['release']);
    expect(server.prepared.size).toBe(0);
    branch.release(true);
    expect(conn.ends).toEqual(['release']);
  });

  it('a connection lost during XA COMMIT destroys it (detaching the branch); the retry commits from a fresh one', async () => {
    const { pool, server, participant } = setup();
    const branch = await participant.begin(XID);
    await branch.query('insert into t values (1)');
    await branch.prepare();
    server.handlers.push((sql, _v, conn) => (sql === `XA COMMIT ${X}` && conn === pool.conns[0] ? myError(undefined, 'PROTOCOL_CONNECTION_LOST', true) : undefined));
    const err = await rejection(branch.commitPrepared());
    expect(err.retryable).toBe(true);
    expect(pool.conns[0]?.ends).toEqual(['destroy']);
    expect(await branch.commitPrepared()).toBe('done');
    expect(pool.conns.at(-1)?.sent).toEqual([`XA COMMIT ${X}`]);
    expect(server.prepared.size).toBe(0);
  });

  it('XA COMMIT answering XA_RBROLLBACK is rolled-back', async () => {
    const { server, participant } = setup();
    const branch = await participant.begin(XID);
    await branch.prepare();
    server.handlers.push((sql) => (sql === `XA COMMIT ${X}` ? myError(1402, 'ER_XA_RBROLLBACK') : undefined));
    expect(await branch.commitPrepared()).toBe('rolled-back');
  });

  it('after a deadlock: written, and prepare rolls back (XA END refused, XA ROLLBACK) without XA PREPARE', async () => {
    const { pool, server, participant } = setup();
    const deadlock = myError(1213, 'ER_LOCK_DEADLOCK');
    server.handlers.push((sql, _v, conn) => {
      if (sql !== 'update t set v = 1') return undefined;
      if (conn.xa) conn.xa.state = 'ROLLBACK_ONLY';
      return deadlock;
    });
    const branch = await participant.begin(XID);
    await expect(branch.query('update t set v = 1')).rejects.toMatchObject({
      code: 'TXC_QUERY_FAILED',
      retryable: true,
      details: { participant: 'my1', errno: 1213 },
      cause: deadlock,
    });
    expect(await branch.hasWritten()).toBe(true);
    const err = await rejection(branch.prepare());
    expect(err.code).toBe('TXC_PREPARE_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.cause).toBe(deadlock);
    const conn = pool.conns[0] as FakeConnection;
    expect(conn.sent.slice(1)).toEqual(['update t set v = 1', `XA END ${X}`, `XA ROLLBACK ${X}`]);
    expect(conn.ends).toEqual(['release']);
  });

  it('a refused XA PREPARE rolls back and is TXC_PREPARE_FAILED', async () => {
    const { pool, server, participant } = setup();
    server.handlers.push((sql) => (sql === `XA PREPARE ${X}` ? myError(1401, 'ER_XAER_RMERR') : undefined));
    const branch = await participant.begin(XID);
    await branch.query('insert into t values (1)');
    await expect(branch.prepare()).rejects.toMatchObject({ code: 'TXC_PREPARE_FAILED', details: { errno: 1401 } });
    expect(pool.conns[0]?.sent.at(-1)).toBe(`XA ROLLBACK ${X}`);
  });

  it('a connection lost during XA PREPARE is in doubt; rollback() finishes it from a fresh connection', async () => {
    const { pool, server, participant } = setup();
    server.handlers.push((sql, _v, conn) => {
      if (sql !== `XA PREPARE ${X}`) return undefined;
      if (conn.xa) conn.xa.state = 'PREPARED';
      server.prepared.set(sql.slice('XA PREPARE '.length), conn); // it did prepare before the line dropped
      return myError(-104, 'ECONNRESET', true);
    });
    const branch = await participant.begin(XID);
    await branch.query('insert into t values (1)');
    await expect(branch.prepare()).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', retryable: true });
    expect(pool.conns[0]?.ends).toEqual(['destroy']);
    await branch.rollback();
    expect(pool.conns[1]?.sent).toEqual([`XA ROLLBACK ${X}`]);
    expect(server.prepared.size).toBe(0);
  });

  describe('commitOnePhase', () => {
    it('sends XA END then XA COMMIT … ONE PHASE and releases the connection', async () => {
      const { pool, participant } = setup();
      const branch = await participant.begin(XID);
      await branch.commitOnePhase();
      expect(pool.conns[0]?.sent.slice(1)).toEqual([`XA END ${X}`, `XA COMMIT ${X} ONE PHASE`]);
      expect(pool.conns[0]?.ends).toEqual(['release']);
    });

    it('a connection lost during the commit is TXC_OUTCOME_UNKNOWN', async () => {
      const { pool, server, participant } = setup();
      server.handlers.push((sql) => (sql === `XA COMMIT ${X} ONE PHASE` ? myError(undefined, 'PROTOCOL_CONNECTION_LOST', true) : undefined));
      const branch = await participant.begin(XID);
      await expect(branch.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_OUTCOME_UNKNOWN' });
      expect(pool.conns[0]?.ends).toEqual(['destroy']);
    });

    it('a connection lost at XA END (before the commit) is TXC_COMMIT_FAILED, retryable', async () => {
      const { pool, server, participant } = setup();
      server.handlers.push((sql) => (sql === `XA END ${X}` ? myError(-32, 'EPIPE', true) : undefined));
      const branch = await participant.begin(XID);
      await expect(branch.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_COMMIT_FAILED', retryable: true });
      expect(pool.conns[0]?.ends).toEqual(['destroy']);
    });

    it('a refused one-phase commit is TXC_COMMIT_FAILED', async () => {
      const { server, participant } = setup();
      server.handlers.push((sql) => (sql === `XA COMMIT ${X} ONE PHASE` ? myError(1614, 'ER_XA_RBDEADLOCK') : undefined));
      const branch = await participant.begin(XID);
      await expect(branch.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_COMMIT_FAILED', retryable: true, details: { errno: 1614 } });
    });
  });

  describe('hasWritten', () => {
    it('false without a round trip when no statement ran', async () => {
      const { pool, participant } = setup();
      const branch = await participant.begin(XID);
      expect(await branch.hasWritten()).toBe(false);
      expect(pool.conns[0]?.sent).toHaveLength(1);
    });

    it('true without a round trip after any OK packet', async () => {
      const { pool, server, participant } = setup();
      server.handlers.push((sql) => (sql.startsWith('set ') ? okPacket(0) : undefined));
      const branch = await participant.begin(XID);
      await branch.query('set @x = 1');
      expect(await branch.hasWritten()).toBe(true);
      expect(pool.conns[0]?.sent.filter((s) => s === COUNTERS)).toHaveLength(1);
    });

    it('after SELECTs only, compares the write counters with their value before the first SELECT', async () => {
      const { pool, server, participant } = setup();
      server.handlers.push((sql, _v, conn) => (sql === 'select writes_something()' ? (conn.writes++, [{ w: 1 }]) : undefined));
      const branch = await participant.begin(XID);
      await branch.query('select 1');
      expect(await branch.hasWritten()).toBe(false);
      await branch.query('select writes_something()');
      expect(await branch.hasWritten()).toBe(true);
      expect(pool.conns[0]?.sent.filter((s) => s === COUNTERS)).toHaveLength(3);
    });

    it('true when the counters could not be read', async () => {
      const { server, participant } = setup();
      server.handlers.push((sql) => (sql === COUNTERS ? myError(1227, 'ER_SPECIFIC_ACCESS_DENIED_ERROR') : undefined));
      const branch = await participant.begin(XID);
      await branch.query('select 1');
      expect(await branch.hasWritten()).toBe(true);
    });
  });

  describe('rollback and release', () => {
    it('rolls back an active branch with XA END + XA ROLLBACK, and tolerates XA END refused (already IDLE)', async () => {
      const { pool, server, participant } = setup();
      const branch = await participant.begin(XID);
      server.handlers.push((sql, _v, conn) => (sql === `XA END ${X}` ? ((conn.xa!.state = 'IDLE'), myError(1399, 'ER_XAER_RMFAIL')) : undefined));
      await branch.rollback();
      await branch.rollback();
      expect(pool.conns[0]?.sent.slice(1)).toEqual([`XA END ${X}`, `XA ROLLBACK ${X}`]);
      expect(pool.conns[0]?.ends).toEqual(['release']);
    });

    it('rolls back a prepared branch on its connection', async () => {
      const { pool, server, participant } = setup();
      const branch = await participant.begin(XID);
      await branch.prepare();
      await branch.rollback();
      expect(pool.conns[0]?.sent.at(-1)).toBe(`XA ROLLBACK ${X}`);
      expect(server.prepared.size).toBe(0);
    });

    it('release() of a prepared branch closes the connection; the branch is then finished from a fresh one', async () => {
      const { pool, server, participant } = setup();
      const branch = await participant.begin(XID);
      await branch.prepare();
      branch.release();
      branch.release();
      expect(pool.conns[0]?.ends).toEqual(['destroy']);
      expect(await branch.commitPrepared()).toBe('done');
      expect(pool.conns[1]?.sent).toEqual([`XA COMMIT ${X}`]);
      expect(server.prepared.size).toBe(0);
    });

    it('release(false) of an active branch still destroys the connection', async () => {
      const { pool, participant } = setup();
      const branch = await participant.begin(XID);
      branch.release(false);
      expect(pool.conns[0]?.ends).toEqual(['destroy']);
      await expect(branch.prepare()).rejects.toMatchObject({ code: 'TXC_PREPARE_FAILED' });
    });
  });

  it('serializes concurrent statements on one branch', async () => {
    const { pool, server, participant } = setup();
    let releaseFirst: () => void = () => {};
    server.handlers.push((sql) => (sql === 'slow' ? new Promise((resolve) => (releaseFirst = () => resolve([]))) : undefined));
    const branch = await participant.begin(XID);
    const first = branch.query('slow');
    const second = branch.query('fast');
    await new Promise((r) => setTimeout(r, 5));
    expect(pool.conns[0]?.sent.slice(2)).toEqual(['slow']);
    releaseFirst();
    await Promise.all([first, second]);
    expect(pool.conns[0]?.sent.slice(2)).toEqual(['slow', 'fast']);
  });

  describe('participant-level operations', () => {
    it('resolves by xid: unknown (1397), rolled-back (1402/1613/1614 on commit), done on rollback of a rolled-back branch', async () => {
      const { server, participant } = setup();
      expect(await participant.commitPrepared(XID)).toBe('unknown');
      expect(await participant.rollbackPrepared(XID)).toBe('unknown');
      for (const errno of [1402, 1613, 1614]) {
        server.handlers = [(sql) => (sql.startsWith('XA ') ? myError(errno) : undefined)];
        expect(await participant.commitPrepared(XID)).toBe('rolled-back');
        expect(await participant.rollbackPrepared(XID)).toBe('done');
      }
    });

    it('throws retryable on a lost connection (and destroys it), not retryable on XAER_RMFAIL', async () => {
      const { pool, server, participant } = setup();
      server.handlers = [(sql) => (sql.startsWith('XA COMMIT') ? myError(undefined, 'PROTOCOL_CONNECTION_LOST', true) : undefined)];
      await expect(participant.commitPrepared(XID)).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', retryable: true });
      expect(pool.conns.at(-1)?.ends).toEqual(['destroy']);
      server.handlers = [(sql) => (sql.startsWith('XA COMMIT') ? myError(1399, 'ER_XAER_RMFAIL') : undefined)];
      await expect(participant.commitPrepared(XID)).rejects.toMatchObject({ retryable: false, details: { errno: 1399 } });
      expect(pool.conns.at(-1)?.ends).toEqual(['release']);
    });

    it('listInDoubt keeps only txcoord xids', async () => {
      const { server, participant } = setup();
      server.handlers.push((sql) =>
        sql === 'XA RECOVER'
          ? [
              { formatID: 1415070513, gtrid_length: GTRID.length, bqual_length: 2, data: Buffer.from(`${GTRID}b0`) },
              { formatID: 1, gtrid_length: 3, bqual_length: 0, data: Buffer.from('foo') },
              { formatID: 1415070513, gtrid_length: 4, bqual_length: 2, data: Buffer.from('txc1b0') },
            ]
          : undefined,
      );
      expect(await participant.listInDoubt()).toEqual([XID]);
    });

    it('access denied to XA RECOVER is TXC_XA_RECOVER_DENIED in listInDoubt and preflight', async () => {
      const { server, participant } = setup();
      server.handlers.push((sql) => {
        if (sql === 'XA RECOVER') return myError(1227, 'ER_SPECIFIC_ACCESS_DENIED_ERROR');
        if (sql.includes('information_schema.engines')) return [{ support: 'DEFAULT' }];
        return undefined;
      });
      await expect(participant.listInDoubt()).rejects.toMatchObject({ code: 'TXC_XA_RECOVER_DENIED' });
      await expect(participant.preflight()).rejects.toMatchObject({ code: 'TXC_XA_RECOVER_DENIED' });
    });

    it('preflight passes with InnoDB and XA RECOVER, fails without InnoDB or server', async () => {
      const { pool, server, participant } = setup();
      let support = 'YES';
      server.handlers.push((sql) => (sql.includes('information_schema.engines') ? [{ support }] : undefined));
      await participant.preflight();
      support = 'NO';
      await expect(participant.preflight()).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE' });
      pool.connectError = myError(-111, 'ECONNREFUSED', true);
      await expect(participant.preflight()).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', retryable: true });
    });

    it('a failed XA START destroys the connection', async () => {
      const { pool, server, participant } = setup();
      server.handlers.push((sql) => (sql.startsWith('XA START') ? myError(1440, 'ER_XAER_DUPID') : undefined));
      await expect(participant.begin(XID)).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', details: { errno: 1440 } });
      expect(pool.conns[0]?.ends).toEqual(['destroy']);
    });

    it('times out waiting for a connection with TXC_POOL_TIMEOUT, and hands a late one straight back', async () => {
      const { pool, participant } = setup(20);
      let open: () => void = () => {};
      pool.gate = new Promise((resolve) => (open = resolve));
      await expect(participant.begin(XID)).rejects.toMatchObject({ code: 'TXC_POOL_TIMEOUT', retryable: true });
      open();
      await new Promise((r) => setTimeout(r, 5));
      expect(pool.conns[0]?.sent).toEqual([]);
      expect(pool.conns[0]?.ends).toEqual(['release']);
    });

    it('has no localStatus', () => {
      const participant: Participant = setup().participant;
      expect(participant.localStatus).toBeUndefined();
    });
  });
});

describe('MySQL participant: local transactions and bookkeeping (fake driver)', () => {
  const outOfTransaction = (affectedRows = 0): MysqlOkPacket => ({ affectedRows, serverStatus: 2 }); // autocommit, not IN_TRANS

  it('local-only: one-phase capabilities; begin is START TRANSACTION (never XA) and commits with COMMIT', async () => {
    const { pool, server, participant } = setup(1_000, true);
    bookkeepingTables(server);
    expect(participant.capabilities).toEqual({ twoPhase: false, localTransactions: true });
    const branch = await participant.begin(XID);
    expect(branch.local).toBe(true);
    expect(pool.conns.map((c) => c.sent)).toEqual([[sql.BOOKKEEPING_TABLES], ['START TRANSACTION']]);
    await branch.query('insert into t values (1)');
    await branch.commitOnePhase();
    expect(pool.conns[1]?.sent).toEqual(['START TRANSACTION', 'insert into t values (1)', 'COMMIT']);
    expect(pool.conns[1]?.ends).toEqual(['release']);
    expect(server.log.some((t) => t.startsWith('XA '))).toBe(false);
  });

  it('a local branch refuses to prepare (TXC_UNSUPPORTED, nothing sent) and stays open; rollback is ROLLBACK', async () => {
    const { pool, server, participant } = setup(1_000, true);
    bookkeepingTables(server);
    const branch = await participant.begin(XID);
    const err = await rejection(branch.prepare());
    expect(err.code).toBe('TXC_UNSUPPORTED');
    expect(err.details).toMatchObject({ participant: 'my1', operation: 'prepare' });
    expect(pool.conns[1]?.sent).toEqual(['START TRANSACTION']);
    await branch.rollback();
    await branch.rollback();
    expect(pool.conns[1]?.sent).toEqual(['START TRANSACTION', 'ROLLBACK']);
    expect(pool.conns[1]?.ends).toEqual(['release']);
  });

  it('beginLocal of an XA participant is a plain transaction too (START TRANSACTION, COMMIT)', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    expect(participant.capabilities.twoPhase).toBe(true);
    const branch = await participant.beginLocal(XID);
    await branch.commitOnePhase();
    expect(pool.conns[1]?.sent).toEqual(['START TRANSACTION', 'COMMIT']);
  });

  it('a statement that ends a local transaction (implicit commit) is refused, and so is everything after it', async () => {
    const { pool, server, participant } = setup(1_000, true);
    bookkeepingTables(server);
    server.handlers.unshift((text) => (text.startsWith('create table t') ? outOfTransaction() : undefined));
    const branch = await participant.begin(XID);
    await expect(branch.query('create table t (x int)')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED' });
    await expect(branch.query('insert into t values (1)')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED' });
    expect(await branch.hasWritten()).toBe(true);
    await expect(branch.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_COMMIT_FAILED' });
    expect(pool.conns[1]?.sent).toEqual(['START TRANSACTION', COUNTERS, 'create table t (x int)', 'ROLLBACK']);
  });

  it.each([
    [1213, 'ER_LOCK_DEADLOCK'],
    [1205, 'ER_LOCK_WAIT_TIMEOUT'],
  ])('after errno %i a local branch refuses further statements (they would autocommit) and commit rolls back', async (errno, code) => {
    const { pool, server, participant } = setup(1_000, true);
    bookkeepingTables(server);
    server.handlers.unshift((text) => (text === 'update t set v = 1' ? myError(errno, code) : undefined));
    const branch = await participant.begin(XID);
    await expect(branch.query('update t set v = 1')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED', retryable: true });
    await expect(branch.query('insert into t values (2)')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED', details: { errno } });
    await expect(branch.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_COMMIT_FAILED', retryable: true });
    expect(pool.conns[1]?.sent).toEqual(['START TRANSACTION', 'update t set v = 1', 'ROLLBACK']);
  });

  it('a lock wait timeout leaves an XA branch usable (the XA state machine guards it there)', async () => {
    const { server, participant } = setup();
    server.handlers.push((text) => (text === 'update t set v = 1' ? myError(1205, 'ER_LOCK_WAIT_TIMEOUT') : undefined));
    const branch = await participant.begin(XID);
    await expect(branch.query('update t set v = 1')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED' });
    await branch.query('insert into t values (2)');
    expect(await branch.prepare()).toEqual({});
  });

  it('a connection lost during a local COMMIT is TXC_OUTCOME_UNKNOWN', async () => {
    const { pool, server, participant } = setup(1_000, true);
    bookkeepingTables(server);
    server.handlers.unshift((text) => (text === 'COMMIT' ? myError(undefined, 'PROTOCOL_CONNECTION_LOST', true) : undefined));
    const branch = await participant.begin(XID);
    await expect(branch.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_OUTCOME_UNKNOWN' });
    expect(pool.conns[1]?.ends).toEqual(['destroy']);
  });

  it('insertMarker: INSERT IGNORE, then a LOCKING read for the existing outcome; counts as written without counters', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    expect(sql.SELECT_MARKER).toMatch(/lock in share mode$/);
    expect(sql.SELECT_BARRIER).toMatch(/lock in share mode$/);
    const first = await participant.beginLocal(XID);
    expect(await first.insertMarker(GTRID, 'commit')).toBe('inserted');
    expect(pool.conns[1]?.sent).toEqual(['START TRANSACTION', sql.INSERT_MARKER]);
    const second = await participant.beginLocal(XID);
    expect(await second.insertMarker(GTRID, 'abort')).toBe('commit');
    expect(await second.hasWritten()).toBe(true);
    expect(pool.conns.at(-1)?.sent).toEqual(['START TRANSACTION', sql.INSERT_MARKER, sql.SELECT_MARKER]);
    expect(server.log).not.toContain(COUNTERS);
  });

  it('insertBarrier reports the existing origin; an XA branch ensures the tables from another connection', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    const branch = await participant.begin(XID);
    const row = { gid: 'g1', step: 'débit', op: 'action', origin: 'compensate' } as const;
    expect(await branch.insertBarrier(row)).toBe('inserted');
    expect(await branch.insertBarrier({ ...row, origin: 'action' })).toBe('compensate');
    expect(pool.conns[0]?.sent).toEqual([`XA START ${X}`, sql.INSERT_BARRIER, sql.INSERT_BARRIER, sql.SELECT_BARRIER]);
    expect(pool.conns[1]?.sent).toEqual([sql.BOOKKEEPING_TABLES]);
    await expect(branch.insertBarrier({ ...row, step: 'x'.repeat(129) })).rejects.toMatchObject({ code: 'TXC_ID_INVALID' });
    await expect(branch.insertMarker('x'.repeat(65), 'commit')).rejects.toMatchObject({ code: 'TXC_ID_INVALID' });
  });

  it('local-only preflight checks InnoDB and creates the tables, but never runs XA RECOVER', async () => {
    const { server, participant } = setup(1_000, true);
    const tables = bookkeepingTables(server, 0);
    server.handlers.push((text) => (text.includes('information_schema.engines') ? [{ support: 'DEFAULT' }] : undefined));
    await participant.preflight();
    expect(tables.count).toBe(2);
    expect(server.log).toEqual([sql.INNODB_SUPPORT, sql.BOOKKEEPING_TABLES, sql.CREATE_MARKERS, sql.CREATE_BARRIER]);
    expect(sql.CREATE_MARKERS).toMatch(/ascii_bin[\s\S]*engine=InnoDB$/);
  });

  it('ensureBookkeeping skips the DDL when both tables exist, and runs once', async () => {
    const { server, participant } = setup();
    bookkeepingTables(server, 2);
    await Promise.all([participant.ensureBookkeeping(), participant.ensureBookkeeping()]);
    await participant.ensureBookkeeping();
    expect(server.log).toEqual([sql.BOOKKEEPING_TABLES]);
  });

  it('listInDoubt: a local-only user without XA RECOVER rights has nothing in doubt; in XA mode that stays an error', async () => {
    const denied = (text: string) => (text === 'XA RECOVER' ? myError(1227, 'ER_SPECIFIC_ACCESS_DENIED_ERROR') : undefined);
    const lo = setup(1_000, true);
    lo.server.handlers.push(denied);
    expect(await lo.participant.listInDoubt()).toEqual([]);
    const xa = setup();
    xa.server.handlers.push(denied);
    await expect(xa.participant.listInDoubt()).rejects.toMatchObject({ code: 'TXC_XA_RECOVER_DENIED' });
    lo.server.handlers = [(text) => (text === 'XA RECOVER' ? myError(undefined, 'ECONNRESET', true) : undefined)];
    await expect(lo.participant.listInDoubt()).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE' });
  });

  it('listMarkers escapes the prefix and maps created_ms; deleteMarkers batches the keys', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    const seen: unknown[][] = [];
    server.handlers.unshift((text, values) => {
      if (text === sql.LIST_MARKERS) return (seen.push(values ?? []), [{ gtrid: 'p_1', outcome: 'abort', created_ms: '1700000000123' }]);
      if (text === sql.DELETE_MARKERS) return (seen.push(values ?? []), okPacket(1));
      return undefined;
    });
    expect(await participant.listMarkers('p_', 5)).toEqual([{ gtrid: 'p_1', outcome: 'abort', createdAt: 1700000000123 }]);
    expect(seen[0]).toEqual(['p!_%', 5]);
    const many = Array.from({ length: sql.DELETE_MARKERS_BATCH * 2 + 1 }, (_, i) => `txc1.x.${i}`);
    await participant.deleteMarkers(many);
    expect(seen.slice(1).map((v) => (v[0] as string[]).length)).toEqual([sql.DELETE_MARKERS_BATCH, sql.DELETE_MARKERS_BATCH, 1]);
    expect(pool.conns.at(-1)?.ends).toEqual(['release']);
    const before = pool.conns.length;
    await participant.deleteMarkers([]);
    await expect(participant.deleteMarkers(['no spaces allowed'])).rejects.toMatchObject({ code: 'TXC_ID_INVALID' });
    expect(pool.conns.length).toBe(before);
  });
});

describe('classifyMysqlError', () => {
  it.each([
    [1397, 'unknown-xid', false],
    [1402, 'rolled-back', true],
    [1613, 'rolled-back', true],
    [1614, 'rolled-back', true],
    [1213, 'deadlock', true],
    [1205, 'transient', true],
    [1399, 'xa-state', false],
    [1227, 'access-denied', false],
    [1044, 'access-denied', false],
    [1927, 'connection', true],
    [1062, 'refused', false],
  ])('errno %i is %s', (errno, kind, retryable) => {
    expect(classifyMysqlError(myError(errno))).toMatchObject({ kind, errno, retryable });
  });

  it('classifies client-side failures by code and the fatal flag, ignoring negative errnos', () => {
    expect(classifyMysqlError(myError(-111, 'ECONNREFUSED', true))).toEqual({ kind: 'connection', code: 'ECONNREFUSED', retryable: true });
    expect(classifyMysqlError(myError(undefined, 'PROTOCOL_CONNECTION_LOST', true))).toMatchObject({ kind: 'connection' });
    expect(classifyMysqlError(Object.assign(new Error("Can't add new command when connection is in closed state"), { fatal: true }))).toMatchObject({
      kind: 'connection',
    });
    // A fatal handshake error with a known errno keeps its meaning (bad credentials are not retryable).
    expect(classifyMysqlError(myError(1045, 'ER_ACCESS_DENIED_ERROR', true))).toMatchObject({ kind: 'access-denied', retryable: false });
    expect(classifyMysqlError(new TypeError('bad parameter'))).toEqual({ kind: 'refused', retryable: false });
  });
});
