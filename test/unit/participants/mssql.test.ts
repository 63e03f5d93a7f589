import { pino } from 'pino';
import { ISOLATION_LEVEL } from 'tedious';
import { afterEach, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { barrierRangeBefore, branchXid, newGtrid, type Xid } from '../../../coordinator/xid.js';
import type { Branch } from '../../../participants/participant.js';
import { READ_COMMITTED, tediousConnectionConfig } from '../../../participants/mssql/connection-config.js';
import { classifyMssqlError } from '../../../participants/mssql/errors.js';
import { createMssqlParticipant } from '../../../participants/mssql/index.js';
import { tediousParameter } from '../../../participants/mssql/parameters.js';
import { MssqlParticipant } from '../../../participants/mssql/participant.js';
import { createSessionPool } from '../../../participants/mssql/pool.js';
import { DELETE_BARRIERS, INSERT_MARKER, LIST_MARKERS, WRITE_CHECK } from '../../../participants/mssql/sql.js';
import { FAKE_TYPES, FakeTediousServer, serverError, tediousError } from '../../fakes/fake-tedious.js';

const logger = pino({ level: 'silent' });
const UUID = '0190d5a8-7b3c-7def-8123-456789abcdef';
const GTRID = newGtrid('unit', () => UUID);
const XID: Xid = branchXid(GTRID, 0);
const OTHER_XID: Xid = branchXid(newGtrid('unit', () => '0190d5a8-7b3c-7def-8123-456789abcdee'), 0);
const URL_ = 'mssql://app:s3cret@db.internal:1433/erp?encrypt=true&trustServerCertificate=false';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(opts: { max?: number; acquireTimeoutMs?: number; queryTimeoutMs?: number } = {}) {
  const server = new FakeTediousServer();
  const settings = { max: opts.max ?? 4, acquireTimeoutMs: opts.acquireTimeoutMs ?? 1_000, queryTimeoutMs: opts.queryTimeoutMs ?? 5_000 };
  const config = tediousConnectionConfig('ms1', URL_, settings);
  const pool = createSessionPool({ driver: server.driver(), config, max: settings.max, acquireTimeoutMs: settings.acquireTimeoutMs, logger });
  const participant = new MssqlParticipant('ms1', pool, { acquireTimeoutMs: settings.acquireTimeoutMs, logger, types: FAKE_TYPES });
  const branches: Branch[] = [];
  const begin = async (xid: Xid = XID): Promise<Branch> => {
    const b = await participant.beginLocal(xid);
    branches.push(b);
    return b;
  };
  cleanups.push(async () => {
    for (const b of branches) b.release(true);
    await participant.close();
  });
  return { server, participant, begin };
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

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return;
    await tick();
  }
  throw new Error('condition not reached');
}

describe('SQL Server participant (fake tedious)', () => {
  it('is one-phase: local transactions, nothing in doubt', async () => {
    const { participant } = setup();
    expect(participant.driver).toBe('mssql');
    expect(participant.capabilities).toEqual({ twoPhase: false, localTransactions: true });
    expect(await participant.listInDoubt()).toEqual([]);
  });

  it('begins a local transaction and runs statements with @p parameters, rows keyed by column name', async () => {
    const { server, begin } = setup();
    server.on(/^select id, name/, { rows: [{ id: 7, name: 'a' }] });
    const b = await begin();
    expect(server.log).toEqual(['BEGIN']);
    const r = await b.query('select id, name from t where id = @p1 and name = @p2 and flag = @p3', [7, 'a', true]);
    expect(r).toEqual({ rows: [{ id: 7, name: 'a' }], rowCount: 1 });
    const st = server.statements[0];
    expect(st?.kind).toBe('rpc');
    expect(st?.params.map((p) => [p.name, p.type.name, p.value])).toEqual([
      ['p1', 'Int', 7],
      ['p2', 'NVarChar', 'a'],
      ['p3', 'Bit', true],
    ]);
    // Without parameters the text goes as a plain batch (so #temp tables outlive it).
    await b.query('create table #t (x int)');
    expect(server.statements[1]?.kind).toBe('batch');
    await b.rollback();
  });

  it('returns the rows of the last result set and the total row count', async () => {
    const { server, begin } = setup();
    server.on(/^insert .*; select/, { rows: [{ id: 42 }], rowCount: 2 });
    const b = await begin();
    expect(await b.query('insert into t values (@p1); select scope_identity() as id', [1])).toEqual({ rows: [{ id: 42 }], rowCount: 2 });
    await b.rollback();
  });

  it('maps JS values to tedious types', () => {
    const t = (v: unknown) => {
      const p = tediousParameter(v, FAKE_TYPES);
      return [p.type.name, p.value];
    };
    const date = new Date('2025-03-04T05:06:07.089Z');
    const buf = Buffer.from([1, 2, 3]);
    expect(t(null)).toEqual(['NVarChar', null]);
    expect(t(undefined)).toEqual(['NVarChar', null]);
    expect(t(false)).toEqual(['Bit', false]);
    expect(t(-2_147_483_648)).toEqual(['Int', -2_147_483_648]);
    expect(t(2_147_483_648)).toEqual(['BigInt', 2_147_483_648n]);
    expect(t(Number.MAX_SAFE_INTEGER)).toEqual(['BigInt', BigInt(Number.MAX_SAFE_INTEGER)]);
    expect(t(2 ** 60)).toEqual(['Float', 2 ** 60]);
    expect(t(1.5)).toEqual(['Float', 1.5]);
    expect(t(12n)).toEqual(['BigInt', 12n]);
    expect(t('x')).toEqual(['NVarChar', 'x']);
    expect(t(date)).toEqual(['DateTime2', date]);
    expect(t(buf)).toEqual(['VarBinary', buf]);
    expect(t(new Uint8Array([9, 8]))).toEqual(['VarBinary', Buffer.from([9, 8])]);
    expect(() => t(Number.NaN)).toThrow(RangeError);
    expect(() => t(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => t(2n ** 63n)).toThrow(RangeError);
    expect(() => t(new Date('nope'))).toThrow(RangeError);
    expect(() => t({ a: 1 })).toThrow(TypeError);
    expect(() => t(Symbol('s'))).toThrow(TypeError);
  });

  it('refuses a value it cannot bind before sending anything; the transaction can then only roll back', async () => {
    const { server, begin } = setup();
    const b = await begin();
    const err = await rejection(b.query('select @p1', [{ not: 'bindable' }]));
    expect(err.code).toBe('TXC_QUERY_FAILED');
    expect(err.cause).toBeInstanceOf(TypeError);
    expect(server.statements).toHaveLength(0);
    expect((await rejection(b.commitOnePhase())).code).toBe('TXC_COMMIT_FAILED');
    expect(server.log).toEqual(['BEGIN', 'ROLLBACK']);
  });

  it('runs the statements of one branch one at a time, in call order', async () => {
    const { server, begin } = setup();
    server.on(/^select @p1/, (s) => ({ rows: [{ v: s.values[0] }] }));
    const b = await begin();
    const results = await Promise.all([1, 2, 3].map((n) => b.query('select @p1 as v', [n])));
    expect(results.map((r) => r.rows[0]?.v)).toEqual([1, 2, 3]);
    await b.commitOnePhase();
  });

  describe('commit and rollback', () => {
    it('commitOnePhase commits and gives the connection back for reuse', async () => {
      const { server, begin } = setup();
      const b = await begin();
      expect(await b.insertMarker?.(GTRID, 'commit')).toBe('inserted');
      await b.commitOnePhase();
      expect(server.log.filter((l) => l === 'BEGIN' || l === 'COMMIT')).toEqual(['BEGIN', 'COMMIT']);
      expect(server.markers.get(GTRID)?.outcome).toBe('commit');
      const next = await begin(OTHER_XID);
      await next.rollback();
      expect(server.connections).toHaveLength(1);
    });

    it('rollback discards the work, is idempotent, and a later release is harmless', async () => {
      const { server, begin } = setup();
      const b = await begin();
      await b.insertMarker?.(GTRID, 'commit');
      await b.rollback();
      await b.rollback();
      b.release();
      expect(server.markers.size).toBe(0);
      expect(server.log.filter((l) => l === 'ROLLBACK')).toHaveLength(1);
      expect(server.connections[0]?.closed).toBe(false);
      expect((await rejection(b.query('select 1'))).code).toBe('TXC_TRANSACTION_CLOSED');
    });

    it('release of an active branch closes its connection, which rolls it back, and it is not reused', async () => {
      const { server, begin } = setup();
      const b = await begin();
      await b.insertMarker?.(GTRID, 'commit');
      b.release();
      await tick();
      expect(server.connections[0]?.closed).toBe(true);
      expect(server.markerLocked(GTRID)).toBe(false);
      const next = await begin(OTHER_XID);
      await next.rollback();
      expect(server.connections).toHaveLength(2);
    });

    for (const applied of [true, false]) {
      it(`a connection lost during COMMIT is TXC_OUTCOME_UNKNOWN (server ${applied ? 'had' : 'had not'} committed), and the connection is dropped`, async () => {
        const { server, begin } = setup();
        const b = await begin();
        await b.insertMarker?.(GTRID, 'commit');
        server.failNext('commit', { kind: 'lose', applied });
        const err = await rejection(b.commitOnePhase());
        expect(err.code).toBe('TXC_OUTCOME_UNKNOWN');
        expect(err.retryable).toBe(false);
        expect((err.cause as { code?: string }).code).toBe('ECONNRESET');
        expect(server.markers.has(GTRID)).toBe(applied);
        const next = await begin(OTHER_XID);
        await next.rollback();
        expect(server.connections).toHaveLength(2);
      });
    }

    it('a COMMIT that gets no answer within queryTimeoutMs (ETIMEOUT) is TXC_OUTCOME_UNKNOWN', async () => {
      const { server, begin } = setup();
      const b = await begin();
      server.failNext('commit', { kind: 'timeout' });
      const err = await rejection(b.commitOnePhase());
      expect(err.code).toBe('TXC_OUTCOME_UNKNOWN');
      expect(err.details.code).toBe('ETIMEOUT');
      await tick();
      expect(server.connections[0]?.closed).toBe(true);
    });

    it('a COMMIT the server refuses is TXC_COMMIT_FAILED, and the transaction is rolled back', async () => {
      const { server, begin } = setup();
      const b = await begin();
      await b.insertMarker?.(GTRID, 'commit');
      server.failNext('commit', { kind: 'error', error: serverError(3930) });
      const err = await rejection(b.commitOnePhase());
      expect(err.code).toBe('TXC_COMMIT_FAILED');
      expect(err.details.number).toBe(3930);
      expect(server.log.slice(-1)).toEqual(['ROLLBACK']);
      expect(server.markers.size).toBe(0);
      expect(server.markerLocked(GTRID)).toBe(false);
    });

    it('a connection that broke before COMMIT fails the commit as retryable, without sending it', async () => {
      const { server, begin } = setup();
      const b = await begin();
      await b.query('select 1');
      server.connections[0]?.lose();
      await tick();
      const err = await rejection(b.commitOnePhase());
      expect(err.code).toBe('TXC_COMMIT_FAILED');
      expect(err.retryable).toBe(true);
      expect(server.log).not.toContain('COMMIT');
    });

    it('a duplicate key in user SQL is a non-retryable TXC_QUERY_FAILED carrying the server error number', async () => {
      const { server, begin } = setup();
      server.on(/^insert into t/, serverError(2627, 14));
      const b = await begin();
      const err = await rejection(b.query('insert into t values (@p1)', [1]));
      expect(err.code).toBe('TXC_QUERY_FAILED');
      expect(err.retryable).toBe(false);
      expect(err.details).toMatchObject({ participant: 'ms1', number: 2627, code: 'EREQUEST' });
      await b.rollback();
    });

    it('after a failed statement later statements are refused and COMMIT rolls back', async () => {
      const { server, begin } = setup();
      server.on(/^insert into child/, serverError(547));
      const b = await begin();
      const failed = await rejection(b.query('insert into child values (@p1)', [1]));
      expect(failed.code).toBe('TXC_QUERY_FAILED');
      expect(failed.details.number).toBe(547);
      expect(failed.retryable).toBe(false);
      const refused = await rejection(b.query('insert into other values (1)'));
      expect(refused.code).toBe('TXC_QUERY_FAILED');
      expect(server.log.filter((l) => l.startsWith('insert'))).toHaveLength(1);
      const err = await rejection(b.commitOnePhase());
      expect(err.code).toBe('TXC_COMMIT_FAILED');
      expect(err.cause).toBe(failed.cause);
      expect(server.log.slice(-1)).toEqual(['ROLLBACK']);
    });

    it('a deadlock victim (1205, transaction already rolled back by the server) is retryable, and the connection is reused', async () => {
      const { server, begin } = setup();
      server.on(/^update/, (s) => {
        // The server ends the transaction itself.
        const tx = s.connection.tx;
        if (tx) server.end(tx);
        s.connection.tx = undefined;
        return serverError(1205, 13);
      });
      const b = await begin();
      const failed = await rejection(b.query('update t set v = 1'));
      expect(failed.retryable).toBe(true);
      const err = await rejection(b.commitOnePhase());
      expect(err.code).toBe('TXC_COMMIT_FAILED');
      expect(err.retryable).toBe(true);
      const next = await begin(OTHER_XID);
      await next.rollback();
      expect(server.connections).toHaveLength(1);
    });

    it('a statement timeout is a retryable TXC_QUERY_FAILED and the connection is not reused', async () => {
      const { server, begin } = setup();
      server.failNext('query', { kind: 'timeout' }, /waitfor/);
      const b = await begin();
      const err = await rejection(b.query("waitfor delay '00:01'"));
      expect(err.code).toBe('TXC_QUERY_FAILED');
      expect(err.retryable).toBe(true);
      expect(err.details.code).toBe('ETIMEOUT');
      await b.rollback();
      await tick();
      expect(server.connections[0]?.closed).toBe(true);
    });

    it('a COMMIT sent through query() makes the outcome unknown; a nested BEGIN TRAN is rolled back', async () => {
      const { server, begin } = setup();
      const b = await begin();
      await b.insertMarker?.(GTRID, 'commit');
      await b.query('commit');
      expect((await rejection(b.commitOnePhase())).code).toBe('TXC_OUTCOME_UNKNOWN');
      expect(server.markers.get(GTRID)?.outcome).toBe('commit');

      const nested = await begin(OTHER_XID);
      await nested.query('begin tran');
      await nested.insertMarker?.(OTHER_XID.gtrid, 'commit');
      expect((await rejection(nested.commitOnePhase())).code).toBe('TXC_COMMIT_FAILED');
      expect(server.markers.has(OTHER_XID.gtrid)).toBe(false);
    });
  });

  describe('hasWritten', () => {
    it('plain SELECTs are read-only without asking the server', async () => {
      const { server, begin } = setup();
      const b = await begin();
      await b.query('select * from t where id = @p1', [1]);
      expect(await b.hasWritten()).toBe(false);
      expect(server.log).not.toContain(WRITE_CHECK);
      await b.commitOnePhase();
    });

    it('DML that affected rows is a write', async () => {
      const { server, begin } = setup();
      server.on(/^insert/, { rowCount: 1 });
      const b = await begin();
      await b.query('insert into t values (@p1)', [1]);
      expect(await b.hasWritten()).toBe(true);
      expect(server.log).not.toContain(WRITE_CHECK);
      await b.rollback();
    });

    it('for anything else the server is asked; no answer (no VIEW SERVER STATE) counts as written', async () => {
      const { server, begin } = setup();
      const b = await begin();
      await b.query('update t set v = 1 where id = -1');
      expect(await b.hasWritten()).toBe(false);
      expect(server.log).toContain(WRITE_CHECK);
      await b.rollback();

      server.writeCheck = () => null;
      const c = await begin(OTHER_XID);
      await c.query('exec dbo.do_things');
      expect(await c.hasWritten()).toBe(true);
      await c.rollback();
    });

    it('a marker or barrier insert is a write; a failed branch answers true', async () => {
      const { server, begin } = setup();
      const b = await begin();
      await b.insertBarrier?.({ gid: GTRID, step: 's1', op: 'action', origin: 'action' });
      expect(await b.hasWritten()).toBe(true);
      await b.rollback();
      server.on(/^select boom/, serverError(208));
      const c = await begin(OTHER_XID);
      await rejection(c.query('select boom'));
      expect(await c.hasWritten()).toBe(true);
      await c.rollback();
    });
  });

  describe('commit markers', () => {
    it('insertMarker inserts, and then reports the outcome of the committed row (existing commit)', async () => {
      const { begin } = setup();
      const a = await begin();
      expect(await a.insertMarker?.(GTRID, 'commit')).toBe('inserted');
      await a.commitOnePhase();
      const recovery = await begin(branchXid(GTRID, 9999));
      expect(await recovery.insertMarker?.(GTRID, 'abort')).toBe('commit');
      await recovery.rollback();
    });

    it('a commit marker arriving after recovery committed an abort marker reports abort (existing abort)', async () => {
      const { server, begin } = setup();
      const recovery = await begin(branchXid(GTRID, 9999));
      expect(await recovery.insertMarker?.(GTRID, 'abort')).toBe('inserted');
      await recovery.commitOnePhase();
      const late = await begin();
      expect(await late.insertMarker?.(GTRID, 'commit')).toBe('abort');
      await late.rollback();
      expect(server.markers.get(GTRID)?.outcome).toBe('abort');
    });

    it('binds the key as varchar(64) and the outcome as varchar(8)', async () => {
      const { server, begin } = setup();
      const b = await begin();
      await b.insertMarker?.(GTRID, 'commit');
      const st = server.statements.find((s) => s.sql === INSERT_MARKER);
      expect(st?.params.map((p) => [p.type.name, p.value, p.options?.length])).toEqual([
        ['VarChar', GTRID, 64],
        ['VarChar', 'commit', 8],
      ]);
      await b.rollback();
    });

    it('waits for a concurrent uncommitted insert of the same gtrid, then reports its outcome', async () => {
      const { server, begin } = setup();
      const a = await begin();
      expect(await a.insertMarker?.(GTRID, 'commit')).toBe('inserted');
      const recovery = await begin(branchXid(GTRID, 9999));
      let settled = false;
      const answer = recovery.insertMarker?.(GTRID, 'abort').then((r) => {
        settled = true;
        return r;
      });
      await waitFor(() => server.lockWaits === 1);
      for (let i = 0; i < 5; i++) await tick();
      expect(settled).toBe(false);
      await a.commitOnePhase();
      expect(await answer).toBe('commit');
      await recovery.rollback();
    });

    it('when the concurrent insert rolls back, the waiting insert inserts its own outcome', async () => {
      const { server, begin } = setup();
      const a = await begin();
      await a.insertMarker?.(GTRID, 'commit');
      const recovery = await begin(branchXid(GTRID, 9999));
      const answer = recovery.insertMarker?.(GTRID, 'abort');
      await waitFor(() => server.lockWaits === 1);
      await a.rollback();
      expect(await answer).toBe('inserted');
      await recovery.commitOnePhase();
      expect(server.markers.get(GTRID)?.outcome).toBe('abort');
    });

    it('a failing bookkeeping statement is TXC_QUERY_FAILED and the transaction can then only roll back', async () => {
      const { server, begin } = setup();
      // 50000: INSERT_MARKER gave up after the row vanished between its insert and its read.
      server.on(INSERT_MARKER, serverError(50000));
      const b = await begin();
      const err = await rejection(b.insertMarker?.(GTRID, 'commit') ?? Promise.resolve());
      expect(err.code).toBe('TXC_QUERY_FAILED');
      expect(err.details.number).toBe(50000);
      expect((await rejection(b.commitOnePhase())).code).toBe('TXC_COMMIT_FAILED');
      expect(server.markers.size).toBe(0);
    });

    it('an insert of another gtrid does not wait for an uncommitted marker', async () => {
      const { server, begin } = setup();
      const a = await begin();
      await a.insertMarker?.(GTRID, 'commit');
      const b = await begin(OTHER_XID);
      expect(await b.insertMarker?.(OTHER_XID.gtrid, 'commit')).toBe('inserted');
      expect(server.lockWaits).toBe(0);
      await Promise.all([a.commitOnePhase(), b.commitOnePhase()]);
      expect(server.markers.size).toBe(2);
    });

    it('rejects keys that are not printable ASCII within the column length', async () => {
      const { begin } = setup();
      const b = await begin();
      expect((await rejection(b.insertMarker?.('x'.repeat(65), 'commit') ?? Promise.resolve())).code).toBe('TXC_ID_INVALID');
      expect((await rejection(b.insertBarrier?.({ gid: 'g', step: 'schritt-ü', op: 'action', origin: 'action' }) ?? Promise.resolve())).code).toBe(
        'TXC_ID_INVALID',
      );
      await b.rollback();
    });

    it('lists markers by prefix (LIKE wildcards escaped), oldest first, and deletes them in chunks', async () => {
      const { server, participant } = setup();
      server.markers.set('txc1.a_b.2', { outcome: 'abort', createdAt: new Date(2_000) });
      server.markers.set('txc1.a_b.1', { outcome: 'commit', createdAt: new Date(1_000) });
      server.markers.set('txc1.aXb.3', { outcome: 'commit', createdAt: new Date(500) });
      expect(await participant.listMarkers?.('txc1.a_b.', 10)).toEqual([
        { gtrid: 'txc1.a_b.1', outcome: 'commit', createdAt: 1_000 },
        { gtrid: 'txc1.a_b.2', outcome: 'abort', createdAt: 2_000 },
      ]);
      const list = server.statements.find((s) => s.sql === LIST_MARKERS);
      expect(list?.values).toEqual(['txc1.a\\_b.%', 10]);
      expect(await participant.listMarkers?.('txc1.a_b.', 1)).toHaveLength(1);

      const many = Array.from({ length: 1_100 }, (_, i) => `txc1.gc.${i}`);
      await participant.deleteMarkers?.([...many, 'txc1.a_b.1', 'txc1.a_b.1']);
      const deletes = server.statements.filter((s) => s.sql.startsWith('delete from txcoord_markers'));
      expect(deletes.map((d) => d.values.length)).toEqual([500, 500, 101]);
      expect([...server.markers.keys()].sort()).toEqual(['txc1.aXb.3', 'txc1.a_b.2']);
    });

    it('deleteBarriers: nothing (and no table created) while the table is missing, then the rows of the range, compared by bytes', async () => {
      const { server, participant } = setup();
      const range = barrierRangeBefore('c1', 0x2000);
      expect(await participant.deleteBarriers?.(range)).toBe(0);
      expect(server.tables.barrier).toBe(false);
      server.tables.barrier = true;
      for (const gid of ['txc1.c1.000000001000aa', 'txc1.c1.000000003000aa', 'txc1.c10.000000001000aa']) server.barriers.set(`${gid}|s|action`, 'action');
      expect(await participant.deleteBarriers?.(range)).toBe(1);
      expect([...server.barriers.keys()].sort()).toEqual(['txc1.c1.000000003000aa|s|action', 'txc1.c10.000000001000aa|s|action']);
      const sent = server.statements.find((s) => s.sql === DELETE_BARRIERS);
      expect(sent?.values).toEqual(['txc1.c1.', 'txc1.c1.000000002000']);
      await expect(participant.deleteBarriers?.({ from: 'txc1.c1.', before: 'txc1.c2.000000002000' })).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_ID_INVALID'));
    });
  });

  describe('saga barrier', () => {
    it('reports the origin of an existing row: a duplicate action, and a late action after a null compensation', async () => {
      const { server, begin } = setup();
      const step = { gid: GTRID, step: 'reserve' };
      const c = await begin();
      // The compensation found no action: it writes the action's row as a placeholder.
      expect(await c.insertBarrier?.({ ...step, op: 'compensate', origin: 'compensate' })).toBe('inserted');
      expect(await c.insertBarrier?.({ ...step, op: 'action', origin: 'compensate' })).toBe('inserted');
      await c.commitOnePhase();
      const late = await begin(OTHER_XID);
      expect(await late.insertBarrier?.({ ...step, op: 'action', origin: 'action' })).toBe('compensate');
      await late.rollback();

      const a = await begin();
      expect(await a.insertBarrier?.({ gid: GTRID, step: 'ship', op: 'action', origin: 'action' })).toBe('inserted');
      await a.commitOnePhase();
      const again = await begin(OTHER_XID);
      expect(await again.insertBarrier?.({ gid: GTRID, step: 'ship', op: 'action', origin: 'action' })).toBe('action');
      await again.rollback();
      expect(server.barriers.get(`${GTRID}|ship|action`)).toBe('action');
    });

    it('waits for a concurrent uncommitted barrier row of the same key', async () => {
      const { server, begin } = setup();
      const row = { gid: GTRID, step: 'pay', op: 'action', origin: 'action' } as const;
      const a = await begin();
      await a.insertBarrier?.(row);
      const b = await begin(OTHER_XID);
      const answer = b.insertBarrier?.({ ...row, origin: 'compensate' });
      await waitFor(() => server.lockWaits === 1);
      await a.commitOnePhase();
      expect(await answer).toBe('action');
      await b.rollback();
    });
  });

  describe('two-phase calls', () => {
    it('prepare and commitPrepared are TXC_UNSUPPORTED naming the participant', async () => {
      const { participant, begin } = setup();
      const b = await begin();
      for (const p of [b.prepare(), b.commitPrepared(), participant.commitPrepared(XID), participant.rollbackPrepared(XID)]) {
        const err = await rejection(p);
        expect(err.code).toBe('TXC_UNSUPPORTED');
        expect(err.details.participant).toBe('ms1');
        expect(err.message).toContain('ms1');
      }
      // The branch itself is untouched and still commits.
      await b.commitOnePhase();
    });
  });

  describe('preflight and bookkeeping', () => {
    it('creates the bookkeeping tables and checks the grants', async () => {
      const { server, participant } = setup();
      await participant.preflight();
      expect(server.tables).toEqual({ markers: true, barrier: true });
      await participant.ensureBookkeeping?.();
    });

    it('without CREATE TABLE permission preflight fails, not retryable, naming the GRANT', async () => {
      const { server, participant } = setup();
      server.createError = serverError(262, 14);
      const err = await rejection(participant.preflight());
      expect(err.code).toBe('TXC_PERMISSION_DENIED');
      expect(err.retryable).toBe(false);
      expect(err.details.number).toBe(262);
      expect(err.message).toContain('GRANT CREATE TABLE TO [app]; GRANT ALTER ON SCHEMA::[dbo] TO [app];');
    });

    it('without DELETE on an existing table preflight fails naming the GRANT', async () => {
      const { server, participant } = setup();
      server.tables.markers = true;
      server.tables.barrier = true;
      server.grants.set('barrier_delete', 0);
      const err = await rejection(participant.preflight());
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('GRANT SELECT, INSERT, DELETE ON [dbo].[txcoord_barrier] TO [app];');
      expect(err.message).not.toContain('txcoord_markers]');
    });

    it('an unreachable server is a retryable TXC_PARTICIPANT_UNAVAILABLE; a refused login is not retryable', async () => {
      const { server, participant } = setup();
      server.failNext('connect', { kind: 'error', error: tediousError('ESOCKET', 'ConnectionError') });
      const down = await rejection(participant.preflight());
      expect(down.code).toBe('TXC_PARTICIPANT_UNAVAILABLE');
      expect(down.retryable).toBe(true);
      server.failNext('connect', { kind: 'error', error: tediousError('ELOGIN', 'ConnectionError', { isTransient: false }) });
      const login = await rejection(participant.preflight());
      expect(login.retryable).toBe(false);
    });
  });

  describe('pool', () => {
    it('reports TXC_POOL_TIMEOUT when no connection frees up in time', async () => {
      const { server, begin } = setup({ max: 1, acquireTimeoutMs: 50 });
      const holder = await begin();
      const err = await rejection(begin(OTHER_XID));
      expect(err.code).toBe('TXC_POOL_TIMEOUT');
      expect(err.retryable).toBe(true);
      await holder.rollback();
      const next = await begin(OTHER_XID);
      await next.rollback();
      expect(server.connections).toHaveLength(1);
    });

    it('destroys a connection that died while idle instead of handing it out', async () => {
      const { server, begin } = setup();
      const a = await begin();
      await a.commitOnePhase();
      server.connections[0]?.lose();
      await tick();
      const b = await begin(OTHER_XID);
      await b.query('select 1');
      await b.commitOnePhase();
      expect(server.connections).toHaveLength(2);
    });

    it('passes queryTimeoutMs to tedious as requestTimeout, at READ COMMITTED, XACT_ABORT off', async () => {
      const { server, begin } = setup({ queryTimeoutMs: 1234 });
      const b = await begin();
      await b.rollback();
      const options = server.configs[0]?.options;
      expect(options?.requestTimeout).toBe(1234);
      expect(options?.isolationLevel).toBe(ISOLATION_LEVEL.READ_COMMITTED);
      expect(options?.abortTransactionOnError).toBe(false);
    });

    it('refuses work after close', async () => {
      const { participant } = setup();
      await participant.close();
      expect((await rejection(participant.begin(XID))).code).toBe('TXC_PARTICIPANT_UNAVAILABLE');
    });
  });
});

describe('SQL Server connection string', () => {
  const settings = { max: 10, acquireTimeoutMs: 10_000, queryTimeoutMs: 60_000 };

  it('parses user, password, host, port, database and TLS options', () => {
    const c = tediousConnectionConfig('ms1', 'mssql://app%40corp:p%40ss%3Aword@[::1]:14330/erp?encrypt=strict&trustServerCertificate=true', settings);
    expect(c.server).toBe('::1');
    expect(c.authentication.options).toEqual({ userName: 'app@corp', password: 'p@ss:word' });
    expect(c.options).toMatchObject({ port: 14330, database: 'erp', encrypt: 'strict', trustServerCertificate: true, requestTimeout: 60_000, appName: 'txcoord:ms1' });
  });

  it('defaults to port 1433, encrypt=true, trustServerCertificate=false and the login database', () => {
    const c = tediousConnectionConfig('ms1', 'mssql://app:pw@db', settings);
    expect(c.options).toMatchObject({ port: 1433, encrypt: true, trustServerCertificate: false });
    expect(c.options.database).toBeUndefined();
    expect(READ_COMMITTED).toBe(ISOLATION_LEVEL.READ_COMMITTED);
  });

  it('rejects bad strings with TXC_CONFIG_INVALID, never echoing the password', () => {
    for (const bad of ['not a url s3cret', 'postgres://u:s3cret@h/db', 'mssql://u:s3cret@h/db?encrypt=maybe', 'mssql://u:s3cret@h/db?foo=1', 'mssql://:s3cret@h/db']) {
      let err: unknown;
      try {
        tediousConnectionConfig('ms1', bad, settings);
      } catch (e) {
        err = e;
      }
      expect(TxcError.is(err, 'TXC_CONFIG_INVALID')).toBe(true);
      if (bad.startsWith('mssql') || bad.startsWith('postgres')) expect((err as Error).message).not.toContain('s3cret');
    }
  });

  it('createMssqlParticipant builds a one-phase participant without connecting', async () => {
    const p = createMssqlParticipant('ms1', { driver: 'mssql', connectionString: 'mssql://app:pw@127.0.0.1:1/db', pool: { max: 2 } }, { logger });
    expect(p.capabilities).toEqual({ twoPhase: false, localTransactions: true });
    await p.close();
    expect(() => createMssqlParticipant('bad name', { driver: 'mssql', connectionString: 'mssql://a:b@h/d' }, { logger })).toThrow(TxcError);
  });
});

describe('classifyMssqlError', () => {
  const cases: Array<[string, unknown, string, boolean]> = [
    ['deadlock victim', serverError(1205, 13), 'deadlock', true],
    ['lock timeout', serverError(1222), 'transient', true],
    ['duplicate key', serverError(2627, 14), 'duplicate', false],
    ['unique index', serverError(2601, 14), 'duplicate', false],
    ['permission', serverError(229, 14), 'access-denied', false],
    ['constraint', serverError(547), 'refused', false],
    ['fatal severity', serverError(9001, 21), 'connection', true],
    ['socket', tediousError('ESOCKET', 'ConnectionError'), 'connection', true],
    ['closed', tediousError('ECLOSE'), 'connection', true],
    ['request timeout', tediousError('ETIMEOUT'), 'connection', true],
    ['invalid state', tediousError('EINVALIDSTATE'), 'connection', true],
    ['raw reset', Object.assign(new Error('x'), { code: 'ECONNRESET' }), 'connection', true],
    ['bad parameter', tediousError('EPARAM'), 'refused', false],
    ['login failed', tediousError('ELOGIN', 'ConnectionError', { isTransient: false }), 'access-denied', false],
    ['transient login', tediousError('ELOGIN', 'ConnectionError', { isTransient: true }), 'connection', true],
    ['TLS', tediousError('EENCRYPT', 'ConnectionError'), 'connection', false],
    ['bind TypeError', new TypeError('x'), 'refused', false],
    ['no code at all', new Error('x'), 'connection', true],
    ['several errors: the most severe wins', new AggregateError([serverError(2627, 14), serverError(1205, 13)]), 'deadlock', true],
  ];
  for (const [name, err, kind, retryable] of cases) {
    it(name, () => {
      const c = classifyMssqlError(err);
      expect(c.kind).toBe(kind);
      expect(c.retryable).toBe(retryable);
    });
  }
});
