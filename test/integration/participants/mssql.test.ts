import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { branchXid, newGtrid, type Xid } from '../../../coordinator/xid.js';
import { MssqlSession, createMssqlParticipant, tediousConnectionConfig, tediousDriver } from '../../../participants/mssql/index.js';
import type { Branch, Participant } from '../../../participants/participant.js';

/*
 * SQL Server participant against a real server. Runs only with TXCOORD_MSSQL_URL set, e.g. for
 * the docker-compose service in docs/mssql.md:
 *   TXCOORD_MSSQL_URL='mssql://sa:Txcoord-Passw0rd@127.0.0.1:14330/master?encrypt=true&trustServerCertificate=true'
 * Pointed at `master`, it creates and uses a database txcoord_test (and toggles its
 * READ_COMMITTED_SNAPSHOT for one test); pointed at any other database, it uses that one.
 */

const baseUrl = process.env.TXCOORD_MSSQL_URL;
// TXCOORD_REQUIRE_DB covers the servers CI provides (PostgreSQL, MariaDB); SQL Server runs only
// when a URL is given, and then an unreachable server fails the run like any other.
if (!baseUrl) {
  process.stderr.write(
    "[txcoord] skipping SQL Server integration tests: set TXCOORD_MSSQL_URL (e.g. 'mssql://sa:Txcoord-Passw0rd@127.0.0.1:14330/master?encrypt=true&trustServerCertificate=true' after `docker compose up -d mssql`, see docs/mssql.md) to run them\n",
  );
}
const suite = baseUrl ? describe : describe.skip;

const COORD = 'itms';
const TABLE = 'txc_it_ms_participant';
const TEST_DB = 'txcoord_test';
const logger = pino({ level: 'silent' });
const SETTINGS = { max: 4, acquireTimeoutMs: 10_000, queryTimeoutMs: 30_000 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function caught(p: Promise<unknown>): Promise<TxcError> {
  try {
    await p;
  } catch (err) {
    if (TxcError.is(err)) return err;
    throw err;
  }
  throw new Error('expected a TxcError');
}

/** Whether `p` is still pending after `ms`. */
async function stillPending(p: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol('pending');
  const first = await Promise.race([p.then(() => 'settled', () => 'settled'), sleep(ms).then(() => marker)]);
  return first === marker;
}

suite('SQL Server participant against a real server', () => {
  let url: string;
  let ownDatabase = false;
  let admin: MssqlSession;
  let participant: Participant;
  const opened: Participant[] = [];
  const branches: Branch[] = [];
  let nextId = 1;

  const make = (queryTimeoutMs = SETTINGS.queryTimeoutMs): Participant => {
    const p = createMssqlParticipant('ms', { driver: 'mssql', connectionString: url, pool: { ...SETTINGS, queryTimeoutMs } }, { logger });
    opened.push(p);
    return p;
  };
  const newXid = (index = 0): Xid => branchXid(newGtrid(COORD), index);
  const begin = async (p: Participant = participant, xid: Xid = newXid()): Promise<Branch> => {
    const b = await (p.beginLocal ?? p.begin).call(p, xid);
    branches.push(b);
    return b;
  };
  const exec = async (sql: string) => (await admin.execute(sql)).rows;
  const rowExists = async (id: number): Promise<boolean> => (await exec(`select 1 as x from ${TABLE} where id = ${id}`)).length === 1;
  const markerOf = async (gtrid: string): Promise<unknown> =>
    (await exec(`select outcome from txcoord_markers where gtrid = '${gtrid}'`))[0]?.outcome;

  beforeAll(async () => {
    url = baseUrl as string;
    const first = await MssqlSession.open(tediousDriver, tediousConnectionConfig('admin', url, SETTINGS), logger);
    try {
      if ((await first.execute('select db_name() as db')).rows[0]?.db === 'master') {
        await first.execute(`if db_id(N'${TEST_DB}') is null create database ${TEST_DB}`);
        const u = new URL(url);
        u.pathname = `/${TEST_DB}`;
        url = u.toString();
        ownDatabase = true;
      }
    } finally {
      await first.close();
    }
    admin = await MssqlSession.open(tediousDriver, tediousConnectionConfig('admin', url, SETTINGS), logger);
    await exec(`drop table if exists ${TABLE}`);
    await exec(`create table ${TABLE} (id int primary key, v nvarchar(50) not null)`);
    // Earlier runs' markers and barrier rows of this coordinator id would not disturb the tests
    // (every gtrid is new), but keep the tables small.
    await exec(`if object_id(N'txcoord_markers') is not null delete from txcoord_markers where gtrid like 'txc1.${COORD}.%'`);
    await exec(`if object_id(N'txcoord_barrier') is not null delete from txcoord_barrier where gid like 'txc1.${COORD}.%'`);
    participant = make();
  });

  afterAll(async () => {
    for (const b of branches.splice(0)) b.release(true);
    for (const p of opened) await p.close();
    if (admin) {
      await exec(`drop table if exists ${TABLE}`).catch(() => undefined);
      await admin.close();
    }
  });

  it('preflight creates the bookkeeping tables (concurrently with another process) and passes', async () => {
    const other = make();
    await Promise.all([participant.preflight(), other.preflight(), other.ensureBookkeeping?.()]);
    const tables = await exec("select name from sys.tables where name in ('txcoord_markers', 'txcoord_barrier') order by name");
    expect(tables.map((t) => t.name)).toEqual(['txcoord_barrier', 'txcoord_markers']);
  });

  it('commit makes the row visible to other sessions; rollback leaves nothing', async () => {
    const id = nextId++;
    const b = await begin();
    expect(await b.query(`insert into ${TABLE} values (@p1, @p2)`, [id, 'a'])).toEqual({ rows: [], rowCount: 1 });
    expect(await b.hasWritten()).toBe(true);
    await b.commitOnePhase();
    expect(await rowExists(id)).toBe(true);

    const gone = nextId++;
    const r = await begin();
    await r.query(`insert into ${TABLE} values (@p1, @p2)`, [gone, 'b']);
    await r.rollback();
    await r.rollback();
    expect(await rowExists(gone)).toBe(false);
  });

  it('round-trips parameters of every mapped type', async () => {
    const b = await begin();
    const when = new Date('2025-03-04T05:06:07.089Z');
    const { rows } = await b.query(
      'select @p1 as n, @p2 as i, @p3 as big, @p4 as f, @p5 as s, @p6 as d, @p7 as bin, @p8 as flag, @p9 as bigint_',
      [null, 42, 2 ** 40, 1.25, 'héllo', when, Buffer.from([1, 2, 3]), true, 9_007_199_254_740_993n],
    );
    expect(rows[0]).toMatchObject({ n: null, i: 42, f: 1.25, s: 'héllo', flag: true });
    // tedious returns bigint columns as strings.
    expect(String(rows[0]?.big)).toBe(String(2 ** 40));
    expect(String(rows[0]?.bigint_)).toBe('9007199254740993');
    expect((rows[0]?.d as Date).getTime()).toBe(when.getTime());
    expect(rows[0]?.bin).toEqual(Buffer.from([1, 2, 3]));
    await b.commitOnePhase();
  });

  it('plain reads and an UPDATE of no rows are read-only', async () => {
    const b = await begin();
    await b.query(`select * from ${TABLE}`);
    expect(await b.hasWritten()).toBe(false);
    await b.query(`update ${TABLE} set v = v where id = -1`);
    // false when the login may read the transaction DMVs (sa may), true (unsure) otherwise
    const written = await b.hasWritten();
    const canCheck = (await exec("select coalesce(has_perms_by_name(null, null, 'VIEW SERVER STATE'), 0) as p"))[0]?.p === 1;
    expect(written).toBe(!canCheck);
    await b.commitOnePhase();
  });

  it('a duplicate key in user SQL refuses the commit and commits nothing', async () => {
    const id = nextId++;
    const b = await begin();
    await b.query(`insert into ${TABLE} values (@p1, 'x')`, [id]);
    const dup = await caught(b.query(`insert into ${TABLE} values (@p1, 'y')`, [id]));
    expect(dup.details.number).toBe(2627);
    await expect(b.commitOnePhase()).rejects.toMatchObject({ code: 'TXC_COMMIT_FAILED' });
    expect(await rowExists(id)).toBe(false);
  });

  it('a statement past queryTimeoutMs fails as retryable, and the pool recovers', async () => {
    const slow = make(500);
    const b = await begin(slow);
    const err = await caught(b.query("waitfor delay '00:00:03'"));
    expect(err.code).toBe('TXC_QUERY_FAILED');
    expect(err.retryable).toBe(true);
    await b.rollback();
    const next = await begin(slow);
    expect((await next.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await next.commitOnePhase();
  });

  it('a session killed before COMMIT fails the commit (retryable) and commits nothing', async () => {
    const id = nextId++;
    const b = await begin();
    const spid = (await b.query('select @@spid as spid')).rows[0]?.spid;
    await b.query(`insert into ${TABLE} values (@p1, 'k')`, [id]);
    try {
      await exec(`kill ${Number(spid)}`);
    } catch {
      return; // no ALTER ANY CONNECTION: nothing to test
    }
    await sleep(300);
    const err = await caught(b.commitOnePhase());
    expect(['TXC_COMMIT_FAILED', 'TXC_OUTCOME_UNKNOWN']).toContain(err.code);
    expect(await rowExists(id)).toBe(false);
  });

  describe('commit markers with two concurrent connections', () => {
    it('inserted, then existing-commit for a later insert', async () => {
      const gtrid = newGtrid(COORD);
      const a = await begin();
      expect(await a.insertMarker?.(gtrid, 'commit')).toBe('inserted');
      await a.commitOnePhase();
      const recovery = await begin(participant, branchXid(gtrid, 9999));
      expect(await recovery.insertMarker?.(gtrid, 'abort')).toBe('commit');
      await recovery.rollback();
      expect(await markerOf(gtrid)).toBe('commit');
    });

    it('the second insert waits for the first transaction and reports its commit', async () => {
      const gtrid = newGtrid(COORD);
      const a = await begin();
      expect(await a.insertMarker?.(gtrid, 'commit')).toBe('inserted');
      const recovery = await begin(participant, branchXid(gtrid, 9999));
      const answer = recovery.insertMarker?.(gtrid, 'abort') ?? Promise.reject(new Error('no insertMarker'));
      expect(await stillPending(answer, 500)).toBe(true);
      await a.commitOnePhase();
      expect(await answer).toBe('commit');
      await recovery.rollback();
    });

    it('the second insert waits for the first transaction and, when it rolls back, inserts its own outcome', async () => {
      const gtrid = newGtrid(COORD);
      const a = await begin();
      await a.insertMarker?.(gtrid, 'commit');
      const recovery = await begin(participant, branchXid(gtrid, 9999));
      const answer = recovery.insertMarker?.(gtrid, 'abort') ?? Promise.reject(new Error('no insertMarker'));
      expect(await stillPending(answer, 500)).toBe(true);
      await a.rollback();
      expect(await answer).toBe('inserted');
      await recovery.commitOnePhase();
      expect(await markerOf(gtrid)).toBe('abort');
      // A commit marker arriving late now finds the abort.
      const late = await begin();
      expect(await late.insertMarker?.(gtrid, 'commit')).toBe('abort');
      await late.rollback();
    });

    it('inserts of different gtrids do not wait for each other', async () => {
      const [g1, g2] = [newGtrid(COORD), newGtrid(COORD)];
      const a = await begin();
      await a.insertMarker?.(g2, 'commit');
      const b = await begin();
      const answer = b.insertMarker?.(g1, 'commit') ?? Promise.reject(new Error('no insertMarker'));
      expect(await stillPending(answer, 1_000)).toBe(false);
      expect(await answer).toBe('inserted');
      await Promise.all([a.commitOnePhase(), b.commitOnePhase()]);
    });

    it('the same holds with READ_COMMITTED_SNAPSHOT on', async (ctx) => {
      if (!ownDatabase) ctx.skip();
      try {
        await exec(`alter database ${TEST_DB} set read_committed_snapshot on with rollback immediate`);
      } catch {
        ctx.skip();
      }
      try {
        // The ALTER killed every other session of this database: the pool must replace them.
        const rcsi = make();
        const gtrid = newGtrid(COORD);
        const a = await begin(rcsi);
        await a.insertMarker?.(gtrid, 'commit');
        const recovery = await begin(rcsi, branchXid(gtrid, 9999));
        const answer = recovery.insertMarker?.(gtrid, 'abort') ?? Promise.reject(new Error('no insertMarker'));
        expect(await stillPending(answer, 500)).toBe(true);
        await a.commitOnePhase();
        expect(await answer).toBe('commit');
        await recovery.rollback();
        const b = await begin(rcsi);
        await b.insertBarrier?.({ gid: gtrid, step: 's', op: 'action', origin: 'action' });
        const c = await begin(rcsi);
        const dup = c.insertBarrier?.({ gid: gtrid, step: 's', op: 'action', origin: 'action' }) ?? Promise.reject(new Error('no insertBarrier'));
        expect(await stillPending(dup, 500)).toBe(true);
        await b.commitOnePhase();
        expect(await dup).toBe('action');
        await c.rollback();
      } finally {
        await exec(`alter database ${TEST_DB} set read_committed_snapshot off with rollback immediate`);
      }
    });

    it('listMarkers and deleteMarkers', async () => {
      const gtrids = [newGtrid(COORD), newGtrid(COORD)];
      for (const g of gtrids) {
        const b = await begin();
        await b.insertMarker?.(g, 'commit');
        await b.commitOnePhase();
      }
      const listed = (await participant.listMarkers?.(`txc1.${COORD}.`, 1_000)) ?? [];
      expect(listed.map((m) => m.gtrid)).toEqual(expect.arrayContaining(gtrids));
      expect(listed.every((m) => typeof m.createdAt === 'number' && m.createdAt > 0)).toBe(true);
      await participant.deleteMarkers?.(gtrids);
      const after = (await participant.listMarkers?.(`txc1.${COORD}.`, 1_000)) ?? [];
      expect(after.map((m) => m.gtrid)).not.toEqual(expect.arrayContaining([gtrids[0]]));
      // '_' in the prefix is literal, not a LIKE wildcard.
      expect(await participant.listMarkers?.(`txc1_${COORD}.`, 10)).toEqual([]);
    });
  });

  describe('saga barrier', () => {
    it('a duplicate action reports the existing origin; a late action finds the null compensation', async () => {
      const gid = newGtrid(COORD);
      const a = await begin();
      expect(await a.insertBarrier?.({ gid, step: 'ship', op: 'action', origin: 'action' })).toBe('inserted');
      await a.commitOnePhase();
      const again = await begin();
      expect(await again.insertBarrier?.({ gid, step: 'ship', op: 'action', origin: 'action' })).toBe('action');
      await again.rollback();

      const comp = await begin();
      expect(await comp.insertBarrier?.({ gid, step: 'pay', op: 'compensate', origin: 'compensate' })).toBe('inserted');
      expect(await comp.insertBarrier?.({ gid, step: 'pay', op: 'action', origin: 'compensate' })).toBe('inserted');
      await comp.commitOnePhase();
      const late = await begin();
      expect(await late.insertBarrier?.({ gid, step: 'pay', op: 'action', origin: 'action' })).toBe('compensate');
      await late.rollback();
    });

    it('a concurrent insert of the same key waits for the first transaction', async () => {
      const gid = newGtrid(COORD);
      const a = await begin();
      await a.insertBarrier?.({ gid, step: 'x', op: 'action', origin: 'action' });
      const b = await begin();
      const answer = b.insertBarrier?.({ gid, step: 'x', op: 'action', origin: 'compensate' }) ?? Promise.reject(new Error('no insertBarrier'));
      expect(await stillPending(answer, 500)).toBe(true);
      await a.commitOnePhase();
      expect(await answer).toBe('action');
      await b.rollback();
    });
  });

  it('two-phase calls are TXC_UNSUPPORTED', async () => {
    const b = await begin();
    await expect(b.prepare()).rejects.toMatchObject({ code: 'TXC_UNSUPPORTED' });
    await expect(participant.commitPrepared(b.xid)).rejects.toMatchObject({ code: 'TXC_UNSUPPORTED' });
    expect(await participant.listInDoubt()).toEqual([]);
    await b.rollback();
  });
});
