import { toPgGid, type Xid } from '../../coordinator/xid.js';

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
