// Commit markers, the saga barrier and local-only mode of the PostgreSQL, MySQL/MariaDB and
// PGlite adapters, against the real databases. The server suites run in a schema / database of
// their own (dropped at the end), so they create the tables themselves and never touch
// txcoord_markers rows of anything else sharing the test database.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { barrierRangeBefore, branchXid, newGtrid, toMysqlXid, type Xid } from '../../../coordinator/xid.js';
import { createMysqlParticipant } from '../../../participants/mysql/index.js';
import type { BarrierRow, Branch, MarkerOutcome, Participant } from '../../../participants/participant.js';
import { createPgliteParticipant } from '../../../participants/pglite/index.js';
import { createPostgresParticipant } from '../../../participants/postgres/index.js';
import { mysqlUrl, pgUrl, requireDbOrSkip } from '../db-env.js';

const logger = pino({ level: 'silent' });
/** This run's coordinator id: every gtrid, gid, schema and database below carries it. */
const RUN = `bk${randomBytes(4).toString('hex')}`;
const gtrid = (): string => newGtrid(RUN);
const xid = (): Xid => branchXid(gtrid(), 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The same participant twice: as configured for 2PC, and with `localOnly`. */
interface Target {
  readonly twoPhase: Participant;
  readonly localOnly: Participant;
}

/** What a database-specific setup hands to the shared cases. */
interface SharedOptions {
  readonly target: () => Target;
  /** Whether two transactions can run at once (not on PGlite's single connection). */
  readonly concurrent: boolean;
}

async function caught(p: Promise<unknown>): Promise<TxcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!TxcError.is(err)) throw new Error(`expected a TxcError, got ${String(err)}`);
  return err;
}

/** A promise's state without waiting for it. */
function track<T>(p: Promise<T>): { readonly settled: () => boolean; readonly promise: Promise<T> } {
  let settled = false;
  const promise = p.finally(() => (settled = true));
  return { settled: () => settled, promise };
}

/** The cases every adapter passes the same way. */
function sharedCases(kind: string, opts: SharedOptions): void {
  const open: Branch[] = [];
  const local = async (p: Participant = opts.target().twoPhase): Promise<Branch> => {
    const b = await p.beginLocal!(xid());
    open.push(b);
    return b;
  };
  /** The committed outcome of `g`, read from a fresh connection (PGlite: when no branch holds the only one). */
  const committed = async (g: string, p: Participant = opts.target().twoPhase): Promise<MarkerOutcome | undefined> =>
    (await p.listMarkers!(g, 1))[0]?.outcome;
  /** Inserts a marker in its own committed local transaction. */
  const commitMarker = async (g: string, outcome: MarkerOutcome): Promise<'inserted' | MarkerOutcome> => {
    const b = await local();
    const answer = await b.insertMarker!(g, outcome);
    await b.commitOnePhase();
    return answer;
  };

  afterEach(() => {
    for (const b of open.splice(0)) b.release(true);
  });

  describe(`${kind}: commit markers`, () => {
    it('ensureBookkeeping is idempotent, also when called concurrently', async () => {
      const p = opts.target().twoPhase;
      await Promise.all([p.ensureBookkeeping!(), p.ensureBookkeeping!(), opts.target().localOnly.ensureBookkeeping!()]);
      await p.ensureBookkeeping!();
    });

    it("inserts ('inserted'), visible to others only after commit; a later insert reports the committed outcome", async () => {
      const g = gtrid();
      const b = await local();
      expect(await b.insertMarker!(g, 'commit')).toBe('inserted');
      expect(await b.hasWritten()).toBe(true);
      if (opts.concurrent) expect(await committed(g)).toBeUndefined();
      await b.commitOnePhase();
      expect(await committed(g)).toBe('commit');

      const again = await local();
      expect(await again.insertMarker!(g, 'abort')).toBe('commit');
      expect(await again.hasWritten()).toBe(true); // it found a row, but must still be finished, never skipped
      await again.commitOnePhase();
      expect(await committed(g)).toBe('commit');
    });

    it('a rolled-back marker leaves nothing, so the next insert wins', async () => {
      const g = gtrid();
      const b = await local();
      expect(await b.insertMarker!(g, 'commit')).toBe('inserted');
      await b.rollback();
      expect(await committed(g)).toBeUndefined();
      expect(await commitMarker(g, 'abort')).toBe('inserted');
      expect(await committed(g)).toBe('abort');
    });

    it('the same key twice in one transaction reports its own row', async () => {
      const g = gtrid();
      const b = await local();
      expect(await b.insertMarker!(g, 'abort')).toBe('inserted');
      expect(await b.insertMarker!(g, 'commit')).toBe('abort');
      await b.rollback();
    });

    it('a 2PC-mode branch (begin) can write a marker too', async () => {
      const g = gtrid();
      const b = await opts.target().twoPhase.begin(xid());
      open.push(b);
      expect(await b.insertMarker!(g, 'commit')).toBe('inserted');
      await b.commitOnePhase();
      expect(await committed(g)).toBe('commit');
    });

    it('rejects keys that do not fit (TXC_ID_INVALID) before sending anything; the branch stays usable', async () => {
      const b = await local();
      expect((await caught(b.insertMarker!('x'.repeat(65), 'commit'))).code).toBe('TXC_ID_INVALID');
      expect((await caught(b.insertMarker!('with space', 'commit'))).code).toBe('TXC_ID_INVALID');
      expect((await caught(b.insertMarker!(gtrid(), 'maybe' as MarkerOutcome))).code).toBe('TXC_ID_INVALID');
      expect(await b.insertMarker!('x'.repeat(64), 'commit')).toBe('inserted'); // the limit itself fits
      await b.rollback();
    });
  });

  describe(`${kind}: concurrent markers`, () => {
    it.skipIf(!opts.concurrent)(
      'an uncommitted marker makes a second insert wait; once it commits, the second reports its outcome',
      async () => {
        const g = gtrid();
        const a = await local();
        const b = await local();
        await b.query('select 1'); // B's snapshot predates A's commit (what matters on MySQL's REPEATABLE READ)
        expect(await a.insertMarker!(g, 'commit')).toBe('inserted');
        const pending = track(b.insertMarker!(g, 'abort'));
        await sleep(200);
        expect(pending.settled()).toBe(false);
        await a.commitOnePhase();
        expect(await pending.promise).toBe('commit');
        await b.rollback();
        expect(await committed(g)).toBe('commit');
      },
    );

    it.skipIf(!opts.concurrent)('when the first transaction rolls back instead, the waiting insert inserts', async () => {
      const g = gtrid();
      const a = await local();
      const b = await local();
      await b.query('select 1');
      expect(await a.insertMarker!(g, 'commit')).toBe('inserted');
      const pending = track(b.insertMarker!(g, 'abort'));
      await sleep(200);
      expect(pending.settled()).toBe(false);
      await a.rollback();
      expect(await pending.promise).toBe('inserted');
      await b.commitOnePhase();
      expect(await committed(g)).toBe('abort');
    });

    it.skipIf(!opts.concurrent)('barrier rows wait the same way and report the committed origin', async () => {
      const row: BarrierRow = { gid: `${RUN}-wait`, step: 'debit', op: 'action', origin: 'compensate' };
      const a = await local();
      const b = await local();
      await b.query('select 1');
      expect(await a.insertBarrier!(row)).toBe('inserted');
      const pending = track(b.insertBarrier!({ ...row, origin: 'action' }));
      await sleep(200);
      expect(pending.settled()).toBe(false);
      await a.commitOnePhase();
      expect(await pending.promise).toBe('compensate');
      await b.rollback();
    });
  });

  describe(`${kind}: saga barrier`, () => {
    it('reports duplicates by the existing origin, keyed by (gid, step, op)', async () => {
      const gid = `${RUN}-saga-1`;
      const b = await local();
      // A compensation that found no action writes the action's row as a placeholder…
      expect(await b.insertBarrier!({ gid, step: 'debit', op: 'action', origin: 'compensate' })).toBe('inserted');
      expect(await b.insertBarrier!({ gid, step: 'debit', op: 'compensate', origin: 'compensate' })).toBe('inserted');
      await b.commitOnePhase();
      // …so the late action finds it and does nothing.
      const late = await local();
      expect(await late.insertBarrier!({ gid, step: 'debit', op: 'action', origin: 'action' })).toBe('compensate');
      expect(await late.hasWritten()).toBe(true);
      // Other steps, other sagas, and keys differing only in case or by a trailing character are distinct.
      expect(await late.insertBarrier!({ gid, step: 'credit', op: 'action', origin: 'action' })).toBe('inserted');
      expect(await late.insertBarrier!({ gid, step: 'Debit', op: 'action', origin: 'action' })).toBe('inserted');
      expect(await late.insertBarrier!({ gid, step: 'debit.', op: 'action', origin: 'action' })).toBe('inserted');
      expect(await late.insertBarrier!({ gid: `${RUN}-saga-2`, step: 'debit', op: 'action', origin: 'action' })).toBe('inserted');
      await late.commitOnePhase();
      const third = await local();
      expect(await third.insertBarrier!({ gid, step: 'credit', op: 'action', origin: 'compensate' })).toBe('action');
      await third.rollback();
    });

    it('deleteBarriers removes exactly one coordinator\'s sagas started before a time, never a longer id sharing the prefix', async () => {
      const at = (coord: string, ms: number) => `txc1.${coord}.${ms.toString(16).padStart(12, '0')}7000800000000000000${RUN.length}`.slice(0, `txc1.${coord}.`.length + 32);
      const t0 = 1_700_000_000_000;
      const mine = RUN;
      const longer = `${RUN}0`;
      const rows = [at(mine, t0), at(mine, t0 + 1000), at(mine, t0 + 5000), at(longer, t0), at(longer, t0 + 1000)];
      const b = await local();
      for (const gid of rows) expect(await b.insertBarrier!({ gid, step: 'debit', op: 'action', origin: 'action' })).toBe('inserted');
      await b.commitOnePhase();
      const p = opts.target().twoPhase;
      const range = barrierRangeBefore(mine, t0 + 2000);
      expect(await p.deleteBarriers!(range)).toBe(2);
      expect(await p.deleteBarriers!(range)).toBe(0);
      // What is left answers as still there: the newer saga of this coordinator and both of the other's.
      const check = await local();
      for (const gid of [rows[2]!, rows[3]!, rows[4]!]) expect(await check.insertBarrier!({ gid, step: 'debit', op: 'action', origin: 'compensate' })).toBe('action');
      for (const gid of [rows[0]!, rows[1]!]) expect(await check.insertBarrier!({ gid, step: 'debit', op: 'action', origin: 'compensate' })).toBe('inserted');
      await check.rollback();
      expect(await p.deleteBarriers!(barrierRangeBefore(longer, t0 + 2000))).toBe(2);
      await expect(p.deleteBarriers!({ from: 'txc1.x.', before: "txc1.x.' or 1=1" })).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_ID_INVALID'));
    });

    it('takes 128 characters of any script (4-byte ones too) and refuses 129 or a trailing space', async () => {
      const b = await local();
      const wide = { gid: `${RUN}-${'é'.repeat(128 - RUN.length - 1)}`, step: '😀'.repeat(128), op: 'action' as const, origin: 'action' as const };
      expect(await b.insertBarrier!(wide)).toBe('inserted');
      expect(await b.insertBarrier!(wide)).toBe('action');
      expect((await caught(b.insertBarrier!({ ...wide, step: 'x'.repeat(129) }))).code).toBe('TXC_ID_INVALID');
      expect((await caught(b.insertBarrier!({ ...wide, step: 'debit ' }))).code).toBe('TXC_ID_INVALID');
      expect((await caught(b.insertBarrier!({ ...wide, gid: '' }))).code).toBe('TXC_ID_INVALID');
      expect((await caught(b.insertBarrier!({ ...wide, op: 'undo' as BarrierRow['op'] }))).code).toBe('TXC_ID_INVALID');
      await b.rollback();
    });
  });

  describe(`${kind}: listMarkers and deleteMarkers`, () => {
    it('matches the prefix literally (its % _ ! escaped), oldest first, with the database time', async () => {
      const p = opts.target().twoPhase;
      const base = `txc1.${RUN}.l${randomBytes(3).toString('hex')}`;
      const prefix = `${base}%_!`;
      const t0 = Date.now();
      // Created in this order, so oldest first is not gtrid order.
      expect(await commitMarker(`${prefix}b`, 'abort')).toBe('inserted');
      await sleep(15);
      expect(await commitMarker(`${prefix}a`, 'commit')).toBe('inserted');
      // Each would match if one of the three characters were taken as a wildcard or escape.
      for (const decoy of [`${base}x_!a`, `${base}%x!a`, `${base}%_xa`, `${base}%_`]) await commitMarker(decoy, 'commit');

      const rows = await p.listMarkers!(prefix, 10);
      expect(rows.map((r) => [r.gtrid, r.outcome])).toEqual([
        [`${prefix}b`, 'abort'],
        [`${prefix}a`, 'commit'],
      ]);
      for (const r of rows) expect(Math.abs(r.createdAt - t0)).toBeLessThan(60_000); // ms since epoch, same clock
      expect(rows[0]!.createdAt).toBeLessThan(rows[1]!.createdAt);
      expect(await p.listMarkers!(prefix, 1)).toHaveLength(1);
      expect(await p.listMarkers!(base, 100)).toHaveLength(6);
      expect(await p.listMarkers!(`${base}zz`, 100)).toEqual([]);
      expect((await caught(p.listMarkers!('bad prefix', 10))).code).toBe('TXC_ID_INVALID');
      expect((await caught(p.listMarkers!(base, 0))).code).toBe('TXC_ID_INVALID');

      await p.deleteMarkers!([`${prefix}a`, `${base}x_!a`, `${base}.never-written`]);
      expect((await p.listMarkers!(base, 100)).map((r) => r.gtrid).sort()).toEqual([`${base}%_`, `${base}%_xa`, `${base}%x!a`, `${prefix}b`].sort());
      await p.deleteMarkers!([]);
      expect((await caught(p.deleteMarkers!(['bad gtrid']))).code).toBe('TXC_ID_INVALID');
      await p.deleteMarkers!((await p.listMarkers!(base, 100)).map((r) => r.gtrid));
      expect(await p.listMarkers!(base, 100)).toEqual([]);
    });
  });

  describe(`${kind}: local-only mode`, () => {
    it('declares one-phase capabilities, passes preflight without 2PC checks, and begin is a plain transaction', async () => {
      const lo = opts.target().localOnly;
      expect(lo.capabilities).toEqual({ twoPhase: false, localTransactions: true });
      expect(opts.target().twoPhase.capabilities).toEqual({ twoPhase: true, localTransactions: true });
      await lo.preflight();
      const g = gtrid();
      const b = await lo.begin(xid());
      open.push(b);
      expect(await b.insertMarker!(g, 'commit')).toBe('inserted');
      const err = await caught(b.prepare());
      expect(err.code).toBe('TXC_UNSUPPORTED');
      expect(err.message).toContain(lo.name);
      expect(err.details.participant).toBe(lo.name);
      // Refusing to prepare left the transaction open: it still commits one-phase.
      await b.commitOnePhase();
      expect(await committed(g, lo)).toBe('commit');
      expect((await lo.listInDoubt()).map((x) => x.gtrid)).not.toContain(b.xid.gtrid);
    });

    it('rollback of a local-only branch undoes its rows', async () => {
      const lo = opts.target().localOnly;
      const g = gtrid();
      const b = await lo.begin(xid());
      open.push(b);
      await b.insertMarker!(g, 'abort');
      await b.rollback();
      expect(await committed(g, lo)).toBeUndefined();
    });

    it('beginLocal of a 2PC participant refuses to prepare as well', async () => {
      const b = await local();
      expect((await caught(b.prepare())).code).toBe('TXC_UNSUPPORTED');
      await b.rollback();
    });
  });
}

const pgAvailable = await requireDbOrSkip('postgres');

describe.skipIf(!pgAvailable)('PostgreSQL bookkeeping', () => {
  const schema = `txc_${RUN}`;
  const url = `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  let admin: pg.Client;
  let target: Target | undefined;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    const make = (localOnly: boolean) =>
      createPostgresParticipant(localOnly ? 'pglo' : 'pg2', { driver: 'postgres', connectionString: url, localOnly, pool: { max: 6, acquireTimeoutMs: 5_000 } }, { logger });
    target = { twoPhase: make(false), localOnly: make(true) };
  });

  afterAll(async () => {
    await target?.twoPhase.close();
    await target?.localOnly.close();
    await admin?.query(`drop schema if exists ${schema} cascade`);
    await admin?.end();
  });

  sharedCases('PostgreSQL', { target: () => target!, concurrent: true });

  it('several participants creating the tables at once all succeed (the losers get 23505/42P07)', async () => {
    const race = `txc_${RUN}_race`;
    await admin.query(`create schema ${race}`);
    const raceUrl = `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${race}`)}`;
    const ps = Array.from({ length: 6 }, (_, i) => createPostgresParticipant(`race${i}`, { driver: 'postgres', connectionString: raceUrl }, { logger }));
    try {
      await Promise.all(ps.map((p) => p.ensureBookkeeping!()));
      const { rows } = await admin.query("select count(*)::int as n from pg_tables where schemaname = $1 and tablename like 'txcoord_%'", [race]);
      expect(rows[0].n).toBe(2);
    } finally {
      await Promise.all(ps.map((p) => p.close()));
      await admin.query(`drop schema ${race} cascade`);
    }
  });

  it('local-only preflight passes where 2PC preflight depends on max_prepared_transactions', async () => {
    const max = Number((await admin.query('show max_prepared_transactions')).rows[0].max_prepared_transactions);
    await target!.localOnly.preflight();
    if (max === 0) await expect(target!.twoPhase.preflight()).rejects.toMatchObject({ code: 'TXC_PREPARED_TRANSACTIONS_DISABLED' });
    else await target!.twoPhase.preflight();
  });

  it('a REPEATABLE READ session meeting a marker committed after its snapshot gets a retryable failure, never a wrong answer', async () => {
    const g = gtrid();
    const a = await target!.twoPhase.beginLocal!(xid());
    const b = await target!.twoPhase.beginLocal!(xid());
    try {
      await b.query('set transaction isolation level repeatable read');
      await b.query('select 1');
      await a.insertMarker!(g, 'commit');
      const pending = track(b.insertMarker!(g, 'abort').then(() => undefined, (e: unknown) => e));
      await sleep(200);
      expect(pending.settled()).toBe(false);
      await a.commitOnePhase();
      expect(await pending.promise).toMatchObject({ code: 'TXC_QUERY_FAILED', retryable: true, details: { sqlState: '40001' } });
    } finally {
      a.release(true);
      b.release(true);
    }
  });
});

const mysqlAvailable = await requireDbOrSkip('mysql');

describe.skipIf(!mysqlAvailable)('MySQL/MariaDB bookkeeping', () => {
  const database = `txc_${RUN}`;
  const dbUrl = (() => {
    const u = new URL(mysqlUrl);
    u.pathname = `/${database}`;
    return u.toString();
  })();
  let admin: mysql.Pool;
  let target: Target | undefined;

  beforeAll(async () => {
    admin = mysql.createPool({ uri: mysqlUrl, connectionLimit: 3 });
    await admin.query(`create database ${database}`);
    const make = (localOnly: boolean) =>
      createMysqlParticipant(localOnly ? 'mylo' : 'my2', { driver: 'mysql', uri: dbUrl, localOnly, pool: { max: 6, acquireTimeoutMs: 5_000 } }, { logger });
    target = { twoPhase: make(false), localOnly: make(true) };
  });

  afterAll(async () => {
    await target?.twoPhase.close();
    await target?.localOnly.close();
    await admin?.query(`drop database if exists ${database}`);
    await admin?.end();
  });

  sharedCases('MySQL/MariaDB', { target: () => target!, concurrent: true });

  it('measured: after INSERT IGNORE waited for a commit, a plain SELECT (REPEATABLE READ snapshot) misses the row; a locking read sees it', async () => {
    await target!.twoPhase.ensureBookkeeping!();
    const a = await mysql.createConnection({ uri: dbUrl });
    const b = await mysql.createConnection({ uri: dbUrl });
    const g = gtrid();
    try {
      // The server default of both MySQL and MariaDB, set explicitly in case this one differs.
      await b.query('set session transaction isolation level repeatable read');
      await a.query('start transaction');
      await b.query('start transaction');
      await b.query('select count(*) from txcoord_markers'); // takes B's snapshot
      await a.query("insert into txcoord_markers (gtrid, outcome) values (?, 'commit')", [g]);
      const waiting = b.query("insert ignore into txcoord_markers (gtrid, outcome) values (?, 'abort')", [g]);
      await sleep(200);
      await a.query('commit');
      const [ins] = (await waiting) as unknown as [{ affectedRows: number }];
      expect(ins.affectedRows).toBe(0);
      const [plain] = await b.query('select outcome from txcoord_markers where gtrid = ?', [g]);
      const [locking] = await b.query('select outcome from txcoord_markers where gtrid = ? lock in share mode', [g]);
      expect(plain).toEqual([]);
      expect(locking).toEqual([{ outcome: 'commit' }]);
      await b.query('rollback');
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('local branches are not XA: XA END of their own xid fails (1399) and XA RECOVER never shows them', async () => {
    for (const b of [await target!.localOnly.begin(xid()), await target!.twoPhase.beginLocal!(xid())]) {
      try {
        await b.insertMarker!(gtrid(), 'commit');
        await expect(b.query(`XA END ${toMysqlXid(b.xid)}`)).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED', details: { errno: 1399 } });
        await expect(b.prepare()).rejects.toMatchObject({ code: 'TXC_UNSUPPORTED' });
        const [recovered] = await admin.query('XA RECOVER');
        expect(JSON.stringify(recovered)).not.toContain(RUN);
        await b.commitOnePhase();
        expect(await target!.twoPhase.listInDoubt()).toEqual([]);
      } finally {
        b.release(true);
      }
    }
  });

  it('a statement that ends a local transaction (DDL commits implicitly) stops the branch instead of letting later statements autocommit', async () => {
    const b = await target!.localOnly.begin(xid());
    try {
      const g = gtrid();
      await b.insertMarker!(g, 'commit');
      await expect(b.query('create table if not exists txc_bk_ddl (x int)')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED' });
      await expect(b.query('select 1')).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED' });
      await expect(b.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_COMMIT_FAILED' });
      // Measured: the DDL did commit the marker; the branch reports that instead of hiding it.
      expect((await target!.twoPhase.listMarkers!(g, 1))[0]?.outcome).toBe('commit');
    } finally {
      b.release(true);
    }
  });

  it('the tables use binary collations and a UTC DATETIME(3), not the 2038-bound TIMESTAMP', async () => {
    await target!.twoPhase.ensureBookkeeping!();
    const [cols] = await admin.query(
      "select table_name as t, column_name as c, data_type as d, collation_name as k from information_schema.columns where table_schema = ? order by t, c",
      [database],
    );
    const byName = new Map((cols as { t: string; c: string; d: string; k: string | null }[]).map((r) => [`${r.t}.${r.c}`, r]));
    expect(byName.get('txcoord_markers.gtrid')).toMatchObject({ d: 'varchar', k: 'ascii_bin' });
    expect(byName.get('txcoord_barrier.step')).toMatchObject({ d: 'varchar', k: 'utf8mb4_bin' });
    expect(byName.get('txcoord_markers.created_at')).toMatchObject({ d: 'datetime' });
  });
});

describe('PGlite bookkeeping', () => {
  let work: string;
  let target: Target | undefined;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'txc-bk-pglite-'));
    target = {
      twoPhase: createPgliteParticipant('lite2', { driver: 'pglite', dataDir: join(work, 'two-phase') }, { logger }),
      localOnly: createPgliteParticipant('litelo', { driver: 'pglite', dataDir: join(work, 'local-only'), localOnly: true }, { logger }),
    };
  });

  afterAll(async () => {
    await target?.twoPhase.close();
    await target?.localOnly.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  // The concurrency cases are skipped: PGlite has one connection, and a second transaction
  // waits in `begin` for the lease until the first one ends, so no insert can ever meet an
  // uncommitted marker of another transaction here.
  sharedCases('PGlite', { target: () => target!, concurrent: false });

  it('a 2PC-mode branch writing the first marker creates the tables in its own transaction (gone again after rollback)', async () => {
    const p = createPgliteParticipant('litefresh', { driver: 'pglite', dataDir: join(work, 'fresh') }, { logger });
    const tables = async (): Promise<unknown> => {
      const b = await p.begin(xid());
      const { rows } = await b.query("select to_regclass('txcoord_markers')::text as m");
      await b.commitOnePhase();
      return rows[0]?.['m'];
    };
    try {
      const b = await p.begin(xid());
      expect(await b.insertMarker!(gtrid(), 'commit')).toBe('inserted');
      await b.rollback();
      expect(await tables()).toBeNull();
      const g = gtrid();
      const c = await p.begin(xid());
      expect(await c.insertMarker!(g, 'abort')).toBe('inserted');
      await c.commitOnePhase();
      expect(await tables()).toBe('txcoord_markers');
      expect((await p.listMarkers!(g, 1))[0]?.outcome).toBe('abort');
    } finally {
      await p.close();
    }
  });

  it('local-only never prepares: no prepared transactions exist after its branches', async () => {
    const lo = target!.localOnly;
    const b = await lo.begin(xid());
    await b.insertMarker!(gtrid(), 'commit');
    await expect(b.prepare()).rejects.toMatchObject({ code: 'TXC_UNSUPPORTED' });
    const { rows } = await b.query('select count(*)::int as n from pg_prepared_xacts');
    expect(rows[0]?.['n']).toBe(0);
    await b.commitOnePhase();
    expect(await lo.listInDoubt()).toEqual([]);
  });
});
