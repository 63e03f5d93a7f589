import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import type { LogRecord, SagaRecord } from '../../../log/log-record.js';
import { GroupCommit, type QueuedItem } from '../../../log/postgres/group-commit.js';
import { LiveView } from '../../../log/postgres/live-view.js';
import type { LogClient, LogPool, LogQueryResult } from '../../../log/postgres/log-pool.js';
import { logTables } from '../../../log/postgres/log-tables.js';
import { LogTransactionError, logTransaction } from '../../../log/postgres/log-transaction.js';
import { openPostgresLog } from '../../../log/postgres/open-postgres-log.js';
import { PostgresLog, type PostgresLogSettings } from '../../../log/postgres/postgres-log.js';
import { encodeLogRecord, logRecordProblem } from '../../../log/postgres/record-codec.js';
import { commit, end, heuristic, silent } from './log-test-helpers.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

// ---- a scripted stand-in for node-postgres ------------------------------------------------------

type Answer = Partial<LogQueryResult<Record<string, unknown>>>;
type Handler = (text: string, values: readonly unknown[] | undefined) => Answer | Promise<Answer>;

/** A connection-lost error as node-postgres reports it (no SQLSTATE, no errno). */
const connectionLost = () => new Error('Connection terminated unexpectedly');

interface FakePool extends LogPool {
  readonly statements: string[];
  readonly released: boolean[];
}

function fakePool(handler: Handler): FakePool {
  const statements: string[] = [];
  const released: boolean[] = [];
  const run = async <R>(text: string, values?: readonly unknown[]): Promise<LogQueryResult<R>> => {
    statements.push(text.trim().split(/\s+/).slice(0, 3).join(' '));
    const a = await handler(text, values);
    return { rows: (a.rows ?? []) as R[], rowCount: a.rowCount ?? a.rows?.length ?? 0, command: a.command ?? text.trim().split(/\s+/)[0]!.toUpperCase() };
  };
  return {
    statements,
    released,
    connect: () => Promise.resolve<LogClient>({ query: run, release: (broken?: boolean) => void released.push(broken === true) }),
    query: run,
    end: () => Promise.resolve(),
  };
}

// ---- record encoding and validation -------------------------------------------------------------

describe('encodeLogRecord', () => {
  it('returns a deep copy and its JSON', () => {
    const r = commit('g1');
    const e = encodeLogRecord(r);
    expect(e.record).toEqual(r);
    expect(e.record).not.toBe(r);
    expect(JSON.parse(e.json)).toEqual(r);
    (r.branches as unknown as { participant: string }[])[0]!.participant = 'changed';
    expect((e.record as typeof r).branches[0]!.participant).toBe('p0');
  });

  it.each([
    ['a gtrid longer than its column', { ...commit('g'), gtrid: 'x'.repeat(65) }],
    ['an empty gtrid', { ...commit('g'), gtrid: '' }],
    ['an unknown type', { ...commit('g'), type: 'prepare' }],
    ['a NUL character (jsonb refuses it)', { ...commit('g'), host: 'a\u0000b' }],
    ['an unpaired surrogate (jsonb refuses it)', { ...commit('g'), meta: { k: 'x\ud800y' } }],
    ['a NUL in a key', { ...commit('g'), meta: { 'a\u0000': 1 } }],
    ['an idempotency key longer than its column', { type: 'saga', gtrid: 'g', kind: 'steps', idempotencyKey: 'k'.repeat(201), coordinatorId: 'c', host: 'h', pid: 1, startedAt: 1 }],
  ])('refuses %s with TXC_LOG_IO, not-written', (_what, record) => {
    let err: unknown;
    try {
      encodeLogRecord(record as LogRecord);
    } catch (e) {
      err = e;
    }
    expect(TxcError.is(err, 'TXC_LOG_IO')).toBe(true);
    expect((err as TxcError).details['durability']).toBe('not-written');
  });

  it('accepts paired surrogates (emoji) and long text', () => {
    expect(() => encodeLogRecord({ ...commit('g'), host: '😀'.repeat(1000) })).not.toThrow();
  });

  it('refuses what JSON cannot encode', () => {
    const cyclic: Record<string, unknown> = { ...commit('g') };
    cyclic['self'] = cyclic;
    expect(() => encodeLogRecord(cyclic as unknown as LogRecord)).toThrow(/cannot be encoded/);
  });
});

describe('logRecordProblem', () => {
  const saga: SagaRecord = { type: 'saga', gtrid: 'g', kind: 'defined', name: 'n', input: null, coordinatorId: 'c', host: 'h', pid: 1, startedAt: 1 };
  it('accepts every valid record type', () => {
    for (const r of [commit('g'), end('g'), heuristic('g'), saga, { type: 'saga-step', gtrid: 'g', step: 's', op: 'action', phase: 'intent', at: 1 } as const]) {
      expect(logRecordProblem(r, { gtrid: 'g', type: r.type })).toBeUndefined();
    }
  });

  it.each([
    [null, 'not a JSON object'],
    [[1], 'not a JSON object'],
    [{ type: 'nope', gtrid: 'g' }, 'unknown record type'],
    [{ type: 'end', gtrid: 'g' }, 'at must be a number'],
    [{ type: 'end', gtrid: 'g', at: 1, status: 'weird' }, 'status must be one of'],
    [{ ...commit('g'), branches: [{ participant: 'p' }] }, 'branches[0]'],
    [{ ...commit('g'), pid: '1' }, 'pid must be a number'],
    [{ type: 'saga-step', gtrid: 'g', step: 's', op: 'action', phase: 'maybe', at: 1 }, 'phase must be one of'],
  ])('reports %j', (value, reason) => {
    expect(logRecordProblem(value)).toContain(reason);
  });

  it('checks the record against its row', () => {
    expect(logRecordProblem(end('g'), { gtrid: 'other', type: 'end' })).toContain('differs from the row');
    expect(logRecordProblem(end('g'), { gtrid: 'g', type: 'commit' })).toContain('differs from the row');
  });
});

describe('logTables', () => {
  it('quotes a valid schema and refuses anything that would need escaping', () => {
    expect(logTables('txc_log').records).toBe('"txc_log".txcoord_log_records');
    expect(logTables().owners).toBe('"public".txcoord_log_owners');
    for (const bad of ['Public', 'a"b', 'a;drop table x', '1abc', '', 'a'.repeat(64)]) {
      expect(() => logTables(bad)).toThrow(TxcError);
    }
  });

  it('openPostgresLog refuses a bad config before connecting', async () => {
    const pool = fakePool(() => {
      throw new Error('must not be reached');
    });
    const open = (schema: string, leaseMs?: number, id = 'c1') =>
      openPostgresLog({ type: 'postgres', connectionString: 'postgres://x', schema, ...(leaseMs !== undefined ? { leaseMs } : {}) }, { coordinatorId: id, logger: silent, pool });
    await expect(open('Bad"Schema')).rejects.toMatchObject({ code: 'TXC_CONFIG_INVALID' });
    await expect(open('ok', 0)).rejects.toMatchObject({ code: 'TXC_CONFIG_INVALID' });
    await expect(open('ok', 1.5)).rejects.toMatchObject({ code: 'TXC_CONFIG_INVALID' });
    await expect(open('ok', undefined, 'bad id!')).rejects.toMatchObject({ code: 'TXC_ID_INVALID' });
    expect(pool.statements).toEqual([]);
  });
});

// ---- group commit -------------------------------------------------------------------------------

describe('GroupCommit', () => {
  function harness(opts: { flushDelayMs?: number; maxBatch?: number; write?: (batch: readonly QueuedItem<number>[]) => Promise<Map<number, Error>> } = {}) {
    const batches: Array<Array<[number, boolean]>> = [];
    const unforcedFailures: number[] = [];
    const gc = new GroupCommit<number>({
      write: async (batch) => {
        batches.push(batch.map((b) => [b.item, b.force]));
        return opts.write ? opts.write(batch) : new Map();
      },
      flushDelayMs: opts.flushDelayMs ?? 50,
      maxBatch: opts.maxBatch ?? 1000,
      onUnforcedFailure: (item) => unforcedFailures.push(item),
    });
    return { gc, batches, unforcedFailures };
  }

  it('writes 200 forced appends of one tick as one batch', async () => {
    const { gc, batches } = harness();
    await Promise.all(Array.from({ length: 200 }, (_, i) => gc.submit(i, true)));
    expect(batches).toHaveLength(1);
    expect(batches[0]).toHaveLength(200);
    expect(gc.stats()).toMatchObject({ batches: 1, items: 200, failedBatches: 0 });
  });

  it('gathers appends that arrive during a write into the next batch', async () => {
    const gate = deferred();
    let calls = 0;
    const { gc, batches } = harness({ write: async () => (calls++ === 0 && (await gate.promise), new Map()) });
    const first = gc.submit(0, true);
    await tick();
    expect(batches).toHaveLength(1);
    const later = Array.from({ length: 50 }, (_, i) => gc.submit(i + 1, true));
    await tick();
    expect(batches).toHaveLength(1); // still writing the first
    gate.resolve();
    await Promise.all([first, ...later]);
    expect(batches.map((b) => b.length)).toEqual([1, 50]);
  });

  it('a forced append resolves only after its batch is written', async () => {
    const gate = deferred();
    const { gc } = harness({ write: async () => (await gate.promise, new Map()) });
    let done = false;
    const p = gc.submit(1, true).then(() => (done = true));
    await tick();
    await tick();
    expect(done).toBe(false);
    gate.resolve();
    await p;
    expect(done).toBe(true);
  });

  it('unforced appends resolve at once and are written within the flush delay, or with the next forced one', async () => {
    const { gc, batches } = harness({ flushDelayMs: 20 });
    await gc.submit(1, false);
    await gc.submit(2, false);
    expect(batches).toEqual([]);
    await sleep(60);
    expect(batches).toEqual([
      [
        [1, false],
        [2, false],
      ],
    ]);
    await gc.submit(3, false);
    await gc.submit(4, true);
    expect(batches[1]).toEqual([
      [3, false],
      [4, true],
    ]);
  });

  it('splits at maxBatch', async () => {
    const { gc, batches } = harness({ maxBatch: 3 });
    await Promise.all(Array.from({ length: 7 }, (_, i) => gc.submit(i, true)));
    expect(batches.map((b) => b.length)).toEqual([3, 3, 1]);
  });

  it('a failed batch rejects its forced appends and reports its unforced ones; the next batch goes on', async () => {
    let calls = 0;
    const { gc, unforcedFailures } = harness({
      write: async () => {
        if (calls++ === 0) throw new Error('boom');
        return new Map();
      },
    });
    await gc.submit(1, false);
    const results = await Promise.allSettled([gc.submit(2, true), gc.submit(3, true)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(unforcedFailures).toEqual([1]);
    await gc.submit(4, true);
    expect(gc.stats()).toMatchObject({ batches: 1, failedBatches: 1 });
  });

  it('refuses items one by one when the write says so', async () => {
    const { gc } = harness({ write: async (batch) => new Map(batch.filter((b) => b.item % 2 === 1).map((b) => [b.item, new Error(`odd ${b.item}`)])) });
    const results = await Promise.allSettled([0, 1, 2, 3].map((i) => gc.submit(i, true)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
  });

  it('flush() writes what is queued and reports unforced failures; failQueued() drops the queue', async () => {
    const { gc, batches } = harness({ flushDelayMs: 10_000, write: async (b) => new Map(b.filter((x) => x.item === 9).map((x) => [x.item, new Error('no')])) });
    await gc.submit(1, false);
    await gc.flush();
    expect(batches).toHaveLength(1);
    await gc.submit(9, false);
    await expect(gc.flush()).rejects.toThrow('no');
    await gc.submit(5, false);
    const forced = gc.submit(6, true);
    const dropped = gc.failQueued(new Error('stop'));
    expect(dropped).toEqual([5, 6]);
    await expect(forced).rejects.toThrow('stop');
    gc.stop();
  });
});

// ---- the live view ------------------------------------------------------------------------------

describe('LiveView', () => {
  it('shows appended records at once, keeps committed ones, and takes out discarded ones', () => {
    const v = new LiveView();
    v.load([commit('a')]);
    v.accept(1, commit('b'));
    v.accept(2, end('a'));
    expect(v.records().map((r) => r.gtrid)).toEqual(['b']);
    expect(v.has('a')).toBe(false);
    // The end record's batch failed: a is live again; b's batch committed.
    v.commit([1]);
    v.discard([2]);
    expect(v.records().map((r) => `${r.type}:${r.gtrid}`)).toEqual(['commit:a', 'commit:b']);
    expect([...v.durableGtrids()].sort()).toEqual(['a', 'b']);
    expect(v.pendingGtrids().size).toBe(0);
  });

  it('drops a transaction taken over, and clears everything', () => {
    const v = new LiveView();
    v.load([commit('a'), heuristic('a'), commit('b')]);
    v.drop('a');
    expect(v.records().map((r) => r.gtrid)).toEqual(['b']);
    expect(v.transactions).toBe(1);
    v.clear();
    expect(v.records()).toEqual([]);
  });

  it('keeps records of the same transaction in append order across a rebuild', () => {
    const v = new LiveView();
    v.accept(1, commit('a'));
    v.accept(2, heuristic('b'));
    v.accept(3, heuristic('a'));
    v.commit([1]);
    v.discard([2]);
    expect(v.records().map((r) => `${r.type}:${r.gtrid}`)).toEqual(['commit:a', 'heuristic:a']);
  });
});

// ---- one log transaction and a lost COMMIT ------------------------------------------------------

describe('logTransaction', () => {
  const begin = (text: string): Answer | undefined => (text.startsWith('BEGIN') ? { rows: [{ txid: '777' }] } : undefined);

  it('commits and returns the body result, asking for the xid in the BEGIN round trip', async () => {
    const pool = fakePool((text) => begin(text) ?? {});
    const out = await logTransaction(pool, async ({ txid }) => `done ${txid}`, { commitCheckMs: 100 });
    expect(out).toBe('done 777');
    expect(pool.statements).toEqual(['BEGIN; SELECT pg_current_xact_id()::text', 'COMMIT']);
    expect(pool.released).toEqual([false]);
  });

  it('folds SET LOCAL synchronous_commit into the BEGIN round trip', async () => {
    const texts: string[] = [];
    const pool = fakePool((text) => (texts.push(text), begin(text) ?? {}));
    await logTransaction(pool, async () => undefined, { commitCheckMs: 100, synchronousCommit: 'off' });
    expect(texts[0]).toBe('BEGIN; SET LOCAL synchronous_commit TO off; SELECT pg_current_xact_id()::text AS txid');
  });

  it('a failure before COMMIT rolls back: not-written', async () => {
    const pool = fakePool((text) => begin(text) ?? {});
    const syntax = Object.assign(new Error('syntax error'), { code: '42601' });
    const err = await logTransaction(pool, async () => Promise.reject(syntax), { commitCheckMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LogTransactionError);
    expect((err as LogTransactionError).durability).toBe('not-written');
    expect(pool.statements.at(-1)).toBe('ROLLBACK');
    expect(pool.released).toEqual([false]);
  });

  it('a connection lost before COMMIT: not-written, the connection destroyed', async () => {
    const pool = fakePool((text) => begin(text) ?? {});
    const err = await logTransaction(pool, async () => Promise.reject(connectionLost()), { commitCheckMs: 100 }).catch((e: unknown) => e);
    expect((err as LogTransactionError).durability).toBe('not-written');
    expect(pool.statements).not.toContain('ROLLBACK');
    expect(pool.released).toEqual([true]);
  });

  it('COMMIT answered ROLLBACK (the transaction had failed): not-written', async () => {
    const pool = fakePool((text) => begin(text) ?? (text === 'COMMIT' ? { command: 'ROLLBACK' } : {}));
    const err = await logTransaction(pool, async () => 1, { commitCheckMs: 100 }).catch((e: unknown) => e);
    expect((err as LogTransactionError).durability).toBe('not-written');
  });

  it.each([
    ['committed', 'resolves'],
    ['aborted', 'not-written'],
  ] as const)('a lost COMMIT the server reports %s: %s', async (status, expected) => {
    let asked = 0;
    const pool = fakePool((text, values) => {
      if (text === 'COMMIT') throw connectionLost();
      if (text.includes('pg_xact_status')) {
        expect(values).toEqual(['777']);
        // First still in progress (the backend finishing its commit), then final.
        return { rows: [{ status: asked++ === 0 ? 'in progress' : status }] };
      }
      return begin(text) ?? {};
    });
    const out = await logTransaction(pool, async () => 'body', { commitCheckMs: 2_000 }).then(
      (v) => v,
      (e: unknown) => e,
    );
    if (expected === 'resolves') expect(out).toBe('body');
    else expect((out as LogTransactionError).durability).toBe('not-written');
    expect(asked).toBe(2);
    expect(pool.released).toEqual([true]);
  });

  it('a lost COMMIT the server cannot be asked about in time: unknown, with the xid', async () => {
    const pool = fakePool((text) => {
      if (text === 'COMMIT' || text.includes('pg_xact_status')) throw connectionLost();
      return begin(text) ?? {};
    });
    const t0 = Date.now();
    const err = await logTransaction(pool, async () => 1, { commitCheckMs: 150 }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(err).toMatchObject({ durability: 'unknown', txid: '777' });
  });

  it('a hung status query does not hold the caller past the budget', async () => {
    const pool = fakePool((text) => {
      if (text === 'COMMIT') throw connectionLost();
      if (text.includes('pg_xact_status')) return new Promise<Answer>(() => undefined);
      return begin(text) ?? {};
    });
    const t0 = Date.now();
    const err = await logTransaction(pool, async () => 1, { commitCheckMs: 100 }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect((err as LogTransactionError).durability).toBe('unknown');
  });
});

// ---- the log over a fake database ---------------------------------------------------------------

describe('PostgresLog over a scripted database', () => {
  const settings: PostgresLogSettings = {
    flushDelayMs: 20,
    maxBatch: 500,
    commitCheckMs: 100,
    retentionMs: 1000,
    reclaimAfterMs: 0,
    autoRenew: false,
    serverSyncOff: false,
  };

  interface Script {
    commit?: () => Answer;
    status?: () => Answer;
    /** Gtrids another process owns now. */
    elsewhere?: Set<string>;
    fenced?: boolean;
    owned?: string[];
  }

  function build(script: Script, records: LogRecord[] = []) {
    let batches = 0;
    const pool = fakePool((text, values) => {
      if (text.startsWith('BEGIN')) return { rows: [{ txid: String(100 + batches) }] };
      if (text.startsWith('with fence')) {
        batches++;
        if (script.fenced) return { rows: [{ fenced: 0, accepted: [], written: 0 }] };
        const gtrids = values![3] as string[];
        return { rows: [{ fenced: 1, accepted: gtrids.filter((g) => !script.elsewhere?.has(g)), written: 0 }] };
      }
      if (text.startsWith('select gtrid, owner from')) return { rows: [...(script.elsewhere ?? [])].map((g) => ({ gtrid: g, owner: 'other' })) };
      if (text.startsWith('select gtrid, owner, ended')) return { rows: [...(script.elsewhere ?? [])].map((g) => ({ gtrid: g, owner: 'other', ended: false })) };
      if (text === 'COMMIT') return script.commit?.() ?? {};
      if (text.includes('pg_xact_status')) return script.status?.() ?? { rows: [{ status: 'committed' }] };
      if (/^update \S+instances set lease_until = now\(\) \+/.test(text)) return { rowCount: script.fenced ? 0 : 1 };
      if (/^update \S+owners set lease_until = now\(\) \+/.test(text)) return { rows: (script.owned ?? []).map((gtrid) => ({ gtrid })) };
      if (text.startsWith('select r.record from')) return { rows: (values![0] as string[]).flatMap((g) => [{ record: commit(g) }, { record: heuristic(g) }]) };
      return {};
    });
    const log = new PostgresLog({
      pool,
      tables: logTables('t'),
      identity: { coordinatorId: 'c1', token: 'tok', host: 'h', pid: 1, leaseMs: 60_000 },
      logger: silent,
      settings,
      records,
      leaseValidUntil: performance.now() + 60_000,
    });
    return { log, pool };
  }

  it('append, live and owns; an end takes the transaction out', async () => {
    const { log } = build({});
    await log.append(commit('g1'), true);
    expect(log.live()).toEqual([commit('g1')]);
    expect(log.owns('g1')).toBe(true);
    await log.append(end('g1'), false);
    expect(log.live()).toEqual([]);
    expect(log.owns('g1')).toBe(false);
    await log.close();
    expect(log.stats()).toMatchObject({ appends: 2, written: 2 });
  });

  it('a lost COMMIT the server cannot answer: unknown; live() and appends refused until settled', async () => {
    let commits = 0;
    let reachable = false;
    const script: Script = {
      commit: () => {
        if (commits++ === 0) throw connectionLost();
        return {};
      },
      status: () => {
        if (!reachable) throw connectionLost();
        return { rows: [{ status: 'committed' }] };
      },
    };
    const { log } = build(script, [commit('old')]);
    const err = await log.append(commit('g1'), true).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_LOG_IO')).toBe(true);
    expect((err as TxcError).details).toMatchObject({ durability: 'unknown', txid: '100' });
    expect(log.stats().inDoubt).toBe(true);
    expect(() => log.live()).toThrow(/not known yet/);
    const refused = await log.append(commit('g2'), true).catch((e: unknown) => e);
    expect((refused as TxcError).details['durability']).toBe('not-written');

    reachable = true;
    for (let i = 0; i < 50 && log.stats().inDoubt; i++) await sleep(50);
    expect(log.stats().inDoubt).toBe(false);
    // It had committed: live after all. g2 was refused, so it is not.
    expect(log.live().map((r) => r.gtrid)).toEqual(['old', 'g1']);
    await log.append(commit('g3'), true);
    expect(log.live().map((r) => r.gtrid)).toEqual(['old', 'g1', 'g3']);
    await log.close();
  });

  it('a lost COMMIT settled later as aborted: the records leave live()', async () => {
    let calls = 0;
    const { log } = build({
      commit: () => {
        throw connectionLost();
      },
      status: () => {
        if (calls++ < 3) throw connectionLost();
        return { rows: [{ status: 'aborted' }] };
      },
    });
    const err = await log.append(commit('g1'), true).catch((e: unknown) => e);
    expect((err as TxcError).details['durability']).toBe('unknown');
    for (let i = 0; i < 50 && log.stats().inDoubt; i++) await sleep(50);
    expect(log.live()).toEqual([]);
    await log.close();
  });

  it('a transaction owned elsewhere is refused alone, and dropped from live()', async () => {
    const { log } = build({ elsewhere: new Set(['taken']) }, [commit('taken')]);
    expect(log.owns('taken')).toBe(true);
    const [a, b] = await Promise.allSettled([log.append(end('taken'), true), log.append(commit('mine'), true)]);
    expect(a.status).toBe('rejected');
    expect((a as PromiseRejectedResult).reason).toMatchObject({ code: 'TXC_LOG_IO', details: { reason: 'owned-elsewhere', owner: 'other' } });
    expect(b.status).toBe('fulfilled');
    expect(log.owns('taken')).toBe(false);
    expect(log.live().map((r) => r.gtrid)).toEqual(['mine']);
    await log.close();
  });

  it('a renewal that no longer finds a transaction drops it; one that finds an unknown one loads it', async () => {
    const script: Script = { elsewhere: new Set(['g1']), owned: ['g2', 'g3'] };
    const { log, pool } = build(script, [commit('g1'), commit('g2')]);
    await log.renewLeases();
    expect(log.owns('g1')).toBe(false);
    // g3: owned according to the table (a take-over whose COMMIT answer was lost) but not loaded.
    expect(log.live().map((r) => `${r.type}:${r.gtrid}`)).toEqual(['commit:g2', 'commit:g3', 'heuristic:g3']);
    expect(pool.statements.some((s) => s.startsWith('select gtrid, owner,'))).toBe(true);
    await log.close();
  });

  it('losing the coordinator id fences everything off', async () => {
    const script: Script = {};
    const { log } = build(script, [commit('g1')]);
    script.fenced = true;
    const err = await log.append(commit('g2'), true).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_LOG_LOCKED')).toBe(true);
    expect(log.stats().identityLost).toBe(true);
    expect(() => log.live()).toThrow(/claimed coordinator id/);
    expect(log.owns('g1')).toBe(false);
    await expect(log.takeOver()).rejects.toMatchObject({ code: 'TXC_LOG_LOCKED' });
    await log.close();
  });

  it('owns() turns false once its own lease may have run out', async () => {
    const { log } = build({}, [commit('g1')]);
    expect(log.owns('g1')).toBe(true);
    (log as unknown as { leaseValidUntil: number }).leaseValidUntil = performance.now() - 1;
    expect(log.owns('g1')).toBe(false);
    await log.close();
  });

  it('after close: TXC_LOG_CLOSED', async () => {
    const { log } = build({});
    await log.close();
    await expect(log.append(commit('g'), true)).rejects.toMatchObject({ code: 'TXC_LOG_CLOSED' });
    await expect(log.takeOver()).rejects.toMatchObject({ code: 'TXC_LOG_CLOSED' });
    await expect(log.history('g')).rejects.toMatchObject({ code: 'TXC_LOG_CLOSED' });
    await expect(log.compact()).rejects.toMatchObject({ code: 'TXC_LOG_CLOSED' });
  });

  it('close() writes buffered unforced records first', async () => {
    const { log, pool } = build({});
    await log.append(commit('g1'), false);
    expect(pool.statements.filter((s) => s.startsWith('with fence'))).toHaveLength(0);
    await log.close();
    expect(pool.statements.filter((s) => s.startsWith('with fence'))).toHaveLength(1);
  });
});
