import { toPgGid, type Xid } from '../../coordinator/xid.js';
import type { BookkeepingStatements } from '../bookkeeping.js';

/*
 * Every 2PC statement txcoord sends to PostgreSQL. Gids cannot be bind parameters, so they are
 * spliced in, but only through toPgGid, which accepts nothing but validated txcoord xids
 * (characters A-Z a-z 0-9 _ - .), so no quoting is needed.
 */

/** Opens the branch's transaction block at the server's default isolation level. */
export const BEGIN = 'BEGIN';

/** One-phase commit; the server answers with tag ROLLBACK instead when the block had failed. */
export const COMMIT = 'COMMIT';

/** Ends an unprepared branch. */
export const ROLLBACK = 'ROLLBACK';

/**
 * Phase one in one round trip, as simple-protocol text (no parameters allowed): the local xid
 * first (assigning one if the branch has none yet) so recovery can ask `pg_xact_status` later,
 * then the prepare. The result tag of the last statement must be PREPARE: PostgreSQL answers a
 * PREPARE in a failed block with tag ROLLBACK and prepares nothing, and if the block had
 * failed the select is refused with 25P02 before the PREPARE runs.
 */
export function prepareSql(xid: Xid): string {
  return `select pg_current_xact_id()::text as txid; PREPARE TRANSACTION '${toPgGid(xid)}'`;
}

/** Phase two commit; works from any session of the same database and role. */
export function commitPreparedSql(xid: Xid): string {
  return `COMMIT PREPARED '${toPgGid(xid)}'`;
}

/** Phase two rollback; works from any session of the same database and role. */
export function rollbackPreparedSql(xid: Xid): string {
  return `ROLLBACK PREPARED '${toPgGid(xid)}'`;
}

/**
 * The branch's xid if it has one. PostgreSQL assigns one at the first write of any kind (DML,
 * DDL, row locks, writes done by functions called from a SELECT), so null means read-only.
 */
export const ASSIGNED_XID = 'select pg_current_xact_id_if_assigned()::text as txid';

/** txcoord's prepared transactions in this database (any coordinator); filtered again by fromPgGid. */
export const LIST_PREPARED =
  "select gid from pg_prepared_xacts where database = current_database() and gid like 'txc1.%'";

/** Fate of a local transaction by the xid8 text `prepareSql` returned: committed, aborted, in progress or null. */
export const XACT_STATUS = 'select pg_xact_status($1::xid8) as status';

/** 0 means PREPARE TRANSACTION is disabled. */
export const SHOW_MAX_PREPARED = 'show max_prepared_transactions';

/** Reachability check of a local-only participant (which needs no 2PC setting). */
export const PING = 'select 1';

/*
 * Bookkeeping tables (commit markers, saga barrier). Values only ever go as bind parameters.
 * timestamptz, not timestamp: its epoch does not depend on the session's TimeZone.
 */

/** Both bookkeeping tables exist (and are visible through search_path, as the statements below see them). */
export const BOOKKEEPING_EXISTS =
  "select to_regclass('txcoord_markers') is not null and to_regclass('txcoord_barrier') is not null as present";

/** The commit-marker table; collation "C" lets `LIKE 'prefix%'` scans use the primary key. */
export const CREATE_MARKERS = `create table if not exists txcoord_markers (
  gtrid varchar(64) collate "C" primary key,
  outcome varchar(8) not null,
  created_at timestamptz(3) not null default current_timestamp)`;

/** The saga barrier table. */
export const CREATE_BARRIER = `create table if not exists txcoord_barrier (
  gid varchar(128) not null,
  step varchar(128) not null,
  op varchar(16) not null,
  origin varchar(16) not null,
  created_at timestamptz(3) not null default current_timestamp,
  primary key (gid, step, op))`;

/**
 * Returns a row only when it inserted. A conflicting row not yet committed makes it wait for
 * that transaction; under REPEATABLE READ a row committed after the snapshot fails it with
 * 40001 instead (retryable), so it never answers wrongly.
 */
export const INSERT_MARKER =
  'insert into txcoord_markers (gtrid, outcome) values ($1, $2) on conflict (gtrid) do nothing returning gtrid';

/** The existing marker; under READ COMMITTED, run after INSERT_MARKER waited, it sees the row just committed. */
export const SELECT_MARKER = 'select outcome from txcoord_markers where gtrid = $1';

/** As {@link INSERT_MARKER}, for a barrier row. */
export const INSERT_BARRIER =
  'insert into txcoord_barrier (gid, step, op, origin) values ($1, $2, $3, $4) on conflict (gid, step, op) do nothing returning gid';

/** As {@link SELECT_MARKER}, for a barrier row. */
export const SELECT_BARRIER = 'select origin from txcoord_barrier where gid = $1 and step = $2 and op = $3';

/** The four statements above, for markerRow / barrierRow. */
export const BOOKKEEPING_ROWS: BookkeepingStatements = {
  insertMarker: INSERT_MARKER,
  selectMarker: SELECT_MARKER,
  insertBarrier: INSERT_BARRIER,
  selectBarrier: SELECT_BARRIER,
};

/** Markers whose gtrid matches the LIKE pattern $1 (escape `!`), oldest first, at most $2; created_ms is epoch milliseconds. */
export const LIST_MARKERS = `select gtrid, outcome, round(extract(epoch from created_at) * 1000)::float8 as created_ms
  from txcoord_markers where gtrid like $1 escape '!' order by created_at, gtrid limit $2`;

/** Deletes the markers whose gtrid is in the array $1. */
export const DELETE_MARKERS = 'delete from txcoord_markers where gtrid = any($1::varchar[])';

/** Whether txcoord_barrier exists: the barrier sweep must not create it. */
export const BARRIER_EXISTS = "select to_regclass('txcoord_barrier') is not null as present";

/**
 * Deletes the barrier rows whose gid is in [$1, $2). Compared in collation "C" (bytes): a
 * linguistic collation that skips punctuation would let `txc1.c10.…` fall in the range of `c1`.
 */
export const DELETE_BARRIERS = 'delete from txcoord_barrier where gid collate "C" >= $1 and gid collate "C" < $2';
