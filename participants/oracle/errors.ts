import { SOCKET_ERROR_CODES } from '../socket-errors.js';

/**
 * What a node-oracledb error means for the adapter, decided by codes only: the server's
 * `errorNum` (ORA-nnnnn) first, because Thin rewrites the `code` of a session-ending ORA error
 * to NJS-500 and keeps the number (lib/errors.js transformErr), then the driver's `code`
 * (NJS-nnn, or a Node socket code). Message text is never read.
 */
export type OracleErrorKind =
  /** The connection could not be made or broke; the session's state is unknown: drop it. Retryable. */
  | 'connection'
  /** NJS-123: `callTimeout` expired and the call was cancelled; whether it took effect is unknown. Retryable. */
  | 'timeout'
  /** ORA-24756: no transaction branch with that xid (finished, never prepared, or read-only at prepare). */
  | 'unknown-xid'
  /** ORA-24761: the server rolled the branch back. */
  | 'rolled-back'
  /** ORA-24764: a DBA committed the prepared branch by hand (COMMIT FORCE). */
  | 'heuristic-commit'
  /** ORA-24765: a DBA rolled the prepared branch back by hand (ROLLBACK FORCE). */
  | 'heuristic-rollback'
  /** ORA-24766: the branch was partly committed and partly rolled back by hand. */
  | 'heuristic-mixed'
  /** NJS-152: the server answered a tpc* call with a state the driver did not expect. */
  | 'unknown-state'
  /** ORA-00060: deadlock; Oracle rolled back the statement only, the transaction goes on. Retryable. */
  | 'deadlock'
  /** Lock or resource busy, serialization failure, cancelled, too many sessions. Retryable. */
  | 'transient'
  /** ORA-00001: a unique key already holds that value (committed). */
  | 'unique'
  /** ORA-00955: the object name is already used (CREATE TABLE of an existing table). */
  | 'exists'
  /** ORA-01031 / ORA-00942 / logon refusals: a missing grant or an object the user cannot see. */
  | 'privilege'
  /** Any other error: the server (or the driver, before sending) refused; the connection is fine. */
  | 'refused';

/** The classification of one error. */
export interface OracleErrorClass {
  readonly kind: OracleErrorKind;
  /** The server's error number (1 for ORA-00001), for server errors. */
  readonly errorNum?: number;
  /** The driver's code: ORA-nnnnn, NJS-nnn, DPI-nnnn, or a Node socket code. */
  readonly code?: string;
  /** Whether the same operation (or the transaction, for statement errors) may succeed when tried again. */
  readonly retryable: boolean;
}

// The server ends the session after these (or they say there is none): Thin's own list of
// "recoverable" errors (lib/thin/protocol/messages/base.js) and the ORA numbers it maps to NJS-500.
const CONNECTION_ERRORS: ReadonlySet<number> = new Set([
  22, 28, 31, 45, 376, 378, 600, 602, 603, 609, 1012, 1033, 1034, 1041, 1043, 1089, 1090, 1092, 1115, 2396, 3113, 3114,
  3122, 3135, 12153, 12514, 12537, 12547, 12570, 12571, 12583, 12757, 16456, 27146, 28511, 56600,
]);

const KIND_BY_ERROR_NUM: ReadonlyMap<number, OracleErrorKind> = new Map<number, OracleErrorKind>([
  [24756, 'unknown-xid'], // transaction does not exist
  [24761, 'rolled-back'], // transaction rolled back
  // Heuristic outcomes of OCI's TPC calls, numbered next to 24756/24757 and 24769/24770
  // (forget errors, asserted in node-oracledb's test/tpc.js); seen only when a DBA used
  // COMMIT FORCE / ROLLBACK FORCE. Confirm against a server before relying on them.
  [24764, 'heuristic-commit'],
  [24765, 'heuristic-rollback'],
  [24766, 'heuristic-mixed'],
  [60, 'deadlock'],
  [54, 'transient'], // resource busy and acquire with NOWAIT
  [30006, 'transient'], // resource busy; acquire with WAIT timeout expired
  [2049, 'transient'], // distributed transaction waiting for lock (distributed_lock_timeout)
  [8177, 'transient'], // can't serialize access for this transaction
  [1013, 'transient'], // user requested cancel of current operation
  [18, 'transient'], // maximum number of sessions exceeded
  [20, 'transient'], // maximum number of processes exceeded
  [1, 'unique'],
  [955, 'exists'],
  [1031, 'privilege'], // insufficient privileges
  [942, 'privilege'], // table or view does not exist (also what a missing SELECT grant looks like)
  [1017, 'privilege'], // invalid username/password; logon denied
  [1045, 'privilege'], // user lacks CREATE SESSION privilege
  [28000, 'privilege'], // the account is locked
  [28001, 'privilege'], // the password has expired
]);

// NJS codes for a connection that is gone, never came up, or a pool that cannot give one.
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'NJS-003', // invalid or closed connection
  'NJS-040', // connection request timeout (pool queue)
  'NJS-064', // pool is draining
  'NJS-065', // pool is closed
  'NJS-076', // pool queue is full
  'NJS-500', // connection closed or broken
  'NJS-501', // lost contact
  'NJS-503', // could not be established
  'NJS-504', // proxy failure
  'NJS-509', // malformed packet
  'NJS-510', // connect timed out
  'NJS-511', // listener refused
  'NJS-518', // service not registered with the listener
  'NJS-519', // SID not registered
  'NJS-521', // end-of-file on the channel
  'NJS-530', // host unresolvable
]);

// Not worth retrying: closed for good, or a configuration that will not change by itself.
const PERMANENT_CONNECTION_CODES: ReadonlySet<string> = new Set(['NJS-065', 'NJS-518', 'NJS-519', 'NJS-530']);

const RETRYABLE_KINDS: ReadonlySet<OracleErrorKind> = new Set(['connection', 'timeout', 'deadlock', 'transient', 'unknown-state']);

/** Classifies an error thrown by node-oracledb (or by a fake that mimics it). */
export function classifyOracleError(err: unknown): OracleErrorClass {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { errorNum?: unknown; code?: unknown };
  const errorNum = typeof e.errorNum === 'number' && e.errorNum > 0 ? e.errorNum : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const out = (kind: OracleErrorKind, retryable = RETRYABLE_KINDS.has(kind)): OracleErrorClass => ({
    kind,
    ...(errorNum !== undefined ? { errorNum } : {}),
    ...(code !== undefined ? { code } : {}),
    retryable,
  });
  if (errorNum !== undefined) {
    if (CONNECTION_ERRORS.has(errorNum)) return out('connection');
    return out(KIND_BY_ERROR_NUM.get(errorNum) ?? 'refused');
  }
  if (code !== undefined) {
    if (code === 'NJS-123') return out('timeout');
    if (code === 'NJS-152') return out('unknown-state');
    if (CONNECTION_CODES.has(code)) return out('connection', !PERMANENT_CONNECTION_CODES.has(code));
    if (SOCKET_ERROR_CODES.has(code)) return out('connection');
    // Other NJS/DPI codes are argument and bind errors raised before anything is sent.
    if (/^(NJS|DPI)-\d+$/.test(code)) return out('refused');
    // Any other code comes from Node (TLS, stream): the connection cannot be trusted.
    return out('connection', false);
  }
  if (err instanceof TypeError || err instanceof RangeError) return out('refused');
  // No code at all: nothing says the session is intact, so treat it as lost.
  return out('connection');
}
