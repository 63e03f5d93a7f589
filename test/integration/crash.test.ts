/**
 * Real crashes: a child process runs transfers through the coordinator and SIGKILLs itself at
 * every protocol point (per-branch points once for each participant); then the real CLI
 * recovers, and the databases' own views must show an atomic, complete outcome.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAST_RESOURCE_POINTS, PROTOCOL_POINTS } from '../../coordinator/protocol.js';
import type { CoordinatorConfig, ProtocolPoint } from '../../coordinator/types.js';
import type { PgliteParticipantConfig } from '../../participants/participant-config.js';
import { openPglite } from '../../participants/pglite/index.js';
import { fromMysqlRecoverRow, type Xid } from '../../coordinator/xid.js';
import { mysqlUrl, pgUrl, requireDbOrSkip, rollbackLeftovers } from './db-env.js';
import { CLI, ROOT, runNode } from './run-node.js';

const CHILD = join(ROOT, 'dist/test/fixtures/crash-child.js');
/** Tables (`<PREFIX>_accounts`, `<PREFIX>_transfers`) used by this file only. */
const PREFIX = 'txc_crash';
/** The crashing transaction; the ones before it are acknowledged. */
const CRASH_AT = 3;
/** Opening balance of the one account per participant (crash-child's setup uses the same). */
const START_BALANCE = 1_000_000;
/** Points that fire once per participant (their info names it). */
const PER_BRANCH: ReadonlySet<ProtocolPoint> = new Set(['after-prepare', 'after-commit']);
/** Points at which the commit decision is already durable (the log record, or the marker row): the crashed transfer must end up committed. */
const DECIDED: ReadonlySet<ProtocolPoint> = new Set(['after-decision', 'after-commit', 'before-end']);

// Skips (with a printed notice) when a server is unreachable, or throws under TXCOORD_REQUIRE_DB=1.
const serversReady = (await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql'));

/** What the databases hold, read with their own views. */
interface Books {
  readonly total: number;
  /** Transfer ids per participant. */
  readonly ids: ReadonlyMap<string, ReadonlySet<string>>;
  /** Prepared branches of this file's coordinator still in the databases. */
  readonly prepared: readonly string[];
}

/** A pair of participants with their setup and read-back, each against the database itself. */
interface Pair {
  readonly name: string;
  readonly participants: readonly [string, string];
  readonly skip: boolean;
  config(dir: string): CoordinatorConfig;
  /** Fresh tables with one account each; leftover prepared branches of this coordinator rolled back first. */
  setup(config: CoordinatorConfig, configFile: string): Promise<void>;
  read(config: CoordinatorConfig): Promise<Books>;
  /** The participant that cannot prepare (last-resource transfers), if any. */
  readonly lastResource?: string;
}

/** PGlite must be reopened with the setting it was created with, so the config states it. */
const MAX_PREPARED = 8;
const gidPrefix = (coordinatorId: string) => `txc1.${coordinatorId}.`;

const pglitePair: Pair = {
  name: 'PGlite+PGlite',
  participants: ['lite_a', 'lite_b'],
  skip: false,
  config: (dir) => ({
    id: 'crashlite',
    log: { type: 'file', dir: join(dir, 'txlog') },
    participants: {
      lite_a: { driver: 'pglite', dataDir: join(dir, 'lite_a'), maxPreparedTransactions: MAX_PREPARED },
      lite_b: { driver: 'pglite', dataDir: join(dir, 'lite_b'), maxPreparedTransactions: MAX_PREPARED },
    },
    recovery: { intervalMs: 0 },
  }),
  // The child's setup mode creates the tables through the adapter (so PGlite gets the adapter's settings).
  setup: async (_config, configFile) => {
    const r = await runNode(CHILD, [configFile, 'setup'], { env: { ...process.env, TXC_CRASH_PREFIX: PREFIX }, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`crash-child setup failed (${r.code}): ${r.stderr}`);
  },
  // Straight from the data directories, not through the adapter: the database's own view, and
  // PGlite's pg_prepared_xacts is readable even when the adapter would refuse new work.
  read: async (config) => {
    const ids = new Map<string, Set<string>>();
    const prepared: string[] = [];
    let total = 0;
    for (const [p, pc] of Object.entries(config.participants) as [string, PgliteParticipantConfig][]) {
      const db = await openPglite({ dataDir: pc.dataDir, maxPreparedTransactions: pc.maxPreparedTransactions ?? MAX_PREPARED });
      try {
        const gids = (await db.query('SELECT gid FROM pg_prepared_xacts')).rows.map((r) => String(r['gid']));
        prepared.push(...gids.filter((g) => g.startsWith(gidPrefix(config.id))).map((g) => `${p}:${g}`));
        total += Number((await db.query(`SELECT balance FROM ${PREFIX}_accounts WHERE id = 1`)).rows[0]?.['balance']);
        ids.set(p, new Set((await db.query(`SELECT id FROM ${PREFIX}_transfers`)).rows.map((r) => String(r['id']))));
      } finally {
        await db.close();
      }
    }
    return { total, ids, prepared };
  },
};

async function withServers<T>(fn: (pgc: pg.Client, my: mysql.Connection) => Promise<T>): Promise<T> {
  const pgc = new pg.Client({ connectionString: pgUrl });
  await pgc.connect();
  const my = await mysql.createConnection({ uri: mysqlUrl });
  try {
    return await fn(pgc, my);
  } finally {
    await pgc.end();
    await my.end();
  }
}

async function mysqlPrepared(my: mysql.Connection, coordinatorId: string) {
  const [rows] = await my.query('XA RECOVER');
  return (rows as Parameters<typeof fromMysqlRecoverRow>[0][])
    .map((r) => fromMysqlRecoverRow(r))
    .filter((x): x is Xid => x !== undefined && x.gtrid.startsWith(gidPrefix(coordinatorId)));
}

async function pgPrepared(pgc: pg.Client, coordinatorId: string): Promise<string[]> {
  const r = await pgc.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)', [
    gidPrefix(coordinatorId),
  ]);
  return r.rows.map((x) => x.gid);
}

/**
 * PostgreSQL and MariaDB; with `localOnly`, that one stands in for a database that cannot
 * prepare (SQL Server), so the transfers commit with it as the commit-marked last resource.
 */
const serverPairOf = (id: string, localOnly?: 'pg' | 'maria'): Pair => ({
  name: localOnly ? `PostgreSQL+MariaDB, ${localOnly} as the last resource` : 'PostgreSQL+MariaDB',
  participants: ['pg', 'maria'],
  skip: !serversReady,
  lastResource: localOnly,
  config: (dir) => ({
    id,
    log: { type: 'file', dir: join(dir, 'txlog') },
    // Secrets stay out of the file: the CLI and the child substitute them from the environment.
    participants: {
      pg: { driver: 'postgres', connectionString: '${TXCOORD_PG_URL}', ...(localOnly === 'pg' ? { localOnly: true } : {}) },
      maria: { driver: 'mysql', uri: '${TXCOORD_MYSQL_URL}', ...(localOnly === 'maria' ? { localOnly: true } : {}) },
    },
    recovery: { intervalMs: 0 },
  }),
  setup: (config) =>
    withServers(async (pgc, my) => {
      // Leftovers of an earlier, interrupted run would hold locks on the tables dropped below.
      await rollbackLeftovers(config.id);
      await pgc.query(`DROP TABLE IF EXISTS ${PREFIX}_accounts, ${PREFIX}_transfers`);
      await pgc.query(`CREATE TABLE ${PREFIX}_accounts (id int PRIMARY KEY, balance bigint NOT NULL)`);
      await pgc.query(`CREATE TABLE ${PREFIX}_transfers (id text PRIMARY KEY, amount bigint NOT NULL)`);
      await pgc.query(`INSERT INTO ${PREFIX}_accounts VALUES (1, $1)`, [START_BALANCE]);
      await my.query(`DROP TABLE IF EXISTS ${PREFIX}_accounts, ${PREFIX}_transfers`);
      await my.query(`CREATE TABLE ${PREFIX}_accounts (id int PRIMARY KEY, balance bigint NOT NULL) ENGINE=InnoDB`);
      await my.query(`CREATE TABLE ${PREFIX}_transfers (id varchar(64) PRIMARY KEY, amount bigint NOT NULL) ENGINE=InnoDB`);
      await my.query(`INSERT INTO ${PREFIX}_accounts VALUES (1, ?)`, [START_BALANCE]);
    }),
  read: (config) =>
    withServers(async (pgc, my) => {
      const prepared = [...(await pgPrepared(pgc, config.id)).map((g) => `pg:${g}`), ...(await mysqlPrepared(my, config.id)).map((x) => `maria:${x.gtrid}`)];
      const pgBal = await pgc.query<{ balance: string }>(`SELECT balance FROM ${PREFIX}_accounts WHERE id = 1`);
      const [myBal] = await my.query(`SELECT balance FROM ${PREFIX}_accounts WHERE id = 1`);
      const pgIds = await pgc.query<{ id: string }>(`SELECT id FROM ${PREFIX}_transfers`);
      const [myIds] = await my.query(`SELECT id FROM ${PREFIX}_transfers`);
      return {
        total: Number(pgBal.rows[0]?.balance) + Number((myBal as { balance: number | string }[])[0]?.balance),
        ids: new Map([
          ['pg', new Set(pgIds.rows.map((r) => r.id))],
          ['maria', new Set((myIds as { id: string }[]).map((r) => r.id))],
        ]),
        prepared,
      };
    }),
});

const childEnv = { ...process.env, TXCOORD_PG_URL: pgUrl, TXCOORD_MYSQL_URL: mysqlUrl };

for (const pair of [pglitePair, serverPairOf('crashsrv'), serverPairOf('crashlrpg', 'pg'), serverPairOf('crashlrmy', 'maria')]) {
  describe.skipIf(pair.skip)(`SIGKILL at every protocol point, ${pair.name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), `txc-crash-${pair.participants.join('-')}-`));
    const configFile = join(dir, 'txcoord.json');
    const config = pair.config(dir);
    const acked: string[] = [];
    let scenario = 0;

    beforeAll(async () => {
      writeFileSync(configFile, JSON.stringify(config, null, 2));
      await pair.setup(config, configFile);
    });

    afterAll(async () => {
      // PGlite directories are tens of MB each; TXCOORD_KEEP_TEST_DATA=1 keeps them for a post-mortem.
      if (process.env['TXCOORD_KEEP_TEST_DATA'] !== '1') await rm(dir, { recursive: true, force: true });
    });

    // In a last-resource transfer only the other participant prepares and commits prepared.
    const branchPoints = pair.participants.filter((p) => p !== pair.lastResource);
    const cases = (pair.lastResource ? LAST_RESOURCE_POINTS : PROTOCOL_POINTS).flatMap((point): { point: ProtocolPoint; participant: string | undefined }[] =>
      PER_BRANCH.has(point) ? branchPoints.map((participant) => ({ point, participant })) : [{ point, participant: undefined }],
    );

    for (const { point, participant } of cases) {
      it(`crash at ${point}${participant ? ` of ${participant}` : ''}, recover with the CLI`, async () => {
        const run = `s${++scenario}`;
        const ackFile = join(dir, `${run}.acked`);
        writeFileSync(ackFile, '');
        const child = await runNode(CHILD, [configFile, point, ...(participant ? [participant] : [])], {
          env: { ...childEnv, TXC_ACK_FILE: ackFile, TXC_CRASH_AT: String(CRASH_AT), TXC_CRASH_PREFIX: PREFIX, TXC_CRASH_RUN: run },
        });
        expect(child.signal, `child did not SIGKILL itself (exit ${child.code}): ${child.stderr}`).toBe('SIGKILL');
        const ackedNow = readFileSync(ackFile, 'utf8').split('\n').filter(Boolean);
        expect(ackedNow).toEqual(Array.from({ length: CRASH_AT - 1 }, (_, i) => `${run}-${i + 1}`));
        acked.push(...ackedNow);

        const rec = await runNode(CLI, ['recover', '--config', configFile, '--json'], { env: childEnv });
        expect(rec.code, `recover failed: ${rec.stdout}${rec.stderr}`).toBe(0);
        const report = JSON.parse(rec.stdout) as { remaining: { coordinatorId: string }[]; failures: unknown[]; heuristic: unknown[] };
        expect(report).toMatchObject({ failures: [], heuristic: [] });
        // Other test files may share the database: only this coordinator's branches must be gone.
        expect(report.remaining.filter((x) => x.coordinatorId === config.id)).toEqual([]);

        const verify = await runNode(CLI, ['log', 'verify', '--dir', config.log.type === 'file' ? config.log.dir : '', '--json']);
        expect(verify.code, verify.stdout + verify.stderr).toBe(0);
        expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, liveTransactions: 0 });

        const books = await pair.read(config);
        expect(books.prepared, 'prepared branches left behind').toEqual([]);
        const [a, b] = pair.participants.map((p) => [...(books.ids.get(p) ?? [])].sort());
        expect(a, 'a transfer is on one side only').toEqual(b);
        expect(books.total, 'money created or destroyed').toBe(2 * START_BALANCE);
        const present = new Set(a);
        expect(acked.filter((id) => !present.has(id)), 'acknowledged transfers lost').toEqual([]);
        // Presumed abort: without a durable decision the crashed transfer is rolled back; with one, committed.
        expect(present.has(`${run}-${CRASH_AT}`), `crashed transfer after ${point}`).toBe(DECIDED.has(point));
      });
    }
  });
}
