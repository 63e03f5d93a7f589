/**
 * The one coded list of txcoord errors. Every error a user can meet has an entry here whose
 * message says what to do; driver errors travel as `cause`, never parsed by message text.
 */
export const ERROR_CODES = {
  TXC_CONFIG_INVALID: 'The configuration is invalid: fix what is named above and start again.',
  TXC_ID_INVALID:
    'An identifier is invalid: coordinator ids and participant names use 1-24 (ids) or 1-48 (names) characters of A-Z a-z 0-9 _ -.',
  TXC_LOG_CORRUPT:
    'The decision log is damaged in the middle (not a torn tail): restore it from backup or inspect it with `txcoord log inspect`; txcoord will not guess which decisions it lost.',
  TXC_LOG_LOCKED:
    'Another live process owns this decision log directory: stop it, or give this coordinator its own log directory.',
  TXC_LOG_IO:
    'Writing the decision log failed (disk full or I/O error): free space or fix the disk; no transaction was reported committed without a durable decision.',
  TXC_LOG_CLOSED: 'The decision log is closed: create a new coordinator.',
  TXC_PREPARED_TRANSACTIONS_DISABLED:
    'PostgreSQL has max_prepared_transactions = 0: run `ALTER SYSTEM SET max_prepared_transactions = 200` (at least max_connections) and restart the server.',
  TXC_XA_RECOVER_DENIED:
    'The MySQL/MariaDB user may not run XA RECOVER: grant it XA_RECOVER_ADMIN (MySQL 8) or use a user that can.',
  TXC_PARTICIPANT_UNKNOWN: 'No participant has that name: use one of the names in `participants`.',
  TXC_PARTICIPANT_UNAVAILABLE:
    'The participant could not be reached: check that the database is up and the connection settings are right.',
  TXC_QUERY_FAILED: 'A statement failed inside the transaction; the transaction will be rolled back. See `cause` for the database error.',
  TXC_PREPARE_FAILED:
    'A participant refused to prepare, so the transaction was rolled back everywhere. See `cause`; retry the transaction if the failure was transient.',
  TXC_PREPARE_TIMEOUT:
    'A participant did not prepare in time, so the transaction was rolled back everywhere. Raise `prepareTimeoutMs` or look for lock waits.',
  TXC_COMMIT_FAILED:
    'The single-participant commit failed and the transaction was rolled back. See `cause`; retry if transient.',
  TXC_OUTCOME_UNKNOWN:
    'The connection was lost during a single-participant commit: the outcome is unknown, as for any local commit. Check the data before retrying.',
  TXC_TRANSACTION_CLOSED: 'The transaction is already finishing: run every tx.query inside the callback and await it.',
  TXC_POOL_TIMEOUT:
    'No connection to the participant became free in time: raise the pool size or `acquireTimeoutMs`, or look for long transactions.',
  TXC_RECOVERY_REQUIRED:
    'The participant holds prepared transactions that must be resolved first: run `coord.recover()` or `txcoord recover --config F`.',
  TXC_COORDINATOR_CLOSED: 'The coordinator is closed: create a new one.',
  TXC_HEURISTIC_OUTCOME:
    'A participant reached a different outcome than the decision log records (someone resolved it by hand): reconcile the data; the report lists each branch.',
  TXC_NOT_FOUND: 'No such transaction or branch: check the id with `txcoord in-doubt`.',
  TXC_USAGE: 'The command was used wrongly: see `txcoord --help`.',
  TXC_TWO_PHASE_UNSUPPORTED:
    "The transaction asked for mode '2pc' but a participant it used cannot prepare: use mode 'auto' (last resource or saga) or leave that participant out.",
  TXC_COMPENSATION_REQUIRED:
    'A statement on a participant that cannot prepare needs its compensation here: pass `{ compensate: { sql, params } }` as the fourth argument of tx.query.',
  TXC_STEP_REJECTED:
    'A saga step was refused by the participant as a business failure (HTTP 409/422, or the step threw): the saga compensates the steps done before it.',
  TXC_STEP_MISCONFIGURED:
    'A participant answered that the request can never succeed (HTTP 4xx other than 409/422): check the step path, body and the participant headers.',
  TXC_STEP_TIMEOUT: 'A saga step or the whole saga ran past its timeout: the saga compensates what it did. Raise `timeoutMs` if the work is just slow.',
  TXC_COMPENSATION_FAILED:
    'A compensation can never succeed, so the saga ended as failed with a heuristic report: repair that step by hand (the report names it) and record it as resolved.',
  TXC_SAGA_UNKNOWN: 'No saga is defined under that name in this process: call coord.defineSaga(name, steps) before runSaga or recovery.',
  TXC_PERMISSION_DENIED:
    'The database user lacks a grant txcoord needs (named above, with the GRANT statement to run): grant it, or use a user that has it.',
  TXC_RESOLVE_REFUSED:
    'That outcome contradicts the decision log (see `txcoord in-doubt`): pass force (`--force`, `"force": true`) only if you are sure, and it will be recorded as a heuristic decision.',
  TXC_BAD_REQUEST: 'The request is malformed (the field is named above): fix the request; nothing was done.',
  TXC_UNAUTHORIZED: 'The request has no valid `Authorization: Bearer <token>` header: send a token from the server config `api.tokens`.',
  TXC_FORBIDDEN: 'This token may not use this route (admin routes need an admin token): use an admin token from `api.tokens`.',
  TXC_WRONG_INSTANCE:
    'The transaction was begun by another coordinator instance (its id names that coordinator): send every request of a client-driven transaction to the instance that began it, for example by routing on the coordinator id inside the transaction id.',
  TXC_SCAN_INCOMPLETE:
    'Some participants could not be listed (named above), so a list of what is in doubt would be incomplete: bring them back and ask again, or pass `{ allowPartial: true }` to get what could be listed.',
  TXC_UNSUPPORTED: 'The participant does not support that operation: see the README table of what each driver can do.',
} as const;

/** One of the codes in {@link ERROR_CODES}. */
export type TxcErrorCode = keyof typeof ERROR_CODES;

/** Structured facts attached to an error, for logs and programmatic handling. */
export type TxcErrorDetails = Readonly<Record<string, string | number | boolean | null | undefined>>;

const MARK = Symbol.for('txcoord.TxcError');

/**
 * The error every txcoord failure is reported with. `code` is stable; `message` starts with
 * the specific fact and ends with what to do; the driver's own error, if any, is `cause`.
 */
export class TxcError extends Error {
  readonly code: TxcErrorCode;
  readonly details: TxcErrorDetails;
  /** Whether retrying the same operation may succeed (a transient failure). */
  readonly retryable: boolean;

  constructor(
    code: TxcErrorCode,
    fact?: string,
    options: { cause?: unknown; details?: TxcErrorDetails; retryable?: boolean } = {},
  ) {
    super(fact ? `${fact}. ${ERROR_CODES[code]}` : ERROR_CODES[code], { cause: options.cause });
    this.name = 'TxcError';
    this.code = code;
    this.details = options.details ?? {};
    this.retryable = options.retryable ?? false;
    Object.defineProperty(this, MARK, { value: true });
  }

  /** `instanceof` that also holds across two copies of the package. */
  static is(err: unknown, code?: TxcErrorCode): err is TxcError {
    return (
      typeof err === 'object' &&
      err !== null &&
      (err as Record<symbol, unknown>)[MARK] === true &&
      (code === undefined || (err as TxcError).code === code)
    );
  }
}
