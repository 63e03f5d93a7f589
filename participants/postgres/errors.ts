import { SOCKET_ERROR_CODES } from '../socket-errors.js';

/**
 * What a node-postgres error means for the adapter, decided by code only: SQLSTATE for server
 * errors, the Node errno code for socket errors. Message text is never read.
 */
export type PgErrorKind =
  /** The connection could not be made or broke; its state is unknown: destroy it. Retryable. */
  | 'connection'
  /** 42704: no prepared transaction with that gid. */
  | 'unknown-xid'
  /** Deadlock, serialization failure, lock not available, cancelled, server out of slots. Retryable. */
  | 'transient'
  /** 55000: a prepared transaction with that gid is being finished by another session (retry), or 2PC is disabled. */
  | 'busy'
  /** Any other error: the server refused the statement; the connection itself is fine. */
  | 'refused';

/** The classification of one error. */
export interface PgErrorClass {
  readonly kind: PgErrorKind;
  /** The five-character SQLSTATE, for server errors. */
  readonly sqlState?: string;
  /** The Node error code (ECONNREFUSED…), for socket errors. */
  readonly code?: string;
  /** Whether the same operation may succeed when tried again. */
  readonly retryable: boolean;
}


// Server errors after which the server closes the session (admin shutdown, crash shutdown,
// cannot connect now, idle-session timeouts).
const FATAL_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57P05', '25P03']);

const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '55P03', '57014', '53300', '53200']);

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** Classifies an error thrown by `pg` (or by a fake that mimics it). */
export function classifyPgError(err: unknown): PgErrorClass {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  // Socket codes first: EPIPE has the shape of a SQLSTATE.
  if (typeof code === 'string' && SOCKET_ERROR_CODES.has(code)) return { kind: 'connection', code, retryable: true };
  if (typeof code === 'string' && SQLSTATE.test(code)) {
    const sqlState = code;
    if (sqlState.startsWith('08') || FATAL_SQLSTATES.has(sqlState)) {
      return { kind: 'connection', sqlState, retryable: true };
    }
    if (sqlState === '42704') return { kind: 'unknown-xid', sqlState, retryable: false };
    if (sqlState === '55000') return { kind: 'busy', sqlState, retryable: true };
    if (TRANSIENT_SQLSTATES.has(sqlState)) return { kind: 'transient', sqlState, retryable: true };
    return { kind: 'refused', sqlState, retryable: false };
  }
  // Any other code comes from Node (TLS, stream): the connection cannot be trusted, and
  // retrying will not help.
  if (typeof code === 'string') return { kind: 'connection', code, retryable: false };
  // Values the driver cannot serialize fail before anything is sent: the connection is fine.
  if (err instanceof TypeError || err instanceof RangeError) return { kind: 'refused', retryable: false };
  // pg reports a lost or closed connection ("Connection terminated…") as an Error with no code.
  return { kind: 'connection', retryable: true };
}
