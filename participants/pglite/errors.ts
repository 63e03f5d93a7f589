import { TxcError, type TxcErrorCode } from '../../coordinator/errors.js';

/**
 * What a PGlite error means for the adapter, decided by SQLSTATE only (message text is never
 * read). PGlite rejects with a DatabaseError whose `code` is the SQLSTATE.
 */
export type PgliteErrorKind =
  /** 42704: no prepared transaction with that gid. */
  | 'unknown-xid'
  /** Serialization failure, deadlock, lock not available, cancelled, out of prepared-transaction slots. */
  | 'transient'
  /** Any other SQLSTATE: PostgreSQL refused the statement; the instance itself is fine. */
  | 'refused'
  /** No SQLSTATE: the instance failed (WASM abort, closed); what the statement did is unknown. */
  | 'broken';

/** The classification of one error. */
export interface PgliteErrorClass {
  readonly kind: PgliteErrorKind;
  /** The five-character SQLSTATE, when PostgreSQL produced the error. */
  readonly sqlState?: string;
  /** Whether the same operation may succeed when tried again. */
  readonly retryable: boolean;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

// 53200 is also "maximum number of prepared transactions reached": free once others resolve.
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '55P03', '57014', '53200']);

/** The SQLSTATE carried by `err`, if it is a PostgreSQL error. */
export function sqlStateOf(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
}

/** Classifies an error thrown by PGlite (or by a fake that mimics it). */
export function classifyPgliteError(err: unknown): PgliteErrorClass {
  const sqlState = sqlStateOf(err);
  if (sqlState === undefined) return { kind: 'broken', retryable: false };
  if (sqlState === '42704') return { kind: 'unknown-xid', sqlState, retryable: false };
  if (TRANSIENT_SQLSTATES.has(sqlState)) return { kind: 'transient', sqlState, retryable: true };
  return { kind: 'refused', sqlState, retryable: false };
}

/** The start of every error text: which participant. */
export function fact(participant: string, text: string): string {
  return `PGlite participant "${participant}": ${text}`;
}

/** Wraps a driver error as `code`, with `{ participant, sqlState }` details. */
export function wrapPgliteError(code: TxcErrorCode, participant: string, text: string, err: unknown): TxcError {
  const { sqlState, retryable } = classifyPgliteError(err);
  return new TxcError(code, text, { cause: err, details: { participant, sqlState }, retryable });
}

/** A statement of the branch (or of recovery) failed. */
export function queryFailed(participant: string, err: unknown): TxcError {
  return wrapPgliteError('TXC_QUERY_FAILED', participant, fact(participant, 'statement failed'), err);
}

/** No lease on the single connection within the deadline. */
export function poolTimeout(participant: string, timeoutMs: number): TxcError {
  return new TxcError(
    'TXC_POOL_TIMEOUT',
    fact(participant, `its single connection stayed busy for ${timeoutMs} ms`),
    { details: { participant, timeoutMs }, retryable: true },
  );
}

/** Prepared transactions exist, so new work could block forever on their locks. */
export function recoveryRequired(participant: string, prepared: number, foreign: number): TxcError {
  const byHand =
    foreign > 0
      ? `, ${foreign} of them not txcoord's (resolve those by hand with COMMIT PREPARED or ROLLBACK PREPARED)`
      : '';
  return new TxcError(
    'TXC_RECOVERY_REQUIRED',
    fact(participant, `${prepared} prepared transaction(s) exist${byHand}; a statement touching their rows would hang the process`),
    // Retryable only if all are txcoord's: the coordinator's recovery resolves those by itself.
    { details: { participant, prepared, foreign }, retryable: foreign === 0 },
  );
}

/** The instance cannot be used (failed to open, or closed). */
export function unavailable(participant: string, text: string, cause?: unknown): TxcError {
  return new TxcError('TXC_PARTICIPANT_UNAVAILABLE', fact(participant, text), {
    cause,
    details: { participant, sqlState: sqlStateOf(cause) },
  });
}

/** A branch method was called in a state where it makes no sense. */
export function transactionClosed(participant: string, operation: string, state: string): TxcError {
  return new TxcError(
    'TXC_TRANSACTION_CLOSED',
    fact(participant, `cannot ${operation} a branch that is ${state}`),
    { details: { participant, state } },
  );
}
