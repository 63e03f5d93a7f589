import { toMysqlXid, type Xid } from '../../coordinator/xid.js';

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
