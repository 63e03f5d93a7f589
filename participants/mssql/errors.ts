import { SOCKET_ERROR_CODES } from '../socket-errors.js';

/**
 * What a tedious error means for the adapter, decided by code only: SQL Server's error `number`
 * and severity `class`, tedious's `code` (ESOCKET, ECLOSE, ETIMEOUT…) or the Node socket code,
 * and tedious's `isTransient` flag on login failures. Message text is never read.
 */
export type MssqlErrorKind =
  /** The connection could not be made, broke, or timed out: its state is unknown, destroy it. */
  | 'connection'
  /** 1205: chosen as deadlock victim; the server rolled the whole transaction back. Retryable. */
  | 'deadlock'
  /** Lock timeout, snapshot update conflict, resource or throttling errors. Retryable. */
  | 'transient'
  /** 2627 / 2601: a unique key already holds the value. */
  | 'duplicate'
  /** A missing permission or a refused login. */
  | 'access-denied'
  /** Any other error: the server (or tedious, before sending) refused it; the connection is fine. */
  | 'refused';

/** The classification of one error. */
export interface MssqlErrorClass {
  readonly kind: MssqlErrorKind;
  /** SQL Server's error number, for server errors. */
  readonly number?: number;
  /** tedious's code (EREQUEST, ESOCKET, ETIMEOUT…) or the Node error code. */
  readonly code?: string;
  /** Whether the same operation (or the transaction, for statement errors) may succeed when tried again. */
  readonly retryable: boolean;
}

const KIND_BY_NUMBER: ReadonlyMap<number, MssqlErrorKind> = new Map<number, MssqlErrorKind>([
  [1205, 'deadlock'],
  [1222, 'transient'], // lock request timeout (SET LOCK_TIMEOUT)
  [3960, 'transient'], // snapshot isolation update conflict (transaction aborted)
  [3961, 'transient'], // snapshot isolation: object changed by DDL
  [8645, 'transient'], // timeout waiting for memory
  [10928, 'transient'], // Azure SQL: resource limit reached
  [10929, 'transient'],
  [40197, 'transient'], // Azure SQL: service error, retry
  [40501, 'transient'], // Azure SQL: service busy
  [40613, 'transient'], // Azure SQL: database unavailable
  [49918, 'transient'],
  [49919, 'transient'],
  [49920, 'transient'],
  [2601, 'duplicate'], // unique index
  [2627, 'duplicate'], // primary key / unique constraint
  [229, 'access-denied'], // permission denied on object
  [230, 'access-denied'], // permission denied on column
  [262, 'access-denied'], // CREATE TABLE (or other) permission denied in database
  [297, 'access-denied'], // user lacks permission for this action
  [300, 'access-denied'], // VIEW SERVER STATE denied
  [916, 'access-denied'], // principal cannot access the database
  [2760, 'access-denied'], // schema does not exist or no permission to use it
  [4060, 'access-denied'], // cannot open the database requested by the login
  [18456, 'access-denied'], // login failed
  // The server ends the session after these.
  [596, 'connection'], // session is in the kill state
  [6005, 'connection'], // shutdown in progress
]);

// tedious's own codes for a connection that failed, timed out or is not usable; its request
// timeout (ETIMEOUT) counts too: the statement's effect is unknown and the pool settings say
// a connection that does not answer in time is taken as dead.
const RETRYABLE_CONNECTION_CODES = new Set(['ESOCKET', 'ECLOSE', 'ETIMEOUT', 'EINVALIDSTATE', 'ECANCEL', 'EINSTLOOKUP']);

// Refusals by tedious itself before anything reached the server.
const CLIENT_REFUSAL_CODES = new Set(['EPARAM']);

const RETRYABLE_KINDS: ReadonlySet<MssqlErrorKind> = new Set(['connection', 'deadlock', 'transient']);

// When a request raised several server errors (tedious then rejects with an AggregateError), the
// one that decides what to do with the connection and the transaction wins.
const PRIORITY: readonly MssqlErrorKind[] = ['connection', 'deadlock', 'transient', 'access-denied', 'duplicate', 'refused'];

/** Classifies an error from tedious (or from a fake that mimics it). */
export function classifyMssqlError(err: unknown): MssqlErrorClass {
  const nested = typeof err === 'object' && err !== null ? (err as { errors?: unknown }).errors : undefined;
  if (Array.isArray(nested) && nested.length > 0) {
    const classes = nested.map(classifyMssqlError);
    const rank = (c: MssqlErrorClass) => PRIORITY.indexOf(c.kind);
    return classes.reduce((best, c) => (rank(c) < rank(best) ? c : best));
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as { number?: unknown; code?: unknown; class?: unknown; isTransient?: unknown };
  const number = typeof e.number === 'number' ? e.number : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const severity = typeof e.class === 'number' ? e.class : undefined;
  const base = { ...(number !== undefined ? { number } : {}), ...(code !== undefined ? { code } : {}) };
  const of = (kind: MssqlErrorKind, retryable = RETRYABLE_KINDS.has(kind)): MssqlErrorClass => ({ kind, ...base, retryable });

  if (number !== undefined) {
    // Severity 20 and above is fatal: the server closes the session.
    if (severity !== undefined && severity >= 20) return of('connection');
    return of(KIND_BY_NUMBER.get(number) ?? 'refused');
  }
  if (code !== undefined) {
    if (code === 'ELOGIN' || code === 'EFEDAUTH') return e.isTransient === true ? of('connection') : of('access-denied');
    if (RETRYABLE_CONNECTION_CODES.has(code) || SOCKET_ERROR_CODES.has(code)) return of('connection');
    if (CLIENT_REFUSAL_CODES.has(code)) return of('refused');
    // A server error without a number (DONE_ERROR with no error token): refused, connection fine.
    if (code === 'EREQUEST' || code === 'UNKNOWN') return of('refused');
    // Any other code (TLS, protocol, encryption not supported): the connection cannot be
    // trusted, and retrying will not help.
    return of('connection', false);
  }
  // Values that cannot be bound fail before anything is sent: the connection is fine.
  if (err instanceof TypeError || err instanceof RangeError) return of('refused');
  // Nothing to go by: the connection's state is unknown.
  return of('connection');
}
