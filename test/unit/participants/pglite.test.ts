import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { branchXid, newGtrid, toPgGid, type Xid } from '../../../coordinator/xid.js';
import type { Branch } from '../../../participants/participant.js';
import type { PgliteDriver, PgliteOpenOptions, PgliteResults } from '../../../participants/pglite/driver.js';
import { classifyPgliteError, queryFailed } from '../../../participants/pglite/errors.js';
import { createPgliteParticipant } from '../../../participants/pglite/index.js';
import { ConnectionLock } from '../../../participants/pglite/lock.js';
import { PgliteParticipant } from '../../../participants/pglite/participant.js';
import * as sql from '../../../participants/pglite/sql.js';

const logger = pino({ level: 'silent' });
const xidOf = (n: number): Xid => branchXid(newGtrid('unit', () => `0190d5a8-7b3c-7def-8123-${String(n).padStart(12, '0')}`), 0);
const XID = xidOf(1);
const GID = toPgGid(XID);

function pgError(code: string): Error {
  return Object.assign(new Error(`sqlstate ${code}`), { code });
}

const tag = (command: string, rows: Record<string, unknown>[] = [], affectedRows?: number): PgliteResults => ({
  command,
  rows,
  ...(affectedRows === undefined ? {} : { affectedRows }),
});

type Handler = (sql: string, params: unknown[] | undefined) => PgliteResults | Error | Promise<PgliteResults> | undefined;

/** A PGlite stand-in: one session with PostgreSQL's transaction-block rules and prepared gids. */
class FakePglite implements PgliteDriver {
  readonly log: string[] = [];
  readonly prepared = new Set<string>();
  handlers: Handler[] = [];
  inTx = false;
  failed = false;
  assigned = false;
  maxPrepared = 64;
  closed = false;

  isInTransaction(): boolean {
    return this.inTx;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async query(sql: string, params?: unknown[]): Promise<PgliteResults> {
    this.log.push(sql);
    const answer = this.answer(sql, params);
    if (answer instanceof Error) throw answer;
    return answer;
  }

  answer(sql: string, params: unknown[] | undefined): PgliteResults | Error | Promise<PgliteResults> {
    for (const h of this.handlers) {
      const a = h(sql, params);
      if (a !== undefined) return a;
    }
    if (sql === 'BEGIN') return (this.inTx = true), (this.failed = false), (this.assigned = false), tag('BEGIN');
    if (sql === 'COMMIT') {
      const failed = this.failed;
      this.inTx = this.failed = false;
      return tag(failed ? 'ROLLBACK' : 'COMMIT');
    }
    if (sql === 'ROLLBACK') return (this.inTx = this.failed = false), tag('ROLLBACK');
    if (this.failed) return pgError('25P02');
    if (sql.startsWith('select pg_current_xact_id()')) return (this.assigned = true), tag('SELECT', [{ xid: '777' }]);
    if (sql.startsWith('select pg_current_xact_id_if_assigned()')) return tag('SELECT', [{ xid: this.assigned ? '777' : null }]);
    if (sql.startsWith('select gid from pg_prepared_xacts')) return tag('SELECT', [...this.prepared].map((gid) => ({ gid })));
    if (sql === 'show max_prepared_transactions') return tag('SHOW', [{ max_prepared_transactions: String(this.maxPrepared) }]);
    const prepare = /^PREPARE TRANSACTION '(.+)'$/.exec(sql);
    if (prepare) {
      const ok = this.inTx && !this.failed;
      this.inTx = this.failed = false;
      if (ok) this.prepared.add(prepare[1] as string);
      return tag(ok ? 'PREPARE' : 'ROLLBACK');
    }
    const resolve = /^(COMMIT|ROLLBACK) PREPARED '(.+)'$/.exec(sql);
    if (resolve) return this.prepared.delete(resolve[2] as string) ? tag(resolve[1] as string) : pgError('42704');
    if (/fail/i.test(sql)) return (this.failed = this.inTx), pgError('23505');
    if (/^(insert|update|delete)/i.test(sql)) return (this.assigned = true), tag(sql.split(' ')[0]!.toUpperCase(), [], 1);
    return tag('SELECT', [{ one: 1 }]);
  }
}

function setup(options: { acquireTimeoutMs?: number; open?: (o: PgliteOpenOptions) => Promise<PgliteDriver>; localOnly?: boolean } = {}) {
  const db = new FakePglite();
  const open = vi.fn(options.open ?? (async () => db));
  const participant = new PgliteParticipant({
    name: 'lite',
    dataDir: '/tmp/unused',
    maxPreparedTransactions: 64,
    acquireTimeoutMs: options.acquireTimeoutMs ?? 1_000,
    logger,
    open,
    localOnly: options.localOnly ?? false,
  });
  return { db, open, participant };
}

/** The bookkeeping tables in the fake, matched by the exact statements of sql.ts (no transactional DDL). */
function bookkeepingTables(db: FakePglite, exists = true) {
  const state = { exists, markers: new Map<string, string>(), barrier: new Map<string, string>() };
  db.handlers.push((text, params) => {
    const v = (params ?? []).map(String);
    switch (text) {
      case sql.BOOKKEEPING_EXISTS:
        return tag('SELECT', [{ present: state.exists }]);
      case sql.CREATE_MARKERS:
      case sql.CREATE_BARRIER:
        state.exists = true;
        return tag('CREATE TABLE');
      case sql.INSERT_MARKER:
        if (state.markers.has(v[0]!)) return tag('INSERT', [], 0);
        state.markers.set(v[0]!, v[1]!);
        return tag('INSERT', [{ gtrid: v[0] }], 1);
      case sql.SELECT_MARKER:
        return tag('SELECT', state.markers.has(v[0]!) ? [{ outcome: state.markers.get(v[0]!) }] : []);
      case sql.INSERT_BARRIER: {
        const key = v.slice(0, 3).join('|');
        if (state.barrier.has(key)) return tag('INSERT', [], 0);
        state.barrier.set(key, v[3]!);
        return tag('INSERT', [{ gid: v[0] }], 1);
      }
      case sql.SELECT_BARRIER: {
        const key = v.join('|');
        return tag('SELECT', state.barrier.has(key) ? [{ origin: state.barrier.get(key) }] : []);
      }
      default:
        return undefined;
    }
  });
  return state;
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

/** Settles pending promise callbacks (the fake answers synchronously). */
const tick = () => new Promise((r) => setTimeout(r, 0));

afterEach(() => {
  vi.useRealTimers();
});

describe('ConnectionLock', () => {
  it('serves waiters in arrival order', async () => {
    const lock = new ConnectionLock();
    const first = await lock.acquire(1_000);
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) => lock.acquire(1_000).then((lease) => (order.push(n), lease)));
    expect(lock.waiting).toBe(3);
    first!.release();
    for (const w of waits) (await w)!.release();
    expect(order).toEqual([1, 2, 3]);
    expect(lock.held).toBe(false);
  });

  it('gives up after the timeout and leaves the queue intact', async () => {
    vi.useFakeTimers();
    const lock = new ConnectionLock();
    const holder = await lock.acquire(10);
    const late = lock.acquire(50);
    const patient = lock.acquire(10_000);
    await vi.advanceTimersByTimeAsync(60);
    expect(await late).toBeUndefined();
    expect(lock.waiting).toBe(1);
    holder!.release();
    const lease = await patient;
    expect(lease).toBeDefined();
    expect(lock.held).toBe(true);
  });

  it('ignores a second release of the same lease', async () => {
    const lock = new ConnectionLock();
    const a = await lock.acquire(10);
    const b = lock.acquire(1_000);
    const c = lock.acquire(1_000);
    a!.release();
    a!.release();
    await b;
    expect(lock.waiting).toBe(1);
    (await b)!.release();
    expect(await c).toBeDefined();
  });
});

describe('PgliteParticipant: opening', () => {
  it('opens lazily, once, shared by concurrent first callers', async () => {
    const { participant, open } = setup();
    expect(open).not.toHaveBeenCalled();
    await Promise.all([participant.preflight(), participant.listInDoubt(), participant.listInDoubt()]);
    expect(open).toHaveBeenCalledTimes(1);
    expect(open.mock.calls[0]![0]).toEqual({ dataDir: '/tmp/unused', maxPreparedTransactions: 64 });
  });

  it('reports a failed open as TXC_PARTICIPANT_UNAVAILABLE and tries again next time', async () => {
    const db = new FakePglite();
    let attempts = 0;
    const { participant } = setup({
      open: async () => {
        if (++attempts === 1) throw new Error('PGlite failed to initialize properly');
        return db;
      },
    });
    const err = await expectCode(participant.preflight(), 'TXC_PARTICIPANT_UNAVAILABLE');
    expect((err.cause as Error).message).toMatch(/initialize/);
    await participant.preflight();
    expect(attempts).toBe(2);
  });

  it('preflight refuses an instance without 2PC', async () => {
    const { participant, db } = setup();
    db.maxPrepared = 0;
    await expectCode(participant.preflight(), 'TXC_PREPARED_TRANSACTIONS_DISABLED');
  });
});

describe('PgliteParticipant: the single connection', () => {
  it('serializes branches FIFO: begin waits for the previous branch to finish', async () => {
    const { participant, db } = setup();
    const first = await participant.begin(xidOf(1));
    const order: string[] = [];
    const second = participant.begin(xidOf(2)).then((b) => (order.push('second'), b));
    const third = participant.begin(xidOf(3)).then((b) => (order.push('third'), b));
    await tick();
    expect(order).toEqual([]);
    await first.query('insert into t values (1)');
    await first.commitOnePhase();
    const b2 = await second;
    await tick();
    expect(order).toEqual(['second']);
    await b2.rollback();
    await (await third).rollback();
    expect(order).toEqual(['second', 'third']);
    expect(db.log.filter((s) => s === 'BEGIN')).toHaveLength(3);
  });

  it('times out with TXC_POOL_TIMEOUT (retryable) when the connection stays busy', async () => {
    const { participant } = setup({ acquireTimeoutMs: 30 });
    const holder = await participant.begin(xidOf(1));
    const err = await expectCode(participant.begin(xidOf(2)), 'TXC_POOL_TIMEOUT');
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ participant: 'lite', timeoutMs: 30 });
    await expectCode(participant.listInDoubt(), 'TXC_POOL_TIMEOUT');
    await holder.rollback();
    await (await participant.begin(xidOf(3))).rollback();
  });

  it('keeps the connection through phase two and frees it after COMMIT PREPARED', async () => {
    const { participant, db } = setup();
    const branch = await participant.begin(XID);
    await branch.query('update t set v = 1');
    expect(await branch.prepare()).toEqual({ localTxId: '777' });
    let next: Branch | undefined;
    const waiting = participant.begin(xidOf(2)).then((b) => (next = b));
    const recovery = participant.listInDoubt();
    await tick();
    expect(next).toBeUndefined();
    expect(await branch.commitPrepared()).toBe('done');
    await waiting;
    expect(next).toBeDefined();
    await next!.rollback();
    expect(await recovery).toEqual([]);
    expect(db.log).toContain(`COMMIT PREPARED '${GID}'`);
  });

  it('keeps the connection through phase two and frees it after ROLLBACK PREPARED', async () => {
    const { participant, db } = setup();
    const branch = await participant.begin(XID);
    await branch.query('update t set v = 1');
    await branch.prepare();
    let started = false;
    const waiting = participant.begin(xidOf(2)).then((b) => ((started = true), b));
    await tick();
    expect(started).toBe(false);
    await branch.rollback();
    await (await waiting).rollback();
    expect(db.log).toContain(`ROLLBACK PREPARED '${GID}'`);
    expect(db.prepared.size).toBe(0);
    await branch.rollback(); // already finished: a no-op
  });

  it('rolls a released open branch back before the next branch begins', async () => {
    const { participant, db } = setup();
    const branch = await participant.begin(xidOf(1));
    await branch.query('insert into t values (1)');
    const next = participant.begin(xidOf(2));
    branch.release();
    branch.release();
    await (await next).rollback();
    const begins = db.log.map((s, i) => [s, i] as const).filter(([s]) => s === 'BEGIN');
    const rollback = db.log.indexOf('ROLLBACK');
    expect(rollback).toBeGreaterThan(begins[0]![1]);
    expect(rollback).toBeLessThan(begins[1]![1]);
  });

  it('refuses branch methods out of protocol order', async () => {
    const { participant } = setup();
    const branch = await participant.begin(XID);
    await expectCode(branch.commitPrepared(), 'TXC_TRANSACTION_CLOSED');
    await branch.commitOnePhase();
    await expectCode(branch.query('select 1'), 'TXC_TRANSACTION_CLOSED');
    await expectCode(branch.prepare(), 'TXC_TRANSACTION_CLOSED');
  });
});

describe('PgliteParticipant: recovery required', () => {
  it('gates begin while prepared transactions exist, and reopens after the last is resolved', async () => {
    const { participant, db } = setup();
    db.prepared.add(GID);
    db.prepared.add(toPgGid(xidOf(2)));
    const err = await expectCode(participant.begin(xidOf(9)), 'TXC_RECOVERY_REQUIRED');
    expect(err.details).toMatchObject({ participant: 'lite', prepared: 2, foreign: 0 });
    expect(err.retryable).toBe(true);
    expect(await participant.listInDoubt()).toEqual([XID, xidOf(2)]);
    expect(await participant.commitPrepared(XID)).toBe('done');
    await expectCode(participant.begin(xidOf(9)), 'TXC_RECOVERY_REQUIRED');
    expect(await participant.rollbackPrepared(xidOf(2))).toBe('done');
    const branch = await participant.begin(xidOf(9));
    await branch.rollback();
  });

  it('counts prepared transactions that are not txcoord\'s, which only a human can resolve', async () => {
    const { participant, db } = setup();
    db.prepared.add('someone-else');
    const err = await expectCode(participant.begin(XID), 'TXC_RECOVERY_REQUIRED');
    expect(err.details).toMatchObject({ prepared: 1, foreign: 1 });
    expect(err.retryable).toBe(false);
    expect(await participant.listInDoubt()).toEqual([]);
    db.prepared.clear(); // resolved by hand
    expect(await participant.listInDoubt()).toEqual([]);
    await (await participant.begin(XID)).rollback();
  });

  it('gates begin after a branch is released while prepared', async () => {
    const { participant } = setup();
    const branch = await participant.begin(XID);
    await branch.query('insert into t values (1)');
    await branch.prepare();
    branch.release();
    await expectCode(participant.begin(xidOf(2)), 'TXC_RECOVERY_REQUIRED');
    await expectCode(branch.rollback(), 'TXC_TRANSACTION_CLOSED');
    expect(await participant.listInDoubt()).toEqual([XID]);
    expect(await participant.commitPrepared(XID)).toBe('done');
    expect(await participant.commitPrepared(XID)).toBe('unknown');
    await (await participant.begin(xidOf(2))).rollback();
  });

  it('the gate releases the connection for the next caller', async () => {
    const { participant, db } = setup({ acquireTimeoutMs: 50 });
    db.prepared.add(GID);
    await expectCode(participant.begin(xidOf(2)), 'TXC_RECOVERY_REQUIRED');
    expect(await participant.listInDoubt()).toEqual([XID]);
  });
});

describe('PgliteBranch: prepare and commit traps', () => {
  it('a failed statement makes prepare fail with TXC_PREPARE_FAILED and roll back', async () => {
    const { participant, db } = setup();
    const branch = await participant.begin(XID);
    const failed = await expectCode(branch.query('insert fail'), 'TXC_QUERY_FAILED');
    expect(failed.details).toEqual({ participant: 'lite', sqlState: '23505' });
    const err = await expectCode(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.details).toMatchObject({ sqlState: '25P02' });
    expect(db.log.at(-1)).toBe('ROLLBACK');
    expect(db.prepared.size).toBe(0);
    await (await participant.begin(xidOf(2))).rollback(); // connection was freed
  });

  it('PREPARE answered with tag ROLLBACK is TXC_PREPARE_FAILED, never success', async () => {
    const { participant, db } = setup();
    const branch = await participant.begin(XID);
    await branch.query('update t set v = 1');
    // The silent path: the id query passes, PREPARE rolls back without an error.
    db.handlers.push((sql) => (sql.startsWith('PREPARE') ? ((db.inTx = false), tag('ROLLBACK')) : undefined));
    const err = await expectCode(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.message).toMatch(/answered ROLLBACK/);
    await branch.rollback();
    await (await participant.begin(xidOf(2))).rollback();
  });

  it('a PREPARE refused with an error is TXC_PREPARE_FAILED, retryable by SQLSTATE', async () => {
    const { participant, db } = setup();
    db.handlers.push((sql) => (sql.startsWith('PREPARE') ? ((db.failed = true), pgError('53200')) : undefined));
    const branch = await participant.begin(XID);
    await branch.query('update t set v = 1');
    const err = await expectCode(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(err.retryable).toBe(true);
    expect(db.inTx).toBe(false);
  });

  it('COMMIT answered with tag ROLLBACK is TXC_COMMIT_FAILED', async () => {
    const { participant } = setup();
    const branch = await participant.begin(XID);
    await expectCode(branch.query('select fail'), 'TXC_QUERY_FAILED');
    const err = await expectCode(branch.commitOnePhase(), 'TXC_COMMIT_FAILED');
    expect(err.message).toMatch(/answered ROLLBACK/);
    await (await participant.begin(xidOf(2))).rollback();
  });

  it('a COMMIT that dies without a SQLSTATE is TXC_OUTCOME_UNKNOWN', async () => {
    const { participant, db } = setup();
    db.handlers.push((sql) => (sql === 'COMMIT' ? new Error('RuntimeError: unreachable') : undefined));
    const branch = await participant.begin(XID);
    await expectCode(branch.commitOnePhase(), 'TXC_OUTCOME_UNKNOWN');
  });

  it('a statement that ends the transaction block is refused, and commit cannot report success', async () => {
    const { participant } = setup();
    const branch = await participant.begin(XID);
    await expectCode(branch.query('ROLLBACK'), 'TXC_QUERY_FAILED');
    await expectCode(branch.commitOnePhase(), 'TXC_COMMIT_FAILED');
  });

  it('a PREPARE TRANSACTION sent through query is refused and gates begin (it left a prepared transaction)', async () => {
    const { participant, db } = setup();
    const branch = await participant.begin(XID);
    await branch.query('update t set v = 1');
    await expectCode(branch.query(`PREPARE TRANSACTION 'by-hand'`), 'TXC_QUERY_FAILED');
    await expectCode(branch.prepare(), 'TXC_PREPARE_FAILED');
    expect(db.prepared).toEqual(new Set(['by-hand']));
    const err = await expectCode(participant.begin(xidOf(2)), 'TXC_RECOVERY_REQUIRED');
    expect(err.details).toMatchObject({ prepared: 1 });
    expect(await participant.listInDoubt()).toEqual([]);
    await expectCode(participant.begin(xidOf(2)), 'TXC_RECOVERY_REQUIRED');
  });

  it('hasWritten skips the round trip after DML and asks PostgreSQL otherwise', async () => {
    const { participant, db } = setup();
    const reader = await participant.begin(xidOf(1));
    expect(await reader.query('select 1')).toEqual({ rows: [{ one: 1 }], rowCount: 1 });
    expect(await reader.hasWritten()).toBe(false);
    expect(db.log.at(-1)).toMatch(/pg_current_xact_id_if_assigned/);
    await reader.commitOnePhase();
    const writer = await participant.begin(xidOf(2));
    expect(await writer.query('update t set v = 2')).toEqual({ rows: [], rowCount: 1 });
    const before = db.log.length;
    expect(await writer.hasWritten()).toBe(true);
    expect(db.log.length).toBe(before);
    await writer.rollback();
  });
});

describe('PgliteParticipant: recovery calls and status', () => {
  it('maps pg_xact_status and treats ids it cannot judge as unknown', async () => {
    const { participant, db } = setup();
    const statuses: Record<string, unknown> = { '1': 'committed', '2': 'aborted', '3': 'in progress', '4': null };
    db.handlers.push((sql, params) => {
      if (!sql.includes('pg_xact_status')) return undefined;
      const id = String(params?.[0]);
      if (id === '5') return pgError('22023');
      return tag('SELECT', [{ status: statuses[id] }]);
    });
    expect(await participant.localStatus('1')).toBe('committed');
    expect(await participant.localStatus('2')).toBe('aborted');
    expect(await participant.localStatus('3')).toBe('in-progress');
    expect(await participant.localStatus('4')).toBe('unknown');
    expect(await participant.localStatus('5')).toBe('unknown');
  });

  it('an unknown gid resolves to unknown; other errors are TXC_QUERY_FAILED', async () => {
    const { participant, db } = setup();
    expect(await participant.rollbackPrepared(XID)).toBe('unknown');
    db.handlers.push((sql) => (sql.startsWith('COMMIT PREPARED') ? pgError('42501') : undefined));
    const err = await expectCode(participant.commitPrepared(XID), 'TXC_QUERY_FAILED');
    expect(err.details).toEqual({ participant: 'lite', sqlState: '42501' });
  });

  it('close waits for the connection, closes once, and later calls are refused', async () => {
    const { participant, db } = setup();
    const branch = await participant.begin(XID);
    const closing = participant.close();
    await tick();
    expect(db.closed).toBe(false);
    await branch.commitOnePhase();
    await closing;
    expect(db.closed).toBe(true);
    await participant.close();
    await expectCode(participant.begin(xidOf(2)), 'TXC_PARTICIPANT_UNAVAILABLE');
    await expectCode(participant.listInDoubt(), 'TXC_PARTICIPANT_UNAVAILABLE');
  });

  it('close of a never-opened participant opens nothing', async () => {
    const { participant, open } = setup();
    await participant.close();
    expect(open).not.toHaveBeenCalled();
  });
});

describe('PgliteParticipant: local-only mode and bookkeeping', () => {
  const G = XID.gtrid;

  it('local-only: one-phase capabilities; begin is BEGIN and prepare is TXC_UNSUPPORTED (nothing sent, still open)', async () => {
    const { participant, db } = setup({ localOnly: true });
    bookkeepingTables(db);
    expect(participant.capabilities).toEqual({ twoPhase: false, localTransactions: true });
    const branch = await participant.begin(XID);
    const err = await expectCode(branch.prepare(), 'TXC_UNSUPPORTED');
    expect(err.details).toMatchObject({ participant: 'lite', operation: 'prepare' });
    expect(err.message).toContain('lite');
    expect(db.log.filter((t) => t.startsWith('PREPARE'))).toEqual([]);
    expect(await branch.insertMarker!(G, 'commit')).toBe('inserted');
    await branch.commitOnePhase();
    expect(db.log.slice(-3)).toEqual(['BEGIN', sql.INSERT_MARKER, 'COMMIT']);
  });

  it('local-only preflight accepts max_prepared_transactions = 0 and creates the tables', async () => {
    const { participant, db } = setup({ localOnly: true });
    const tables = bookkeepingTables(db, false);
    db.maxPrepared = 0;
    await participant.preflight();
    expect(tables.exists).toBe(true);
    expect(db.log).not.toContain('show max_prepared_transactions');
  });

  it('local-only preflight with recovery pending leaves the tables for later instead of failing', async () => {
    const { participant, db } = setup({ localOnly: true });
    const tables = bookkeepingTables(db, false);
    db.prepared.add(GID);
    await participant.preflight();
    expect(tables.exists).toBe(false);
    await expectCode(participant.ensureBookkeeping(), 'TXC_RECOVERY_REQUIRED');
    expect(await participant.rollbackPrepared(XID)).toBe('done');
    await participant.ensureBookkeeping();
    expect(tables.exists).toBe(true);
  });

  it('ensureBookkeeping works with prepared transactions pending when the tables already exist (a read only)', async () => {
    const { participant, db } = setup();
    bookkeepingTables(db, true);
    db.prepared.add(GID);
    await participant.ensureBookkeeping();
    await participant.ensureBookkeeping();
    expect(db.log.filter((t) => t === sql.BOOKKEEPING_EXISTS)).toHaveLength(1);
  });

  it('beginLocal waits for the connection like begin, and times out like begin', async () => {
    const { participant, db } = setup({ acquireTimeoutMs: 40 });
    bookkeepingTables(db);
    await participant.ensureBookkeeping();
    const holder = await participant.begin(xidOf(1));
    await expectCode(participant.beginLocal(xidOf(2)), 'TXC_POOL_TIMEOUT');
    const waiting = participant.beginLocal(xidOf(3));
    await tick();
    await holder.commitOnePhase();
    const local = await waiting;
    await expectCode(local.prepare(), 'TXC_UNSUPPORTED');
    await local.rollback();
  });

  it('beginLocal is gated while prepared transactions exist, like begin', async () => {
    const { participant, db } = setup();
    bookkeepingTables(db);
    db.prepared.add(GID);
    await expectCode(participant.beginLocal(xidOf(2)), 'TXC_RECOVERY_REQUIRED');
    await expectCode(participant.deleteMarkers([G]), 'TXC_RECOVERY_REQUIRED');
    expect(await participant.listMarkers('txc1.', 10)).toEqual([]); // a plain read never waits for a lock
  });

  it('a 2PC branch writing the first marker creates the tables inside its own transaction', async () => {
    const { participant, db } = setup();
    bookkeepingTables(db, false);
    const branch = await participant.begin(XID);
    expect(await branch.insertMarker!(G, 'abort')).toBe('inserted');
    expect(db.log.slice(-4)).toEqual(['BEGIN', sql.CREATE_MARKERS, sql.CREATE_BARRIER, sql.INSERT_MARKER]);
    expect(await branch.hasWritten()).toBe(true);
    expect(await branch.prepare()).toEqual({ localTxId: '777' });
    expect(await branch.commitPrepared()).toBe('done');
  });

  it('insertMarker / insertBarrier report the existing row; invalid keys are refused before anything is sent', async () => {
    const { participant, db } = setup();
    bookkeepingTables(db);
    const branch = await participant.beginLocal(XID);
    expect(await branch.insertMarker!(G, 'commit')).toBe('inserted');
    expect(await branch.insertMarker!(G, 'abort')).toBe('commit');
    const row = { gid: 'g', step: 's', op: 'compensate', origin: 'compensate' } as const;
    expect(await branch.insertBarrier!(row)).toBe('inserted');
    expect(await branch.insertBarrier!({ ...row, origin: 'action' })).toBe('compensate');
    const sent = db.log.length;
    await expectCode(branch.insertMarker!('x'.repeat(65), 'commit'), 'TXC_ID_INVALID');
    await expectCode(branch.insertBarrier!({ ...row, gid: 'trailing ' }), 'TXC_ID_INVALID');
    expect(db.log.length).toBe(sent);
    await branch.rollback();
  });

  it('listMarkers escapes the prefix and maps rows; deleteMarkers sends the array', async () => {
    const { participant, db } = setup();
    bookkeepingTables(db);
    const seen: unknown[][] = [];
    db.handlers.unshift((text, params) => {
      if (text === sql.LIST_MARKERS) return (seen.push(params ?? []), tag('SELECT', [{ gtrid: 'a%1', outcome: 'commit', created_ms: 5 }]));
      if (text === sql.DELETE_MARKERS) return (seen.push(params ?? []), tag('DELETE', [], 1));
      return undefined;
    });
    expect(await participant.listMarkers('a%', 3)).toEqual([{ gtrid: 'a%1', outcome: 'commit', createdAt: 5 }]);
    await participant.deleteMarkers(['a%1']);
    await participant.deleteMarkers([]);
    expect(seen).toEqual([['a!%%', 3], [['a%1']]]);
  });

  it('createPgliteParticipant passes localOnly through', () => {
    const p = createPgliteParticipant('lite', { driver: 'pglite', dataDir: '/tmp/x', localOnly: true }, { logger });
    expect(p.capabilities).toEqual({ twoPhase: false, localTransactions: true });
  });
});

describe('error classification (SQLSTATE only)', () => {
  it('classifies by code, never by message', () => {
    expect(classifyPgliteError(pgError('42704'))).toEqual({ kind: 'unknown-xid', sqlState: '42704', retryable: false });
    expect(classifyPgliteError(pgError('40001'))).toEqual({ kind: 'transient', sqlState: '40001', retryable: true });
    expect(classifyPgliteError(pgError('23505'))).toEqual({ kind: 'refused', sqlState: '23505', retryable: false });
    expect(classifyPgliteError(new Error('prepared transaction with identifier does not exist'))).toEqual({
      kind: 'broken',
      retryable: false,
    });
    expect(classifyPgliteError({ code: 'ENOENT' }).kind).toBe('broken');
    expect(classifyPgliteError(undefined).kind).toBe('broken');
  });

  it('wraps query errors as TXC_QUERY_FAILED with the cause and SQLSTATE', () => {
    const cause = pgError('40P01');
    const err = queryFailed('lite', cause);
    expect(err.code).toBe('TXC_QUERY_FAILED');
    expect(err.cause).toBe(cause);
    expect(err.details).toEqual({ participant: 'lite', sqlState: '40P01' });
    expect(err.retryable).toBe(true);
  });
});

describe('createPgliteParticipant', () => {
  const base = { driver: 'pglite' as const, dataDir: '/tmp/x' };

  it('validates the config without starting PGlite', () => {
    const p = createPgliteParticipant('lite', base, { logger });
    expect(p.driver).toBe('pglite');
    expect(p.capabilities.twoPhase).toBe(true);
    for (const bad of [
      { ...base, dataDir: '' },
      { ...base, dataDir: 'memory://' },
      { ...base, dataDir: 'idb://x' },
      { ...base, maxPreparedTransactions: 0 },
      { ...base, maxPreparedTransactions: 1.5 },
      { ...base, acquireTimeoutMs: -1 },
    ]) {
      expect(() => createPgliteParticipant('lite', bad, { logger }), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'TXC_CONFIG_INVALID' }),
      );
    }
    expect(() => createPgliteParticipant('bad name', base, { logger })).toThrow(expect.objectContaining({ code: 'TXC_ID_INVALID' }));
  });
});
