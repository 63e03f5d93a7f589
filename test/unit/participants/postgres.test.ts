import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { branchXid, newGtrid, type Xid } from '../../../coordinator/xid.js';
import type { PgClient, PgPool, PgResult, PgTransactionStatus } from '../../../participants/postgres/driver.js';
import { classifyPgError } from '../../../participants/postgres/errors.js';
import { PostgresParticipant } from '../../../participants/postgres/participant.js';
import * as sql from '../../../participants/postgres/sql.js';

const logger = pino({ level: 'silent' });
const UUID = '0190d5a8-7b3c-7def-8123-456789abcdef';
const GTRID = newGtrid('unit', () => UUID);
const XID: Xid = branchXid(GTRID, 0);
const GID = `${GTRID}.b0`;
const PREPARE_TEXT = `select pg_current_xact_id()::text as txid; PREPARE TRANSACTION '${GID}'`;
const ASSIGNED = 'select pg_current_xact_id_if_assigned()::text as txid';

function pgError(code: string, message = 'boom'): Error {
  return Object.assign(new Error(message), { code });
}

const ok = (command: string, rows: Record<string, unknown>[] = [], rowCount: number | null = rows.length): PgResult => ({
  command,
  rows,
  rowCount,
});

type Answer = PgResult | PgResult[] | Error | Promise<PgResult | PgResult[]>;
type Handler = (text: string, values: unknown[] | undefined, client: FakeClient) => Answer | undefined;

/** The server side shared by every fake client: prepared gids and scripted answers. */
class FakeServer {
  readonly prepared = new Set<string>();
  readonly log: string[] = [];
  handlers: Handler[] = [];
  xidAssigned = false;

  /** Answers a statement like PostgreSQL would, unless a handler answers first. */
  answer(text: string, values: unknown[] | undefined, client: FakeClient): Answer {
    for (const h of this.handlers) {
      const a = h(text, values, client);
      if (a !== undefined) return a;
    }
    if (text === 'BEGIN') return (client.status = 'T'), ok('BEGIN');
    if (text === 'COMMIT') {
      const failed = client.status === 'E';
      client.status = 'I';
      return ok(failed ? 'ROLLBACK' : 'COMMIT');
    }
    if (text === 'ROLLBACK') return (client.status = 'I'), ok('ROLLBACK');
    if (text === ASSIGNED) return ok('SELECT', [{ txid: this.xidAssigned ? '777' : null }]);
    const prepare = /PREPARE TRANSACTION '(.+)'$/.exec(text);
    if (prepare) {
      if (client.status === 'E') return pgError('25P02');
      client.status = 'I';
      this.prepared.add(prepare[1] as string);
      return [ok('SELECT', [{ txid: '777' }]), ok('PREPARE', [], null)];
    }
    const resolve = /^(COMMIT|ROLLBACK) PREPARED '(.+)'$/.exec(text);
    if (resolve) {
      if (!this.prepared.delete(resolve[2] as string)) return pgError('42704');
      return ok(resolve[1] as string, [], null);
    }
    return ok('SELECT', []);
  }
}

class FakeClient implements PgClient {
  status: PgTransactionStatus = 'I';
  readonly sent: string[] = [];
  readonly releases: boolean[] = [];
  readonly errorListeners = new Set<(err: Error) => void>();

  constructor(private readonly server: FakeServer) {}

  async query(text: string, values?: unknown[]): Promise<PgResult | PgResult[]> {
    this.sent.push(text);
    this.server.log.push(text);
    const a = await this.server.answer(text, values, this);
    if (a instanceof Error) {
      if (this.status === 'T') this.status = 'E';
      throw a;
    }
    return a;
  }
  getTransactionStatus(): PgTransactionStatus {
    return this.status;
  }
  on(_event: 'error', listener: (err: Error) => void): void {
    this.errorListeners.add(listener);
  }
  removeListener(_event: 'error', listener: (err: Error) => void): void {
    this.errorListeners.delete(listener);
  }
  release(destroy?: boolean | Error): void {
    this.releases.push(Boolean(destroy));
  }
}

class FakePool implements PgPool {
  readonly server = new FakeServer();
  readonly clients: FakeClient[] = [];
  connectError: Error | undefined;
  /** When set, connect() waits until this promise resolves (a saturated pool). */
  gate: Promise<void> | undefined;
  ended = 0;

  async connect(): Promise<PgClient> {
    if (this.connectError) throw this.connectError;
    const client = new FakeClient(this.server);
    this.clients.push(client);
    if (this.gate) await this.gate;
    return client;
  }
  on(): void {}
  async end(): Promise<void> {
    this.ended++;
  }
}

function setup(acquireTimeoutMs = 1_000, localOnly = false) {
  const pool = new FakePool();
  const participant = new PostgresParticipant('pg1', pool, { acquireTimeoutMs, logger, localOnly });
  return { pool, server: pool.server, participant };
}

/**
 * The bookkeeping tables in the fake server: whether they exist, and their rows (keyed like the
 * primary keys). Statements are matched by the exact text from sql.ts.
 */
function bookkeepingTables(server: FakeServer, exists = true) {
  const state = { exists, markers: new Map<string, string>(), barrier: new Map<string, string>() };
  server.handlers.push((text, values) => {
    const v = (values ?? []).map(String);
    switch (text) {
      case sql.BOOKKEEPING_EXISTS:
        return ok('SELECT', [{ present: state.exists }]);
      case sql.CREATE_MARKERS:
      case sql.CREATE_BARRIER:
        state.exists = true;
        return ok('CREATE TABLE', [], null);
      case sql.INSERT_MARKER: {
        if (state.markers.has(v[0]!)) return ok('INSERT', [], 0);
        state.markers.set(v[0]!, v[1]!);
        return ok('INSERT', [{ gtrid: v[0] }], 1);
      }
      case sql.SELECT_MARKER:
        return ok('SELECT', state.markers.has(v[0]!) ? [{ outcome: state.markers.get(v[0]!) }] : []);
      case sql.INSERT_BARRIER: {
        const key = v.slice(0, 3).join('|');
        if (state.barrier.has(key)) return ok('INSERT', [], 0);
        state.barrier.set(key, v[3]!);
        return ok('INSERT', [{ gid: v[0] }], 1);
      }
      case sql.SELECT_BARRIER: {
        const key = v.join('|');
        return ok('SELECT', state.barrier.has(key) ? [{ origin: state.barrier.get(key) }] : []);
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

describe('PostgreSQL participant (fake driver)', () => {
  it('begins with BEGIN and runs statements with their parameters on the pinned client', async () => {
    const { pool, server, participant } = setup();
    server.handlers.push((text, values) => (text.startsWith('insert') ? ok('INSERT', [], (values ?? []).length) : undefined));
    const branch = await participant.begin(XID);
    const res = await branch.query('insert into t values ($1), ($2)', [1, 2]);
    expect(res).toEqual({ rows: [], rowCount: 2 });
    expect(pool.clients).toHaveLength(1);
    expect(pool.clients[0]?.sent).toEqual(['BEGIN', 'insert into t values ($1), ($2)']);
  });

  it('prepares in one round trip with the gid from toPgGid, returns the local xid, and commits on the same client', async () => {
    const { pool, server, participant } = setup();
    const branch = await participant.begin(XID);
    await branch.query('insert into t values (1)');
    expect(await branch.prepare()).toEqual({ localTxId: '777' });
    const client = pool.clients[0] as FakeClient;
    expect(client.sent.at(-1)).toBe(PREPARE_TEXT);
    expect(client.releases).toEqual([]); // still pinned: phase two must not wait for the pool
    expect(server.prepared.has(GID)).toBe(true);

    expect(await branch.commitPrepared()).toBe('done');
    expect(client.sent.at(-1)).toBe(`COMMIT PREPARED '${GID}'`);
    expect(pool.clients).toHaveLength(1); // no second client taken
    expect(server.prepared.size).toBe(0);
    expect(client.releases).toEqual([false]); // back to the pool after phase two
    branch.release();
    expect(client.releases).toEqual([false]); // idempotent
  });

  it('turns the silent ROLLBACK answer of PREPARE into TXC_PREPARE_FAILED', async () => {
    const { pool, server, participant } = setup();
    server.handlers.push((text, _v, client) => {
      if (!text.includes('PREPARE TRANSACTION')) return undefined;
      client.status = 'I';
      return [ok('SELECT', [{ txid: '777' }]), ok('ROLLBACK', [], null)];
    });
    const branch = await participant.begin(XID);
    const err = await rejection(branch.prepare());
    expect(err.code).toBe('TXC_PREPARE_FAILED');
    expect(err.message).toContain('ROLLBACK');
    expect(pool.clients[0]?.releases).toEqual([false]);
    await branch.rollback(); // finished: nothing to do, no throw
    expect(server.log).not.toContain(`ROLLBACK PREPARED '${GID}'`);
  });

  it('does not send PREPARE after a failed statement: rolls back and reports the cause', async () => {
    const { pool, server, participant } = setup();
    const deadlock = pgError('40P01');
    server.handlers.push((text) => (text === 'update t' ? deadlock : undefined));
    const branch = await participant.begin(XID);
    await expect(branch.query('update t')).rejects.toMatchObject({
      code: 'TXC_QUERY_FAILED',
      retryable: true,
      details: { participant: 'pg1', sqlState: '40P01' },
      cause: deadlock,
    });
    expect(await branch.hasWritten()).toBe(true); // no round trip: let prepare report the failure
    const err = await rejection(branch.prepare());
    expect(err.code).toBe('TXC_PREPARE_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.cause).toBe(deadlock);
    expect(pool.clients[0]?.sent).toEqual(['BEGIN', 'update t', 'ROLLBACK']);
    expect(pool.clients[0]?.releases).toEqual([false]);
  });

  it('handles 25P02 from the prepare text itself: ROLLBACK, TXC_PREPARE_FAILED, nothing prepared', async () => {
    const { pool, server, participant } = setup();
    server.handlers.push((text) => (text === PREPARE_TEXT ? pgError('25P02') : undefined));
    const branch = await participant.begin(XID);
    const err = await rejection(branch.prepare());
    expect(err.code).toBe('TXC_PREPARE_FAILED');
    expect(err.details.sqlState).toBe('25P02');
    expect(pool.clients[0]?.sent.at(-1)).toBe('ROLLBACK');
    expect(server.prepared.size).toBe(0);
  });

  it('prepares after a failure that ROLLBACK TO SAVEPOINT recovered', async () => {
    const { server, participant } = setup();
    server.handlers.push((text, _v, client) => {
      if (text === 'bad') return pgError('23505');
      if (text === 'rollback to savepoint s') return (client.status = 'T'), ok('ROLLBACK');
      return undefined;
    });
    const branch = await participant.begin(XID);
    await expect(branch.query('bad')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED', retryable: false });
    await branch.query('rollback to savepoint s');
    expect(await branch.prepare()).toEqual({ localTxId: '777' });
  });

  it('refuses to prepare when a COMMIT sent through query() ended the block', async () => {
    const { pool, participant } = setup();
    const branch = await participant.begin(XID);
    await branch.query('COMMIT');
    const err = await rejection(branch.prepare());
    expect(err.code).toBe('TXC_PREPARE_FAILED');
    expect(pool.clients[0]?.sent).not.toContain(PREPARE_TEXT);
  });

  it('reports a connection lost during PREPARE as in doubt, destroys the client, and rolls back by gid', async () => {
    const { pool, server, participant } = setup();
    server.handlers.push((text) => (text === PREPARE_TEXT ? new Error('Connection terminated unexpectedly') : undefined));
    const branch = await participant.begin(XID);
    const err = await rejection(branch.prepare());
    expect(err.code).toBe('TXC_PARTICIPANT_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(pool.clients[0]?.releases).toEqual([true]);
    await branch.rollback(); // unknown gid is fine
    expect(pool.clients[1]?.sent).toEqual([`ROLLBACK PREPARED '${GID}'`]);
    expect(pool.clients[1]?.releases).toEqual([false]);
  });

  it('a client error event between statements makes prepare fail and destroys the client', async () => {
    const { pool, participant } = setup();
    const branch = await participant.begin(XID);
    const client = pool.clients[0] as FakeClient;
    for (const l of client.errorListeners) l(pgError('57P01'));
    const err = await rejection(branch.prepare());
    expect(err.code).toBe('TXC_PREPARE_FAILED');
    expect(err.retryable).toBe(true);
    expect(client.sent).toEqual(['BEGIN']);
    expect(client.releases).toEqual([true]);
    expect(client.errorListeners.size).toBe(0);
  });

  describe('hasWritten', () => {
    it('asks the server when only reads ran (null xid: read-only)', async () => {
      const { pool, participant } = setup();
      const branch = await participant.begin(XID);
      await branch.query('select 1');
      expect(await branch.hasWritten()).toBe(false);
      expect(pool.clients[0]?.sent.at(-1)).toBe(ASSIGNED);
    });

    it('answers true without a round trip after a DML result that wrote rows', async () => {
      const { pool, server, participant } = setup();
      server.handlers.push((text) => (text.startsWith('delete') ? ok('DELETE', [], 3) : undefined));
      const branch = await participant.begin(XID);
      await branch.query('delete from t');
      expect(await branch.hasWritten()).toBe(true);
      expect(pool.clients[0]?.sent).not.toContain(ASSIGNED);
    });

    it('asks after an UPDATE of zero rows, and catches writes by a function called from SELECT', async () => {
      const { server, participant } = setup();
      server.handlers.push((text) => (text.startsWith('update') ? ok('UPDATE', [], 0) : undefined));
      const branch = await participant.begin(XID);
      await branch.query('update t set v = 1 where false');
      expect(await branch.hasWritten()).toBe(false);
      await branch.query('select writes_something()');
      server.xidAssigned = true;
      expect(await branch.hasWritten()).toBe(true);
    });

    it('counts a multi-statement text that wrote', async () => {
      const { pool, server, participant } = setup();
      server.handlers.push((text) => (text === 'select 1; insert into t values (1)' ? [ok('SELECT', [{ a: 1 }]), ok('INSERT', [], 1)] : undefined));
      const branch = await participant.begin(XID);
      expect(await branch.query('select 1; insert into t values (1)')).toEqual({ rows: [], rowCount: 1 });
      expect(await branch.hasWritten()).toBe(true);
      expect(pool.clients[0]?.sent).not.toContain(ASSIGNED);
    });
  });

  describe('commitOnePhase', () => {
    it('commits and gives the client back', async () => {
      const { pool, participant } = setup();
      const branch = await participant.begin(XID);
      await branch.commitOnePhase();
      expect(pool.clients[0]?.sent).toEqual(['BEGIN', 'COMMIT']);
      expect(pool.clients[0]?.releases).toEqual([false]);
    });

    it('COMMIT answered ROLLBACK is TXC_COMMIT_FAILED', async () => {
      const { server, participant } = setup();
      server.handlers.push((text, _v, client) => (text === 'COMMIT' ? ((client.status = 'I'), ok('ROLLBACK')) : undefined));
      const branch = await participant.begin(XID);
      await expect(branch.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_COMMIT_FAILED' });
    });

    it('a connection lost during COMMIT is TXC_OUTCOME_UNKNOWN and destroys the client', async () => {
      const { pool, server, participant } = setup();
      server.handlers.push((text) => (text === 'COMMIT' ? pgError('ECONNRESET') : undefined));
      const branch = await participant.begin(XID);
      await expect(branch.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_OUTCOME_UNKNOWN' });
      expect(pool.clients[0]?.releases).toEqual([true]);
    });

    it('a refused COMMIT (deferred constraint) is TXC_COMMIT_FAILED with the SQLSTATE', async () => {
      const { server, participant } = setup();
      server.handlers.push((text) => (text === 'COMMIT' ? pgError('23503') : undefined));
      const branch = await participant.begin(XID);
      await expect(branch.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_COMMIT_FAILED', details: { sqlState: '23503' } });
    });
  });

  describe('rollback and release', () => {
    it('rolls back an unprepared branch on the pinned client; a second rollback is a no-op', async () => {
      const { pool, participant } = setup();
      const branch = await participant.begin(XID);
      await branch.rollback();
      await branch.rollback();
      expect(pool.clients[0]?.sent).toEqual(['BEGIN', 'ROLLBACK']);
      expect(pool.clients[0]?.releases).toEqual([false]);
    });

    it('rolls back a prepared branch by gid on its pinned client', async () => {
      const { pool, server, participant } = setup();
      const branch = await participant.begin(XID);
      await branch.prepare();
      await branch.rollback();
      expect(pool.clients[0]?.sent.at(-1)).toBe(`ROLLBACK PREPARED '${GID}'`);
      expect(pool.clients).toHaveLength(1);
      expect(server.prepared.size).toBe(0);
    });

    it('rolls back a prepared branch from a fresh client once its pinned client was released', async () => {
      const { pool, server, participant } = setup();
      const branch = await participant.begin(XID);
      await branch.prepare();
      branch.release(true);
      await branch.rollback();
      expect(pool.clients[1]?.sent).toEqual([`ROLLBACK PREPARED '${GID}'`]);
      expect(server.prepared.size).toBe(0);
    });

    it('release() of an open branch destroys the client, once', async () => {
      const { pool, participant } = setup();
      const branch = await participant.begin(XID);
      branch.release();
      branch.release(true);
      expect(pool.clients[0]?.releases).toEqual([true]);
      await expect(branch.query('select 1')).rejects.toMatchObject({ code: 'TXC_TRANSACTION_CLOSED' });
      await branch.rollback(); // finished: no throw
    });

    it('release() during PREPARE leaves the branch in doubt; rollback() then goes by gid', async () => {
      const { pool, server, participant } = setup();
      let answerPrepare: (r: PgResult[]) => void = () => {};
      server.handlers.push((text) =>
        text === PREPARE_TEXT ? new Promise<PgResult[]>((resolve) => (answerPrepare = resolve)) : undefined,
      );
      const branch = await participant.begin(XID);
      const preparing = branch.prepare();
      await new Promise((r) => setTimeout(r, 5));
      branch.release(true);
      server.prepared.add(GID); // the PREPARE lands on the server after all
      answerPrepare([ok('SELECT', [{ txid: '777' }]), ok('PREPARE', [], null)]);
      await expect(preparing).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE' });
      await branch.rollback();
      expect(server.prepared.size).toBe(0);
      expect(pool.clients[0]?.releases).toEqual([true]);
    });
  });

  it('serializes concurrent statements on one branch', async () => {
    const { pool, server, participant } = setup();
    let releaseFirst: () => void = () => {};
    server.handlers.push((text) =>
      text === 'slow' ? new Promise<PgResult>((resolve) => (releaseFirst = () => resolve(ok('SELECT', [{ n: 1 }])))) : undefined,
    );
    const branch = await participant.begin(XID);
    const first = branch.query('slow');
    const second = branch.query('fast');
    await new Promise((r) => setTimeout(r, 5));
    expect(pool.clients[0]?.sent).toEqual(['BEGIN', 'slow']);
    releaseFirst();
    await Promise.all([first, second]);
    expect(pool.clients[0]?.sent).toEqual(['BEGIN', 'slow', 'fast']);
  });

  describe('participant-level operations', () => {
    it('commitPrepared/rollbackPrepared: done, unknown (42704), retryable failure on 55000 and connection loss', async () => {
      const { pool, server, participant } = setup();
      server.prepared.add(GID);
      expect(await participant.commitPrepared(XID)).toBe('done');
      expect(await participant.commitPrepared(XID)).toBe('unknown');
      expect(await participant.rollbackPrepared(XID)).toBe('unknown');

      server.handlers.push((text) => (text.startsWith('COMMIT PREPARED') ? pgError('55000') : undefined));
      await expect(participant.commitPrepared(XID)).rejects.toMatchObject({
        code: 'TXC_PARTICIPANT_UNAVAILABLE',
        retryable: true,
        details: { sqlState: '55000', operation: 'commit-prepared' },
      });
      server.handlers = [(text) => (text.startsWith('ROLLBACK PREPARED') ? new Error('Connection terminated') : undefined)];
      await expect(participant.rollbackPrepared(XID)).rejects.toMatchObject({ retryable: true });
      expect(pool.clients.at(-1)?.releases).toEqual([true]);
      server.handlers = [(text) => (text.startsWith('ROLLBACK PREPARED') ? pgError('42501') : undefined)];
      await expect(participant.rollbackPrepared(XID)).rejects.toMatchObject({ retryable: false });
    });

    it('listInDoubt keeps only txcoord gids', async () => {
      const { server, participant } = setup();
      server.handlers.push((text) =>
        text.includes('pg_prepared_xacts') ? ok('SELECT', [{ gid: GID }, { gid: 'someone-else' }, { gid: 'txc1.x.nothex.b0' }]) : undefined,
      );
      expect(await participant.listInDoubt()).toEqual([XID]);
    });

    it('localStatus maps pg_xact_status and treats bad or future ids as unknown', async () => {
      const { pool, server, participant } = setup();
      const answers: Record<string, unknown> = { '1': 'committed', '2': 'aborted', '3': 'in progress', '4': null };
      server.handlers.push((text, values) => {
        if (!text.includes('pg_xact_status')) return undefined;
        const id = String(values?.[0]);
        return id === '5' ? pgError('22023') : ok('SELECT', [{ status: answers[id] }]);
      });
      expect(await participant.localStatus('1')).toBe('committed');
      expect(await participant.localStatus('2')).toBe('aborted');
      expect(await participant.localStatus('3')).toBe('in-progress');
      expect(await participant.localStatus('4')).toBe('unknown');
      expect(await participant.localStatus('5')).toBe('unknown');
      const before = pool.clients.length;
      expect(await participant.localStatus("1'; drop table x")).toBe('unknown');
      expect(pool.clients.length).toBe(before);
    });

    it('preflight passes with 2PC enabled and names the fix when max_prepared_transactions is 0', async () => {
      const { server, participant } = setup();
      let value = '200';
      server.handlers.push((text) => (text === 'show max_prepared_transactions' ? ok('SHOW', [{ max_prepared_transactions: value }]) : undefined));
      await participant.preflight();
      value = '0';
      await expect(participant.preflight()).rejects.toMatchObject({ code: 'TXC_PREPARED_TRANSACTIONS_DISABLED' });
    });

    it('an unreachable server is TXC_PARTICIPANT_UNAVAILABLE (retryable)', async () => {
      const { pool, participant } = setup();
      pool.connectError = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', errno: -111 });
      await expect(participant.preflight()).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', retryable: true });
      await expect(participant.begin(XID)).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', details: { code: 'ECONNREFUSED' } });
    });

    it('times out waiting for a client with TXC_POOL_TIMEOUT, and hands a late client straight back', async () => {
      const { pool, participant } = setup(20);
      let open: () => void = () => {};
      pool.gate = new Promise((resolve) => (open = resolve));
      await expect(participant.begin(XID)).rejects.toMatchObject({ code: 'TXC_POOL_TIMEOUT', retryable: true });
      open();
      await new Promise((r) => setTimeout(r, 5));
      expect(pool.clients[0]?.sent).toEqual([]);
      expect(pool.clients[0]?.releases).toEqual([false]);
    });

    it('rejects an invalid xid before taking a connection', async () => {
      const { pool, participant } = setup();
      await expect(participant.begin({ ...XID, gtrid: "x'; drop table t; --" })).rejects.toMatchObject({ code: 'TXC_ID_INVALID' });
      expect(pool.clients).toHaveLength(0);
    });

    it('close() ends the pool once and refuses new work', async () => {
      const { pool, participant } = setup();
      await participant.close();
      await participant.close();
      expect(pool.ended).toBe(1);
      await expect(participant.begin(XID)).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE' });
    });
  });
});

describe('PostgreSQL participant: local-only mode and bookkeeping (fake driver)', () => {
  const G = GTRID;

  it('local-only: one-phase capabilities; begin is BEGIN (after ensuring the tables) and never prepares', async () => {
    const { pool, server, participant } = setup(1_000, true);
    bookkeepingTables(server);
    expect(participant.capabilities).toEqual({ twoPhase: false, localTransactions: true });
    expect(setup().participant.capabilities).toEqual({ twoPhase: true, localTransactions: true });
    const branch = await participant.begin(XID);
    expect(branch.local).toBe(true);
    expect(pool.clients[0]?.sent).toEqual([sql.BOOKKEEPING_EXISTS]);
    expect(pool.clients[1]?.sent).toEqual(['BEGIN']);
    const err = await rejection(branch.prepare());
    expect(err.code).toBe('TXC_UNSUPPORTED');
    expect(err.message).toContain('pg1');
    expect(err.details).toMatchObject({ participant: 'pg1', operation: 'prepare' });
    expect(server.log.some((t) => t.includes('PREPARE'))).toBe(false);
    await branch.commitOnePhase(); // still open after the refusal
    expect(pool.clients[1]?.sent).toEqual(['BEGIN', 'COMMIT']);
    expect(pool.clients[1]?.releases).toEqual([false]);
  });

  it('local-only preflight ignores max_prepared_transactions and creates missing tables', async () => {
    const { server, participant } = setup(1_000, true);
    const tables = bookkeepingTables(server, false);
    server.handlers.push((text) => (text === 'show max_prepared_transactions' ? ok('SHOW', [{ max_prepared_transactions: '0' }]) : undefined));
    await participant.preflight();
    expect(tables.exists).toBe(true);
    expect(server.log).toEqual([sql.PING, sql.BOOKKEEPING_EXISTS, sql.CREATE_MARKERS, sql.CREATE_BARRIER, sql.BOOKKEEPING_EXISTS]);
  });

  it('ensureBookkeeping runs once per instance (shared by concurrent callers) and again after a failure', async () => {
    const { server, participant } = setup();
    let fail = true;
    server.handlers.push((text) => (text === sql.BOOKKEEPING_EXISTS && fail ? pgError('ECONNRESET') : undefined));
    await expect(participant.ensureBookkeeping()).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', retryable: true });
    fail = false;
    bookkeepingTables(server);
    await Promise.all([participant.ensureBookkeeping(), participant.ensureBookkeeping()]);
    await participant.ensureBookkeeping();
    expect(server.log.filter((t) => t === sql.BOOKKEEPING_EXISTS)).toHaveLength(2);
  });

  it.each(['23505', '42710', '42P07'])('another process creating the tables at once (%s) counts as success once they exist', async (code) => {
    const { server, participant } = setup();
    const tables = bookkeepingTables(server, false);
    server.handlers.unshift((text) => (text === sql.CREATE_MARKERS ? ((tables.exists = true), pgError(code)) : undefined));
    await participant.ensureBookkeeping();
    expect(server.log.at(-1)).toBe(sql.BOOKKEEPING_EXISTS);
  });

  it('a tolerated code with the tables still missing, or any other error, is TXC_PARTICIPANT_UNAVAILABLE', async () => {
    const a = setup();
    bookkeepingTables(a.server, false);
    a.server.handlers.unshift((text) => (text.startsWith('create table') ? pgError('42710') : undefined));
    await expect(a.participant.ensureBookkeeping()).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE' });
    const b = setup();
    bookkeepingTables(b.server, false);
    b.server.handlers.unshift((text) => (text === sql.CREATE_MARKERS ? pgError('42501') : undefined));
    await expect(b.participant.ensureBookkeeping()).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE', retryable: false, details: { sqlState: '42501' } });
  });

  it('beginLocal of a 2PC participant: ensures first on its own client, then BEGIN on the branch client', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    const branch = await participant.beginLocal(XID);
    expect(pool.clients.map((c) => c.sent)).toEqual([[sql.BOOKKEEPING_EXISTS], ['BEGIN']]);
    expect(pool.clients[0]?.releases).toEqual([false]);
    await expect(branch.prepare()).rejects.toMatchObject({ code: 'TXC_UNSUPPORTED' });
    await branch.rollback();
    expect(pool.clients[1]?.sent).toEqual(['BEGIN', 'ROLLBACK']);
  });

  it('insertMarker: INSERT … ON CONFLICT DO NOTHING RETURNING, then SELECT for the existing outcome; counts as written', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    const first = await participant.beginLocal(XID);
    expect(await first.insertMarker(G, 'commit')).toBe('inserted');
    expect(pool.clients[1]?.sent).toEqual(['BEGIN', sql.INSERT_MARKER]);
    const second = await participant.beginLocal(XID);
    expect(await second.insertMarker(G, 'abort')).toBe('commit');
    expect(pool.clients.at(-1)?.sent).toEqual(['BEGIN', sql.INSERT_MARKER, sql.SELECT_MARKER]);
    expect(await second.hasWritten()).toBe(true);
    expect(pool.clients.at(-1)?.sent).not.toContain(ASSIGNED);
    expect(server.log.filter((t) => t === sql.BOOKKEEPING_EXISTS)).toHaveLength(1);
  });

  it('insertBarrier sends the key and origin as parameters and reports the existing origin', async () => {
    const { server, participant } = setup();
    bookkeepingTables(server);
    let params: unknown[] | undefined;
    server.handlers.unshift((text, values) => ((params = text === sql.INSERT_BARRIER ? values : params), undefined));
    const branch = await participant.beginLocal(XID);
    const row = { gid: "g'1", step: 'debit', op: 'action', origin: 'compensate' } as const;
    expect(await branch.insertBarrier(row)).toBe('inserted');
    expect(params).toEqual(["g'1", 'debit', 'action', 'compensate']);
    expect(await branch.insertBarrier({ ...row, origin: 'action' })).toBe('compensate');
    expect(await branch.insertBarrier({ ...row, op: 'compensate', origin: 'action' })).toBe('inserted');
  });

  it('a 2PC branch writing a marker ensures the tables from another pooled client', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    const branch = await participant.begin(XID);
    expect(await branch.insertMarker(G, 'commit')).toBe('inserted');
    expect(pool.clients[0]?.sent).toEqual(['BEGIN', sql.INSERT_MARKER]);
    expect(pool.clients[1]?.sent).toEqual([sql.BOOKKEEPING_EXISTS]);
    expect(await branch.prepare()).toEqual({ localTxId: '777' });
  });

  it('rejects invalid keys with TXC_ID_INVALID before sending anything', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    const branch = await participant.beginLocal(XID);
    const before = pool.clients[1]!.sent.length;
    for (const bad of ['', 'x'.repeat(65), 'has space', 'tab\t', 'é']) {
      expect((await rejection(branch.insertMarker(bad, 'commit'))).code).toBe('TXC_ID_INVALID');
    }
    expect((await rejection(branch.insertMarker(G, 'yes' as 'commit'))).code).toBe('TXC_ID_INVALID');
    const row = { gid: 'g', step: 's', op: 'action', origin: 'action' } as const;
    for (const bad of [{ step: '' }, { step: 'x'.repeat(129) }, { gid: 'a ' }, { gid: 'nul\u0000' }, { step: '\ud800' }, { op: 'undo' }, { origin: 'x' }]) {
      expect((await rejection(branch.insertBarrier({ ...row, ...bad } as typeof row))).code).toBe('TXC_ID_INVALID');
    }
    expect(await branch.insertBarrier({ ...row, step: '😀'.repeat(128) })).toBe('inserted'); // 128 code points
    expect(pool.clients[1]!.sent.slice(before)).toEqual([sql.INSERT_BARRIER]);
  });

  it('an existing row with a value txcoord never writes is TXC_QUERY_FAILED; a row that keeps vanishing is retryable', async () => {
    const { server, participant } = setup();
    bookkeepingTables(server);
    let answer: Record<string, unknown>[] = [{ outcome: 'bogus' }];
    server.handlers.unshift((text) => {
      if (text === sql.INSERT_MARKER) return ok('INSERT', [], 0);
      if (text === sql.SELECT_MARKER) return ok('SELECT', answer);
      return undefined;
    });
    const branch = await participant.beginLocal(XID);
    expect(await rejection(branch.insertMarker(G, 'commit'))).toMatchObject({ code: 'TXC_QUERY_FAILED', retryable: false });
    answer = [];
    expect(await rejection(branch.insertMarker(G, 'commit'))).toMatchObject({ code: 'TXC_QUERY_FAILED', retryable: true });
    expect(server.log.filter((t) => t === sql.INSERT_MARKER)).toHaveLength(3);
  });

  it('insertMarker on a finished branch is TXC_TRANSACTION_CLOSED', async () => {
    const { server, participant } = setup();
    bookkeepingTables(server);
    const branch = await participant.beginLocal(XID);
    await branch.commitOnePhase();
    expect((await rejection(branch.insertMarker(G, 'commit'))).code).toBe('TXC_TRANSACTION_CLOSED');
  });

  it('listMarkers escapes the prefix for LIKE, passes the limit, and maps rows (skipping foreign ones)', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    let params: unknown[] | undefined;
    server.handlers.unshift((text, values) =>
      text === sql.LIST_MARKERS
        ? ((params = values),
          ok('SELECT', [
            { gtrid: 'a%_!1', outcome: 'commit', created_ms: 1700000000123 },
            { gtrid: 'a%_!2', outcome: 'weird', created_ms: 1 },
          ]))
        : undefined,
    );
    expect(await participant.listMarkers('a%_!', 50)).toEqual([{ gtrid: 'a%_!1', outcome: 'commit', createdAt: 1700000000123 }]);
    expect(params).toEqual(['a!%!_!!%', 50]);
    expect(pool.clients.every((c) => c.releases.length === 1)).toBe(true);
    for (const [prefix, limit] of [['a b', 1], ['x'.repeat(65), 1], ['a', 0], ['a', 1.5], ['a', 10_001]] as const) {
      expect((await rejection(participant.listMarkers(prefix, limit))).code).toBe('TXC_ID_INVALID');
    }
    expect(await participant.listMarkers('', 1)).toHaveLength(1); // every marker
  });

  it('deleteMarkers sends one array parameter; an empty list sends nothing; bad gtrids are refused first', async () => {
    const { pool, server, participant } = setup();
    bookkeepingTables(server);
    await participant.deleteMarkers([]);
    expect(pool.clients).toHaveLength(0);
    await expect(participant.deleteMarkers([G, 'bad one'])).rejects.toMatchObject({ code: 'TXC_ID_INVALID' });
    expect(pool.clients).toHaveLength(0);
    let params: unknown[] | undefined;
    server.handlers.unshift((text, values) => (text === sql.DELETE_MARKERS ? ((params = values), ok('DELETE', [], 2)) : undefined));
    await participant.deleteMarkers([G, 'txc1.other']);
    expect(params).toEqual([[G, 'txc1.other']]);
  });
});

describe('classifyPgError', () => {
  it.each([
    ['42704', 'unknown-xid', false],
    ['40001', 'transient', true],
    ['40P01', 'transient', true],
    ['55000', 'busy', true],
    ['57P01', 'connection', true],
    ['08006', 'connection', true],
    ['23505', 'refused', false],
    ['42501', 'refused', false],
  ])('SQLSTATE %s is %s', (code, kind, retryable) => {
    expect(classifyPgError(pgError(code))).toEqual({ kind, sqlState: code, retryable });
  });

  it('classifies socket errors by their Node code', () => {
    expect(classifyPgError(pgError('ECONNREFUSED'))).toEqual({ kind: 'connection', code: 'ECONNREFUSED', retryable: true });
    expect(classifyPgError(pgError('EPIPE'))).toMatchObject({ kind: 'connection', retryable: true });
    expect(classifyPgError(pgError('ERR_TLS_CERT_ALTNAME_INVALID'))).toMatchObject({ kind: 'connection', retryable: false });
  });

  it('treats a code-less Error (pg: connection terminated) as a lost connection, a TypeError as refused', () => {
    expect(classifyPgError(new Error('Connection terminated unexpectedly'))).toEqual({ kind: 'connection', retryable: true });
    expect(classifyPgError(new TypeError('Converting circular structure to JSON'))).toEqual({ kind: 'refused', retryable: false });
  });

  it('never reads the message', () => {
    expect(classifyPgError(pgError('23505', 'deadlock detected; connection terminated'))).toMatchObject({ kind: 'refused' });
  });
});
