import { toPgGid, type Xid } from '../../coordinator/xid.js';

/*
 * All SQL the PGlite adapter sends. Gids are spliced in (PostgreSQL takes no parameter there)
 * only through `toPgGid`, whose output is validated ASCII without quotes.
 */

/** Opens the branch's transaction block. */
export const BEGIN = 'BEGIN';
/** One-phase commit; answers tag 'ROLLBACK' when the transaction had failed. */
export const COMMIT = 'COMMIT';
/** Ends the open transaction block (a warning, not an error, when there is none). */
export const ROLLBACK = 'ROLLBACK';

/** Assigns the transaction id if needed and returns it; fails with 25P02 in a failed transaction. */
export const CURRENT_XACT_ID = 'select pg_current_xact_id()::text as xid';
/** The transaction id, or null while the transaction has written nothing. */
export const XACT_ID_IF_ASSIGNED = 'select pg_current_xact_id_if_assigned()::text as xid';
/** Fate of a transaction id returned by {@link CURRENT_XACT_ID}: committed, aborted, in progress or null. */
export const XACT_STATUS = 'select pg_xact_status($1::xid8) as status';
/** Every prepared transaction of this database, txcoord's or not (the caller filters with `fromPgGid`). */
export const LIST_PREPARED = 'select gid from pg_prepared_xacts where database = current_database()';
/** The 2PC capacity the instance was started with. */
export const SHOW_MAX_PREPARED = 'show max_prepared_transactions';

/** Phase one. */
export function prepareTransaction(xid: Xid): string {
  return `PREPARE TRANSACTION '${toPgGid(xid)}'`;
}

/** Phase two, commit. */
export function commitPrepared(xid: Xid): string {
  return `COMMIT PREPARED '${toPgGid(xid)}'`;
}

/** Phase two, rollback. */
export function rollbackPrepared(xid: Xid): string {
  return `ROLLBACK PREPARED '${toPgGid(xid)}'`;
}

/** Tag of a PREPARE TRANSACTION that prepared something. */
export const PREPARE_TAG = 'PREPARE';
/** Tag of a COMMIT that committed. */
export const COMMIT_TAG = 'COMMIT';

/** Tags of statements whose affected-row count says the branch wrote. */
export const DML_TAGS: ReadonlySet<string> = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/*
 * Bookkeeping tables (commit markers, saga barrier), as in the PostgreSQL adapter. Values only
 * ever go as bind parameters. On one connection no other transaction can hold a conflicting key,
 * so the inserts never wait here.
 */

// PGlite is PostgreSQL: the same statements, kept in one place.
export {
  BOOKKEEPING_EXISTS,
  CREATE_MARKERS,
  CREATE_BARRIER,
  INSERT_MARKER,
  SELECT_MARKER,
  INSERT_BARRIER,
  SELECT_BARRIER,
  LIST_MARKERS,
  DELETE_MARKERS,
  BARRIER_EXISTS,
  DELETE_BARRIERS,
  BOOKKEEPING_ROWS,
} from '../postgres/sql.js';
