import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCoordinator } from '../../../coordinator/create-coordinator.js';
import { TxcError } from '../../../coordinator/errors.js';
import { newGtrid } from '../../../coordinator/xid.js';
import type { PostgresLogConfig } from '../../../log/decision-log.js';
import type { CommitRecord, EndRecord, LogRecord, SagaRecord, SagaStepRecord } from '../../../log/log-record.js';
import { inspectPostgresLog, openPostgresLog, verifyPostgresLog, type PostgresDecisionLog, type PostgresLogOptions } from '../../../log/postgres/index.js';
import { createTcpProxy, targetOf, viaProxy } from '../../faults/tcp-proxy.js';
import { mysqlUrl, pgUrl, requireDbOrSkip, rollbackLeftovers } from '../db-env.js';

const ready = await requireDbOrSkip('postgres');
const mysqlReady = ready && (await requireDbOrSkip('mysql'));
const silent = pino({ level: 'silent' });
// Each test gets its own schema: a log closed by one test would otherwise be taken over by the next.
let schema = '';
let R = '';
let O = '';
let I = '';
const schemas: string[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function commit(gtrid: string, coordinatorId = 'c'): CommitRecord {
  return {
    type: 'commit',
    gtrid,
    protocol: '2pc',
    branches: [
      { participant: 'erp', bqual: 'b0', localTxId: '1234' },
      { participant: 'crm', bqual: 'b1' },
    ],
    decidedAt: Date.now(),
    coordinatorId,
    host: 'test',
    pid: 1,
    startedAt: Date.now() - 5,
  };
}
const end = (gtrid: string, status?: EndRecord['status']): EndRecord => ({ type: 'end', gtrid, at: Date.now(), ...(status ? { status } : {}) });

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return TxcError.is(err) ? err.code : String(err);
  }
}

describe.skipIf(!ready)('PostgreSQL shared decision log (real server)', () => {
  let admin: pg.Pool;
  const opened: PostgresDecisionLog[] = [];
  const config = (extra: Partial<PostgresLogConfig> = {}): PostgresLogConfig => ({ type: 'postgres', connectionString: pgUrl, schema, ...extra });

  async function open(coordinatorId: string, opts: Partial<PostgresLogOptions> = {}, extra: Partial<PostgresLogConfig> = {}): Promise<PostgresDecisionLog> {
    const log = await openPostgresLog(config(extra), { coordinatorId, logger: silent, ...opts });
    opened.push(log);
    return log;
  }

  /** A fresh coordinator id per test: the schema is shared by the whole file. */
  const uid = (prefix: string) => `${prefix}${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    admin = new pg.Pool({ connectionString: pgUrl });
  });

  beforeEach(() => {
    schema = `txc_pglog_${randomBytes(4).toString('hex')}`;
    schemas.push(schema);
    [R, O, I] = ['records', 'owners', 'instances'].map((t) => `"${schema}".txcoord_log_${t}`) as [string, string, string];
  });

  afterEach(async () => {
    for (const log of opened.splice(0)) await log.close().catch(() => undefined);
    await admin.query(`drop schema if exists "${schema}" cascade`);
  });

  afterAll(async () => {
    for (const s of schemas) await admin.query(`drop schema if exists "${s}" cascade`);
    await admin.end();
  });

  it('creates the tables, appends, shows live records, and ends them', async () => {
    const id = uid('a');
    const log = await open(id);
    expect(log.shared).toBe(true);
    expect(log.owner).toBe(id);
    const g = newGtrid(id);
    const record = commit(g, id);
    await log.append(record, true);
    expect(log.live()).toEqual([record]);
    expect(log.owns(g)).toBe(true);

    const rows = await admin.query(`select gtrid, type, record from ${R} where gtrid = $1`, [g]);
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0]).toMatchObject({ gtrid: g, type: 'commit', record: { type: 'commit', gtrid: g } });
    const owner = await admin.query(`select owner, ended, lease_until > now() as leased from ${O} where gtrid = $1`, [g]);
    expect(owner.rows[0]).toEqual({ owner: id, ended: false, leased: true });

    // Unforced: resolves once buffered, and live() reflects it at once.
    await log.append(end(g), false);
    expect(log.live()).toEqual([]);
    expect(log.owns(g)).toBe(false);
    await log.close();
    const after = await admin.query(`select ended from ${O} where gtrid = $1`, [g]);
    expect(after.rows[0]?.ended).toBe(true);
    expect(await code(log.append(commit(newGtrid(id), id), true))).toBe('TXC_LOG_CLOSED');
  });

  it('reopening after close sees the live records of its own id, and only those', async () => {
    const id = uid('r');
    const other = await open(uid('o'));
    const first = await open(id);
    const [g1, g2, g3] = [newGtrid(id), newGtrid(id), newGtrid(other.owner)];
    await first.append(commit(g1, id), true);
    await first.append({ type: 'heuristic', gtrid: g1, participant: 'erp', bqual: 'b0', expected: 'commit', actual: 'rolled-back', at: 1 }, false);
    await first.append(commit(g2, id), true);
    await first.append(end(g2), true);
    await other.append(commit(g3, other.owner), true);
    await first.close();

    const again = await open(id);
    expect(again.live().map((r) => [r.type, r.gtrid])).toEqual([
      ['commit', g1],
      ['heuristic', g1],
    ]);
    expect(again.owns(g1)).toBe(true);
    expect(again.owns(g3)).toBe(false);
  });

  it('group commit: 200 concurrent forced appends share a few database transactions', async () => {
    const id = uid('g');
    const log = await open(id);
    const gtrids = Array.from({ length: 200 }, () => newGtrid(id));
    await Promise.all(gtrids.map((g) => log.append(commit(g, id), true)));
    const stats = log.stats();
    expect(stats.appends).toBe(200);
    expect(stats.written).toBe(200);
    // Counted by the server: rows inserted by one transaction share its xmin.
    const tx = await admin.query<{ n: number }>(`select count(distinct xmin::text)::int as n from ${R} where gtrid = any($1::text[])`, [gtrids]);
    expect(tx.rows[0]!.n).toBe(stats.batches);
    expect(stats.batches).toBeLessThanOrEqual(3);
    expect(log.live()).toHaveLength(200);
    process.stderr.write(`[pglog] 200 forced appends in one burst -> ${stats.batches} database transaction(s)\n`);
  });

  it('group commit: callers arriving while commits are in flight join the next batch', async () => {
    const id = uid('h');
    const log = await open(id);
    const gtrids = Array.from({ length: 200 }, () => newGtrid(id));
    // 200 callers spread over ~20 ms, so that most arrive while an earlier batch is committing.
    await Promise.all(gtrids.map((g, i) => sleep(i % 20).then(() => log.append(commit(g, id), true))));
    const tx = await admin.query<{ n: number }>(`select count(distinct xmin::text)::int as n from ${R} where gtrid = any($1::text[])`, [gtrids]);
    const n = tx.rows[0]!.n;
    expect(n).toBe(log.stats().batches);
    expect(n).toBeLessThan(40);
    process.stderr.write(`[pglog] 200 forced appends spread over 20 ms -> ${n} database transactions\n`);
  });

  it('unforced appends alone are written within the flush delay, in one transaction', async () => {
    const id = uid('u');
    const log = await open(id, { flushDelayMs: 30 });
    const gtrids = Array.from({ length: 20 }, () => newGtrid(id));
    for (const g of gtrids) await log.append(commit(g, id), false);
    expect(log.live()).toHaveLength(20);
    expect(log.stats().batches).toBe(0);
    await sleep(300);
    expect(log.stats().batches).toBe(1);
    const n = await admin.query<{ n: number }>(`select count(*)::int as n from ${R} where gtrid = any($1::text[])`, [gtrids]);
    expect(n.rows[0]!.n).toBe(20);
  });

  it('refuses a second live process with the same coordinator id (TXC_LOG_LOCKED)', async () => {
    const id = uid('l');
    const first = await open(id);
    const err = await openPostgresLog(config(), { coordinatorId: id, logger: silent }).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_LOG_LOCKED')).toBe(true);
    expect((err as Error).message).toContain('another live process uses coordinator id');
    await first.close();
    // A clean close expires the lease: the id can be used again at once.
    const second = await open(id);
    expect(second.owner).toBe(id);
  });

  it('a transaction whose lease expired is taken over with its records; the old owner lets go at its next renewal', async () => {
    const a = await open(uid('ea'), { autoRenew: false });
    const b = await open(uid('eb'));
    const g = newGtrid(a.owner);
    await a.append(commit(g, a.owner), true);
    await a.append({ type: 'heuristic', gtrid: g, participant: 'crm', bqual: 'b1', expected: 'commit', actual: 'unknown', at: 2 }, true);
    // Only this transaction's lease runs out (as after a long pause of its owner).
    await admin.query(`update ${O} set lease_until = now() - interval '1 second' where gtrid = $1`, [g]);

    const took = await b.takeOver();
    expect(took.transactions).toEqual([g]);
    expect(took.coordinators).not.toContain(a.owner);
    expect(b.live().filter((r) => r.gtrid === g).map((r) => r.type)).toEqual(['commit', 'heuristic']);
    expect(b.owns(g)).toBe(true);
    expect((await admin.query(`select owner from ${O} where gtrid = $1`, [g])).rows[0]?.owner).toBe(b.owner);

    expect(a.owns(g)).toBe(true); // it has not noticed yet
    await a.renewLeases();
    expect(a.owns(g)).toBe(false);
    expect(a.live().some((r) => r.gtrid === g)).toBe(false);
    // A late write of the old owner is fenced off; the new owner's goes through.
    const late = await a.append(end(g), true).catch((e: unknown) => e);
    expect(TxcError.is(late, 'TXC_LOG_IO')).toBe(true);
    expect((late as TxcError).details).toMatchObject({ reason: 'owned-elsewhere', owner: b.owner, durability: 'not-written' });
    await b.append(end(g), true);
    expect(b.live().some((r) => r.gtrid === g)).toBe(false);
    expect((await b.history(g)).map((r) => r.type)).toEqual(['commit', 'heuristic', 'end']);
    // A second pass finds nothing more.
    expect((await b.takeOver()).transactions).toEqual([]);
  });

  it('a dead process: its transactions and then its coordinator id are claimed, and it is fenced off if it comes back', async () => {
    const a = await open(uid('da'), { autoRenew: false }, { leaseMs: 500 });
    const b = await open(uid('db'));
    const g = newGtrid(a.owner);
    await a.append(commit(g, a.owner), true);
    await sleep(700);
    expect(a.owns(g)).toBe(false); // past its own lease it no longer claims to own anything

    const took = await b.takeOver();
    expect(took.transactions).toEqual([g]);
    expect(took.coordinators).toContain(a.owner);
    expect(b.live().some((r) => r.gtrid === g && r.type === 'commit')).toBe(true);

    // The paused process wakes up: its id is gone, it must not write or hand out live().
    await a.renewLeases();
    expect(a.stats().identityLost).toBe(true);
    expect(await code(a.append(commit(newGtrid(a.owner), a.owner), true))).toBe('TXC_LOG_LOCKED');
    expect(() => a.live()).toThrow(/claimed coordinator id/);

    // While b recovers the id, nobody may start under it; once released, it can.
    const during = await openPostgresLog(config(), { coordinatorId: a.owner, logger: silent }).catch((e: unknown) => e);
    expect(TxcError.is(during, 'TXC_LOG_LOCKED')).toBe(true);
    expect((during as Error).message).toContain('being recovered by');
    await b.releaseCoordinator(a.owner);
    const restarted = await open(a.owner);
    expect(restarted.live()).toEqual([]); // g belongs to b now
  });

  it('two processes racing takeOver never claim the same transaction or coordinator id', async () => {
    const writer = await open(uid('w'), { autoRenew: false });
    const b = await open(uid('rb'), { reclaimAfterMs: 3_600_000 });
    const c = await open(uid('rc'), { reclaimAfterMs: 3_600_000 });
    for (let round = 0; round < 15; round++) {
      const gtrids = Array.from({ length: 25 }, () => newGtrid(writer.owner));
      await Promise.all(gtrids.map((g) => writer.append(commit(g, writer.owner), true)));
      await admin.query(`update ${O} set lease_until = now() - interval '1 second' where gtrid = any($1::text[])`, [gtrids]);
      const dead = Array.from({ length: 6 }, (_, i) => `dead${round}x${i}${randomBytes(2).toString('hex')}`);
      await admin.query(`insert into ${I} (coordinator_id, token, lease_until) select unnest($1::text[]), null, now() - interval '1 minute'`, [dead]);

      const byB: string[] = [];
      const byC: string[] = [];
      const idsB: string[] = [];
      const idsC: string[] = [];
      const race = async (log: PostgresDecisionLog, got: string[], ids: string[]) => {
        for (let i = 0; i < 12; i++) {
          const t = await log.takeOver(1 + ((i * 7 + round) % 5));
          got.push(...t.transactions);
          ids.push(...t.coordinators.filter((x) => dead.includes(x)));
          if (t.transactions.length === 0 && t.coordinators.length === 0) await sleep(1);
        }
      };
      await Promise.all([race(b, byB, idsB), race(c, byC, idsC)]);
      const claimed = [...byB, ...byC];
      expect(new Set(claimed).size).toBe(claimed.length); // never twice
      expect(new Set(claimed)).toEqual(new Set(gtrids)); // and all of them
      const ids = [...idsB, ...idsC];
      expect(new Set(ids).size).toBe(ids.length);
      expect(new Set(ids)).toEqual(new Set(dead));
      // Each holds exactly the records of what it claimed.
      for (const g of byB) expect(b.owns(g) && !c.owns(g)).toBe(true);
      for (const g of byC) expect(c.owns(g) && !b.owns(g)).toBe(true);
    }
  });

  it('claims a cleanly closed coordinator id once, and again after release', async () => {
    const d = await open(uid('cd'));
    const b = await open(uid('cb'), { reclaimAfterMs: 0 });
    const c = await open(uid('cc'), { reclaimAfterMs: 0 });
    await d.close();
    const first = await b.takeOver();
    expect(first.coordinators).toContain(d.owner);
    expect((await c.takeOver()).coordinators).not.toContain(d.owner);
    expect((await b.takeOver()).coordinators).not.toContain(d.owner); // b holds it already
    await b.releaseCoordinator(d.owner);
    expect((await c.takeOver()).coordinators).toContain(d.owner);
    const row = await admin.query(`select claimed_by from ${I} where coordinator_id = $1`, [d.owner]);
    expect(row.rows[0]?.claimed_by).toBe(c.owner);
    // Closing releases what c still holds.
    await c.close();
    const after = await admin.query(`select claimed_by from ${I} where coordinator_id = $1`, [d.owner]);
    expect(after.rows[0]?.claimed_by).toBeNull();
  });

  it('sagas: history after end, idempotency keys, and a duplicate key refused alone', async () => {
    const log = await open(uid('s'));
    const g = newGtrid(log.owner);
    const key = `order-${randomBytes(4).toString('hex')}`;
    const saga: SagaRecord = {
      type: 'saga',
      gtrid: g,
      kind: 'steps',
      steps: [{ name: 'reserve', participant: 'inventory', action: { path: '/reserve', body: { sku: 'A' } } }],
      idempotencyKey: key,
      coordinatorId: log.owner,
      host: 'h',
      pid: 2,
      startedAt: 1,
    };
    const step = (phase: SagaStepRecord['phase']): SagaStepRecord => ({ type: 'saga-step', gtrid: g, step: 'reserve', op: 'action', phase, at: 3 });
    await log.append(saga, true);
    expect(await log.findByIdempotencyKey(key)).toBe(g);
    expect(await log.findByIdempotencyKey('nope')).toBeUndefined();
    await log.append(step('intent'), true);
    await log.append(step('done'), false);
    await log.append(end(g, 'compensated'), true);
    expect(log.live().some((r) => r.gtrid === g)).toBe(false);
    const history = await log.history(g);
    expect(history.map((r) => (r.type === 'saga-step' ? `${r.type}:${r.phase}` : r.type))).toEqual(['saga', 'saga-step:intent', 'saga-step:done', 'end']);
    expect(history[0]).toEqual(saga);
    const row = await admin.query(`select ended, status, idempotency_key from ${O} where gtrid = $1`, [g]);
    expect(row.rows[0]).toEqual({ ended: true, status: 'compensated', idempotency_key: key });
    expect(await log.findByIdempotencyKey(key)).toBe(g); // until compaction

    // Same key again, in the same batch as an unrelated record: only the duplicate fails.
    const dup = newGtrid(log.owner);
    const other = newGtrid(log.owner);
    const [r1, r2] = await Promise.allSettled([log.append({ ...saga, gtrid: dup }, true), log.append(commit(other, log.owner), true)]);
    expect(r1.status).toBe('rejected');
    expect((r1 as PromiseRejectedResult).reason).toMatchObject({ code: 'TXC_LOG_IO', details: { reason: 'idempotency-key-taken' } });
    expect(r2.status).toBe('fulfilled');
    expect(log.owns(dup)).toBe(false);
    expect(log.owns(other)).toBe(true);
    expect(await log.history(dup)).toEqual([]);
  });

  it("oldestUnended: the oldest unfinished gtrid of one coordinator id, whoever owns it, never a longer id's", async () => {
    const id = uid('o');
    const log = await open(id);
    const at = (ms: number) => newGtrid(id, () => `${ms.toString(16).padStart(12, '0').replace(/^(.{8})(.{4})$/, '$1-$2')}-7000-8000-000000000000`);
    const [oldest, middle, newest] = [at(1_000_000), at(2_000_000), at(3_000_000)];
    expect(await log.oldestUnended(id)).toBeUndefined();
    for (const g of [newest, oldest, middle]) await log.append(commit(g, id), true);
    expect(await log.oldestUnended(id)).toBe(oldest);
    await log.append(end(oldest, 'committed'), true);
    expect(await log.oldestUnended(id)).toBe(middle);
    // Another coordinator whose id starts with this one's, with an older transaction.
    const longer = await open(`${id}x`);
    await longer.append(commit(newGtrid(`${id}x`, () => '00000000-0001-7000-8000-000000000000'), `${id}x`), true);
    expect(await log.oldestUnended(id)).toBe(middle);
  });

  it('compact() deletes transactions ended longer ago than the retention, and nothing else', async () => {
    const log = await open(uid('k'), { retentionMs: 60_000 });
    const [old, recent, live] = [newGtrid(log.owner), newGtrid(log.owner), newGtrid(log.owner)];
    for (const g of [old, recent, live]) await log.append(commit(g, log.owner), true);
    await log.append(end(old), true);
    await log.append(end(recent), true);
    await admin.query(`update ${O} set ended_at = now() - interval '2 days' where gtrid = $1`, [old]);
    await log.compact();
    expect(await log.history(old)).toEqual([]);
    expect((await admin.query(`select 1 from ${O} where gtrid = $1`, [old])).rowCount).toBe(0);
    expect((await log.history(recent)).map((r) => r.type)).toEqual(['commit', 'end']);
    expect((await log.history(live)).map((r) => r.type)).toEqual(['commit']);
    expect(log.live().map((r) => r.gtrid)).toEqual([live]);
  });

  it('rejects records the table cannot hold without failing their batch neighbours', async () => {
    const log = await open(uid('v'));
    const ok = newGtrid(log.owner);
    const bad = { ...commit(newGtrid(log.owner), log.owner), host: 'nul\u0000byte' };
    const [r1, r2] = await Promise.allSettled([log.append(bad, true), log.append(commit(ok, log.owner), true)]);
    expect(r1.status).toBe('rejected');
    expect(r2.status).toBe('fulfilled');
    expect(log.live().map((r) => r.gtrid)).toEqual([ok]);
  });

  it('inspect and verify read the shared log without registering; verify reports bad rows by seq', async () => {
    const log = await open(uid('i'));
    const g = newGtrid(log.owner);
    await log.append(commit(g, log.owner), true);
    const seen = await inspectPostgresLog(config());
    expect(seen.records).toBeGreaterThan(0);
    expect(seen.live.some((r) => r.gtrid === g)).toBe(true);
    expect(seen.instances.find((i) => i.coordinatorId === log.owner)).toMatchObject({ alive: true, claimedBy: null });
    expect(seen.transactions.find((t) => t.gtrid === g)).toMatchObject({ owner: log.owner, expired: false });

    const okBefore = await verifyPostgresLog(config());
    expect(okBefore.bad).toEqual([]);
    const inserted = await admin.query<{ seq: string }>(
      `insert into ${R} (gtrid, type, record) values ($1, 'commit', '{"type":"commit","gtrid":"x"}'::jsonb) returning seq::text as seq`,
      [g],
    );
    const report = await verifyPostgresLog(config());
    expect(report.ok).toBe(false);
    expect(report.bad).toEqual([{ seq: Number(inserted.rows[0]!.seq), gtrid: g, reason: expect.stringContaining('differs from the row') }]);
    await admin.query(`delete from ${R} where seq = $1::bigint`, [inserted.rows[0]!.seq]);

    const missing = await inspectPostgresLog({ ...config(), schema: 'txc_pglog_absent' }).catch((e: unknown) => e);
    expect(TxcError.is(missing, 'TXC_LOG_IO')).toBe(true);
  });

  describe('a COMMIT whose answer is lost (TCP proxy)', () => {
    const target = targetOf(pgUrl, 5432);

    async function viaProxyLog(id: string) {
      const proxy = createTcpProxy(target);
      const port = await proxy.listen();
      const log = await openPostgresLog(
        { type: 'postgres', connectionString: viaProxy(pgUrl, port), schema },
        { coordinatorId: id, logger: silent, autoRenew: false, commitCheckMs: 1_500, connectTimeoutMs: 500 },
      );
      opened.push(log);
      return { proxy, log };
    }
    // The simple-query message of exactly `COMMIT` (the writer's; no record text can match it).
    const COMMIT_MSG = (chunk: Buffer) => chunk.includes(Buffer.from('Q\u0000\u0000\u0000\u000bCOMMIT\u0000', 'latin1'));

    it('server committed, answer lost: the server is asked, and the append succeeds', async () => {
      const { proxy, log } = await viaProxyLog(uid('pa'));
      try {
        const g = newGtrid(log.owner);
        const rule = proxy.resetWhen(COMMIT_MSG, { timing: 'after-reply' });
        await log.append(commit(g, log.owner), true);
        expect(rule.fired).toBe(1);
        expect(log.live().map((r) => r.gtrid)).toEqual([g]);
        expect((await admin.query(`select 1 from ${R} where gtrid = $1`, [g])).rowCount).toBe(1);
      } finally {
        await proxy.close();
      }
    });

    it('COMMIT never reached the server: not-written, and live() drops the record', async () => {
      const { proxy, log } = await viaProxyLog(uid('pb'));
      try {
        const g = newGtrid(log.owner);
        proxy.resetWhen(COMMIT_MSG, { timing: 'before' });
        const err = await log.append(commit(g, log.owner), true).catch((e: unknown) => e);
        expect(TxcError.is(err, 'TXC_LOG_IO')).toBe(true);
        expect((err as TxcError).details['durability']).toBe('not-written');
        expect(log.live()).toEqual([]);
        expect((await admin.query(`select 1 from ${R} where gtrid = $1`, [g])).rowCount).toBe(0);
        // And the log goes on.
        const g2 = newGtrid(log.owner);
        await log.append(commit(g2, log.owner), true);
        expect(log.live().map((r) => r.gtrid)).toEqual([g2]);
      } finally {
        await proxy.close();
      }
    });

    it('server unreachable after a lost COMMIT: durability unknown, live() refuses until it is settled', async () => {
      const { proxy, log } = await viaProxyLog(uid('pc'));
      try {
        const g = newGtrid(log.owner);
        proxy.resetWhen(COMMIT_MSG, { timing: 'after-reply' });
        proxy.blackholeWhen(/pg_xact_status/, { times: 1 });
        const err = await log.append(commit(g, log.owner), true).catch((e: unknown) => e);
        expect(TxcError.is(err, 'TXC_LOG_IO')).toBe(true);
        expect((err as TxcError).details['durability']).toBe('unknown');
        expect(log.stats().inDoubt).toBe(true);
        expect(() => log.live()).toThrow(/not known yet/);
        expect(await code(log.append(commit(newGtrid(log.owner), log.owner), true))).toBe('TXC_LOG_IO');

        proxy.blackhole(false);
        const deadline = Date.now() + 15_000;
        while (log.stats().inDoubt && Date.now() < deadline) await sleep(100);
        expect(log.stats().inDoubt).toBe(false);
        // It had committed: the record is live after all.
        expect(log.live().map((r) => r.gtrid)).toEqual([g]);
      } finally {
        await proxy.close();
      }
    });
  });

  describe.skipIf(!ready || !mysqlReady)('under a real coordinator (PostgreSQL + MySQL participants)', () => {
    const T = 'txc_it_pglog_accounts';
    let my: mysql.Pool;

    beforeAll(async () => {
      my = mysql.createPool({ uri: mysqlUrl });
      await admin.query(`drop table if exists ${T}`);
      await admin.query(`create table ${T} (id int primary key, balance int not null)`);
      await admin.query(`insert into ${T} values (1, 1000)`);
      await my.query(`drop table if exists ${T}`);
      await my.query(`create table ${T} (id int primary key, balance int not null) engine=InnoDB`);
      await my.query(`insert into ${T} values (1, 1000)`);
    });

    afterAll(async () => {
      await admin.query(`drop table if exists ${T}`);
      await my.query(`drop table if exists ${T}`);
      await my.end();
    });

    it('runs a 2PC transaction whose commit record is in the shared table', async () => {
      const id = uid('co');
      await rollbackLeftovers(id);
      const coord = await createCoordinator({
        id,
        log: { type: 'postgres', connectionString: pgUrl, schema },
        participants: {
          erp: { driver: 'postgres', connectionString: pgUrl },
          crm: { driver: 'mysql', uri: mysqlUrl },
        },
        recovery: { intervalMs: 0 },
        backoff: { initialMs: 5, maxMs: 50 },
        logger: silent,
      });
      try {
        const r = await coord.transaction(async (tx) => {
          await tx.query('erp', `update ${T} set balance = balance - 10 where id = 1`);
          await tx.query('crm', `update ${T} set balance = balance + 10 where id = 1`);
        });
        expect(r).toMatchObject({ mode: '2pc' });
      } finally {
        await coord.close();
      }
      const rows = await admin.query<{ gtrid: string; record: CommitRecord }>(`select gtrid, record from ${R} where type = 'commit'`);
      expect(rows.rows).toHaveLength(1);
      const rec = rows.rows[0]!.record;
      expect(rec).toMatchObject({ type: 'commit', protocol: '2pc', coordinatorId: id });
      expect(rec.branches.map((b) => b.participant).sort()).toEqual(['crm', 'erp']);
      const owner = await admin.query(`select owner from ${O} where gtrid = $1`, [rows.rows[0]!.gtrid]);
      expect(owner.rows[0]?.owner).toBe(id);
      const inst = await admin.query(`select coordinator_id from ${I}`);
      expect(inst.rows.map((x: { coordinator_id: string }) => x.coordinator_id)).toContain(id);
      const pgBal = await admin.query(`select balance from ${T} where id = 1`);
      const [myBal] = await my.query(`select balance from ${T} where id = 1`);
      expect([Number(pgBal.rows[0]?.balance), Number((myBal as { balance: number }[])[0]?.balance)]).toEqual([990, 1010]);
    });
  });
});
