import { SOCKET_ERROR_CODES } from '../socket-errors.js';

/**
 * What a mysql2 error means for the adapter, decided by code only: the server's `errno`, the
 * Node or mysql2 `code`, and mysql2's `fatal` flag (the connection is unusable). Message text is
 * never read.
 */
export type MysqlErrorKind =
  /** The connection could not be made or broke; its state is unknown: destroy it. Retryable. */
  | 'connection'
  /** 1397 XAER_NOTA: the server does not know the xid (or another live session holds it, on MariaDB). */
  | 'unknown-xid'
  /** 1402 XA_RBROLLBACK, 1613 XA_RBTIMEOUT, 1614 XA_RBDEADLOCK: the server rolled the branch back. */
  | 'rolled-back'
  /** 1213: deadlock; the server rolled the whole transaction back (XA: ROLLBACK ONLY state). */
  | 'deadlock'
  /** Lock wait timeout (statement rolled back), too many connections. Retryable. */
  | 'transient'
  /** 1398-1400, 1440: the XA statement does not fit the branch's state. */
  | 'xa-state'
  /** Missing privilege or bad credentials. */
  | 'access-denied'
  /** Any other error: the server refused the statement; the connection itself is fine. */
  | 'refused';

/** The classification of one error. */
export interface MysqlErrorClass {
  readonly kind: MysqlErrorKind;
  /** The server's error number, for server errors. */
  readonly errno?: number;
  /** mysql2's symbolic code (ER_…, PROTOCOL_…) or the Node error code (ECONNREFUSED…). */
  readonly code?: string;
  /** Whether the same operation (or the transaction, for statement errors) may succeed when tried again. */
  readonly retryable: boolean;
}

const KIND_BY_ERRNO: ReadonlyMap<number, MysqlErrorKind> = new Map<number, MysqlErrorKind>([
  [1397, 'unknown-xid'],
  [1402, 'rolled-back'],
  [1613, 'rolled-back'],
  [1614, 'rolled-back'],
  [1213, 'deadlock'],
  [1205, 'transient'], // ER_LOCK_WAIT_TIMEOUT
  [1040, 'transient'], // ER_CON_COUNT_ERROR
  [1203, 'transient'], // ER_TOO_MANY_USER_CONNECTIONS
  [1398, 'xa-state'], // XAER_INVAL
  [1399, 'xa-state'], // XAER_RMFAIL
  [1400, 'xa-state'], // XAER_OUTSIDE
  [1440, 'xa-state'], // XAER_DUPID
  [1044, 'access-denied'], // ER_DBACCESS_DENIED_ERROR
  [1045, 'access-denied'], // ER_ACCESS_DENIED_ERROR
  [1142, 'access-denied'], // ER_TABLEACCESS_DENIED_ERROR
  [1227, 'access-denied'], // ER_SPECIFIC_ACCESS_DENIED_ERROR (XA RECOVER without XA_RECOVER_ADMIN)
  [1370, 'access-denied'], // ER_PROCACCESS_DENIED_ERROR
  [1698, 'access-denied'], // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
  // The server ends the session after these.
  [1053, 'connection'], // ER_SERVER_SHUTDOWN
  [1152, 'connection'], // ER_ABORTING_CONNECTION
  [1184, 'connection'], // ER_NEW_ABORTING_CONNECTION
  [1927, 'connection'], // ER_CONNECTION_KILLED (MariaDB)
  [2006, 'connection'], // CR_SERVER_GONE_ERROR
  [2013, 'connection'], // CR_SERVER_LOST
  [3169, 'connection'], // ER_SESSION_WAS_KILLED (MySQL)
  [4031, 'connection'], // ER_CLIENT_INTERACTION_TIMEOUT (MySQL)
]);

const RETRYABLE_KINDS: ReadonlySet<MysqlErrorKind> = new Set(['connection', 'rolled-back', 'deadlock', 'transient']);


/** Classifies an error thrown by mysql2 (or by a fake that mimics it). */
export function classifyMysqlError(err: unknown): MysqlErrorClass {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { errno?: unknown; code?: unknown; fatal?: unknown };
  // Node system errors carry a negative errno (-111 for ECONNREFUSED): only positive ones are the server's.
  const errno = typeof e.errno === 'number' && e.errno > 0 ? e.errno : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const known = errno === undefined ? undefined : KIND_BY_ERRNO.get(errno);
  let kind: MysqlErrorKind;
  if (known) kind = known;
  else if (e.fatal === true || (code !== undefined && (SOCKET_ERROR_CODES.has(code) || code.startsWith('PROTOCOL_')))) kind = 'connection';
  else kind = 'refused';
  return {
    kind,
    ...(errno !== undefined ? { errno } : {}),
    ...(code !== undefined ? { code } : {}),
    retryable: RETRYABLE_KINDS.has(kind),
  };
}
