import { TxcError } from '../../coordinator/errors.js';
import { isTxcXid, type Xid } from '../../coordinator/xid.js';
import type { OracleXid } from './driver.js';
import type { BookkeepingStatements } from '../bookkeeping.js';

/*
 * Everything txcoord sends to Oracle besides the user's statements. Xids never go into SQL text:
 * they travel in the tpc* calls themselves. Values are always bind parameters (:1, :2…);
 * only the fixed table names below are spliced in.
 */

/** The driver's xid for a txcoord xid; TXC_ID_INVALID for anything else (nothing unvalidated reaches the server). */
export function toOracleXid(xid: Xid): OracleXid {
  if (!isTxcXid(xid)) throw new TxcError('TXC_ID_INVALID', `Not a txcoord xid: ${JSON.stringify(xid)}`);
  // gtrid ≤ 62 and bqual ≤ 54 ASCII bytes: within Oracle's 64-byte limits for both.
  return { formatId: xid.formatId, globalTransactionId: xid.gtrid, branchQualifier: xid.bqual };
}

/**
 * A row of `tpcRecover(false)` (raw bytes of DBA_PENDING_TRANSACTIONS) as a txcoord xid, or
 * undefined when the branch is not txcoord's (another application's XA work shares the view).
 */
export function fromOracleRecoverRow(row: unknown): Xid | undefined {
  if (typeof row !== 'object' || row === null) return undefined;
  const r = row as Record<string, unknown>;
  const text = (v: unknown): string | undefined =>
    // latin1 maps each byte to one character, so a non-ASCII id can never pass isTxcXid.
    Buffer.isBuffer(v) ? v.toString('latin1') : typeof v === 'string' ? v : undefined;
  const formatId = Number(r.formatId);
  const gtrid = text(r.globalTransactionId);
  const bqual = text(r.branchQualifier);
  if (!Number.isInteger(formatId) || gtrid === undefined || bqual === undefined) return undefined;
  const xid: Xid = { formatId, gtrid, bqual };
  return isTxcXid(xid) ? xid : undefined;
}

/**
 * One round trip for preflight: reachability, the session user (for the grant hint), and
 * whether FORCE ANY TRANSACTION is enabled in this session (directly or through a role such
 * as DBA): without it a branch prepared by one session cannot be committed or rolled back from
 * another, which is what recovery and phase-two retries do.
 */
export const PREFLIGHT =
  "select sys_context('USERENV', 'SESSION_USER') as session_user, " +
  "(select count(*) from session_privs where privilege = 'FORCE ANY TRANSACTION') as force_any from dual";

/** 2 when both bookkeeping tables exist in the user's schema (a DBA may have created them for a user without CREATE TABLE). */
export const BOOKKEEPING_EXISTS = "select count(*) as n from user_tables where table_name in ('TXCOORD_MARKERS', 'TXCOORD_BARRIER')";

/** The commit-marker table; ORA-00955 when it exists already. */
export const CREATE_MARKERS =
  'create table txcoord_markers (' +
  'gtrid varchar2(64) primary key, ' +
  "outcome varchar2(8) not null check (outcome in ('commit', 'abort')), " +
  // UTC wall-clock time: a plain TIMESTAMP holds no zone, and systimestamp's would be lost.
  'created_at timestamp default sys_extract_utc(systimestamp) not null)';

/** The saga barrier table; ORA-00955 when it exists already. */
export const CREATE_BARRIER =
  'create table txcoord_barrier (' +
  // CHAR semantics: the shared key checks count characters, and VARCHAR2 counts bytes by default.
  'gid varchar2(128 char), step varchar2(128 char), op varchar2(16), ' +
  'origin varchar2(16) not null, ' +
  'created_at timestamp default sys_extract_utc(systimestamp) not null, ' +
  'primary key (gid, step, op))';

/** Waits for an uncommitted row with the same key (Oracle's unique-index lock), then ORA-00001 if it committed. */
export const INSERT_MARKER = 'insert into txcoord_markers (gtrid, outcome) values (:1, :2)';

/** The outcome of the marker that an INSERT_MARKER collided with. */
export const SELECT_MARKER = 'select outcome from txcoord_markers where gtrid = :1';

/** Like INSERT_MARKER, for barrier rows. */
export const INSERT_BARRIER = 'insert into txcoord_barrier (gid, step, op, origin) values (:1, :2, :3, :4)';

/** The origin of the barrier row that an INSERT_BARRIER collided with. */
export const SELECT_BARRIER = 'select origin from txcoord_barrier where gid = :1 and step = :2 and op = :3';

/** The four statements above, for markerRow / barrierRow. */
export const BOOKKEEPING_ROWS: BookkeepingStatements = {
  insertMarker: INSERT_MARKER,
  selectMarker: SELECT_MARKER,
  insertBarrier: INSERT_BARRIER,
  selectBarrier: SELECT_BARRIER,
};

/**
 * Marker rows whose gtrid matches :1 (markerPrefixPattern: `!` escapes), oldest first, at most
 * :2. created_at comes back as ISO-8601 UTC text, so no driver time-zone rule applies.
 */
export const LIST_MARKERS =
  "select gtrid, outcome, to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.FF3') || 'Z' as created_at " +
  "from txcoord_markers where gtrid like :1 escape '!' order by created_at, gtrid fetch first :2 rows only";

/** Whether txcoord_barrier exists (n = 1): the barrier sweep must not create it. */
export const BARRIER_EXISTS = "select count(*) as n from user_tables where table_name = 'TXCOORD_BARRIER'";

/**
 * Deletes the barrier rows whose gid is in [:1, :2), compared by bytes (NLS_SORT=BINARY) even
 * in a session whose NLS_COMP is LINGUISTIC.
 */
export const DELETE_BARRIERS =
  "delete from txcoord_barrier where nlssort(gid, 'NLS_SORT=BINARY') >= nlssort(:1, 'NLS_SORT=BINARY') " +
  "and nlssort(gid, 'NLS_SORT=BINARY') < nlssort(:2, 'NLS_SORT=BINARY')";

/** Oracle allows at most 1000 expressions in an IN list. */
export const DELETE_BATCH = 500;

/** Deletes `count` marker rows by gtrid, each a bind parameter. */
export function deleteMarkersSql(count: number): string {
  const binds = Array.from({ length: count }, (_, i) => `:${i + 1}`).join(', ');
  return `delete from txcoord_markers where gtrid in (${binds})`;
}
