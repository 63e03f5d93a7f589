import { toMysqlXid, type Xid } from '../../coordinator/xid.js';
import type { BookkeepingStatements } from '../bookkeeping.js';

/*
 * Every 2PC statement txcoord sends to MySQL / MariaDB, always through `query()` (the
 * prepared-statement protocol of `execute()` rejects XA statements). Xids cannot be bind
 * parameters, so they are spliced in, but only through toMysqlXid, which accepts nothing but
 * validated txcoord xids and writes them as hex literals.
 *
 * Where phase two runs: on MariaDB 10.11 (measured) XA COMMIT / XA ROLLBACK of a prepared xid
 * from another session fails with XAER_NOTA (1397) while the preparing session is connected;
 * once that session disconnects, any session can finish it. MySQL 8.0.29+ has
 * `xa_detach_on_prepare` (ON by default in 8.4): when ON, XA PREPARE detaches the branch and
 * any session, the preparing one included, can finish it; when OFF, MySQL behaves like MariaDB.
 * Committing on the preparing connection therefore works everywhere, and recovery (preparer
 * gone) uses fresh connections.
 */

/** Starts the branch: state ACTIVE. */
export function xaStartSql(xid: Xid): string {
  return `XA START ${toMysqlXid(xid)}`;
}

/** ACTIVE → IDLE; required before XA PREPARE and XA COMMIT … ONE PHASE. */
export function xaEndSql(xid: Xid): string {
  return `XA END ${toMysqlXid(xid)}`;
}

/** Phase one: IDLE → PREPARED. */
export function xaPrepareSql(xid: Xid): string {
  return `XA PREPARE ${toMysqlXid(xid)}`;
}

/** Phase two commit of a PREPARED branch. */
export function xaCommitSql(xid: Xid): string {
  return `XA COMMIT ${toMysqlXid(xid)}`;
}

/** One-phase commit of an IDLE branch (single writer, or a read-only branch). */
export function xaCommitOnePhaseSql(xid: Xid): string {
  return `XA COMMIT ${toMysqlXid(xid)} ONE PHASE`;
}

/** Rolls back an IDLE or PREPARED branch (an ACTIVE one needs XA END first). */
export function xaRollbackSql(xid: Xid): string {
  return `XA ROLLBACK ${toMysqlXid(xid)}`;
}

/** Prepared branches: formatID, gtrid_length, bqual_length, data (gtrid and bqual concatenated). */
export const XA_RECOVER = 'XA RECOVER';

/**
 * The session's row-write counters. A branch wrote exactly when their sum grew since XA START:
 * every row insert, update or delete counts, including those done by triggers and by functions
 * called from a SELECT (MariaDB counts internal temporary tables apart, as Handler_tmp_*).
 * Not information_schema.innodb_trx: InnoDB refreshes that view at most every 100 ms for the
 * whole server, so right after any session read it a fresh write is missing (measured on
 * MariaDB 10.11), and it needs the PROCESS privilege.
 */
export const WRITE_COUNTERS =
  "SHOW SESSION STATUS WHERE Variable_name IN ('Handler_write', 'Handler_update', 'Handler_delete')";

/** YES or DEFAULT when InnoDB (the only engine with XA) is available. */
export const INNODB_SUPPORT = "select support from information_schema.engines where engine = 'InnoDB'";

/*
 * Local (non-XA) transactions: for beginLocal, and for every branch of a local-only participant.
 */

/** Starts a plain InnoDB transaction at the session's isolation level. */
export const START_TRANSACTION = 'START TRANSACTION';

/** Commits a plain transaction. */
export const COMMIT = 'COMMIT';

/** Rolls back a plain transaction (a no-op outside one). */
export const ROLLBACK = 'ROLLBACK';

/** SERVER_STATUS_IN_TRANS in an OK packet's status flags: the session is inside a transaction. */
export const SERVER_STATUS_IN_TRANS = 0x0001;

/** Reachability check of a local-only participant (which needs no XA RECOVER privilege). */
export const PING = 'select 1';

/*
 * Bookkeeping tables (commit markers, saga barrier). Values only ever go as bind parameters.
 *
 * - Binary collations: two keys differing only in case must not collide (the default *_ci would).
 * - created_at is UTC wall-clock time in a DATETIME, not a TIMESTAMP: TIMESTAMP ends in January
 *   2038 on MySQL, and the UTC default makes the epoch arithmetic below independent of time_zone.
 * - The barrier key is 128 + 128 utf8mb4 characters + 16 ASCII = 1 040 bytes, under InnoDB's 3 072.
 */

/** How many of the two bookkeeping tables exist in the current database. */
export const BOOKKEEPING_TABLES =
  "select count(*) as n from information_schema.tables where table_schema = database() and table_name in ('txcoord_markers', 'txcoord_barrier')";

/** The commit-marker table. */
export const CREATE_MARKERS = `create table if not exists txcoord_markers (
  gtrid varchar(64) character set ascii collate ascii_bin not null primary key,
  outcome varchar(8) character set ascii collate ascii_bin not null,
  created_at datetime(3) not null default (utc_timestamp(3))
) engine=InnoDB`;

/** The saga barrier table. */
export const CREATE_BARRIER = `create table if not exists txcoord_barrier (
  gid varchar(128) character set utf8mb4 collate utf8mb4_bin not null,
  step varchar(128) character set utf8mb4 collate utf8mb4_bin not null,
  op varchar(16) character set ascii collate ascii_bin not null,
  origin varchar(16) character set ascii collate ascii_bin not null,
  created_at datetime(3) not null default (utc_timestamp(3)),
  primary key (gid, step, op)
) engine=InnoDB`;

/**
 * affectedRows 1 when it inserted, 0 when the key exists. A duplicate not yet committed makes it
 * wait for that transaction (then it holds a shared lock on the row). IGNORE would also turn
 * truncation into a warning: the adapter checks lengths first so that never happens.
 */
export const INSERT_MARKER = 'insert ignore into txcoord_markers (gtrid, outcome) values (?, ?)';

/**
 * The existing marker, by a LOCKING read: under REPEATABLE READ a plain SELECT reads the
 * transaction's snapshot, which (measured on MariaDB 10.11) misses the row committed by the
 * transaction INSERT_MARKER just waited for; a locking read sees the latest committed version.
 * LOCK IN SHARE MODE, not FOR UPDATE: it is compatible with the shared lock the insert already
 * holds, so two waiters do not deadlock upgrading it. (MariaDB has no FOR SHARE.)
 */
export const SELECT_MARKER = 'select outcome from txcoord_markers where gtrid = ? lock in share mode';

/** As {@link INSERT_MARKER}, for a barrier row. */
export const INSERT_BARRIER = 'insert ignore into txcoord_barrier (gid, step, op, origin) values (?, ?, ?, ?)';

/** As {@link SELECT_MARKER}, for a barrier row. */
export const SELECT_BARRIER = 'select origin from txcoord_barrier where gid = ? and step = ? and op = ? lock in share mode';

/** The four statements above, for markerRow / barrierRow. */
export const BOOKKEEPING_ROWS: BookkeepingStatements = {
  insertMarker: INSERT_MARKER,
  selectMarker: SELECT_MARKER,
  insertBarrier: INSERT_BARRIER,
  selectBarrier: SELECT_BARRIER,
};

/** Markers whose gtrid matches a LIKE pattern (escape `!`), oldest first, at most a limit; created_ms is epoch milliseconds. */
export const LIST_MARKERS = `select gtrid, outcome, timestampdiff(microsecond, '1970-01-01 00:00:00', created_at) div 1000 as created_ms
  from txcoord_markers where gtrid like ? escape '!' order by created_at, gtrid limit ?`;

/** Deletes the markers in a list (mysql2 expands an array value into `'a', 'b', …`). */
export const DELETE_MARKERS = 'delete from txcoord_markers where gtrid in (?)';

/** Whether txcoord_barrier exists (n = 1): the barrier sweep must not create it. */
export const BARRIER_EXISTS = "select count(*) as n from information_schema.tables where table_schema = database() and table_name = 'txcoord_barrier'";

/** Deletes the barrier rows whose gid is in [?, ?); gid is utf8mb4_bin, so the comparison is by bytes. */
export const DELETE_BARRIERS = 'delete from txcoord_barrier where gid >= ? and gid < ?';

/** Most gtrids one DELETE_MARKERS statement carries. */
export const DELETE_MARKERS_BATCH = 500;
