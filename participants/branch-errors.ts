import { TxcError, type TxcErrorCode } from '../coordinator/errors.js';
import { xidKey, type Xid } from '../coordinator/xid.js';

/** The driver's identifying fields of a classified error (SQLSTATE, errno, ORA number, code). */
export type DriverDetails = Record<string, string | number | undefined>;

/**
 * The errors a branch adapter reports, in the same words for every database, each carrying the
 * participant's name and the driver's classified codes (`C`) in its details.
 */
export class BranchErrors<C> {
  constructor(
    private readonly participant: string,
    private readonly xid: Xid,
    /** Classifies a driver error by its codes. */
    private readonly classify: (err: unknown) => C,
    /** The fields of a classification worth reporting. */
    private readonly fields: (c: C | undefined) => DriverDetails,
  ) {}

  /** Details for a TxcError: the participant and the driver's codes. */
  details(c: C | undefined): DriverDetails {
    return { participant: this.participant, ...this.fields(c) };
  }

  /** The branch cannot take this call in its current state. */
  closed(state: string): TxcError {
    return new TxcError('TXC_TRANSACTION_CLOSED', `Branch ${xidKey(this.xid)} on ${this.participant} is ${state}`, {
      details: { participant: this.participant },
    });
  }

  /** A statement sent through `query` failed. */
  queryFailed(cause: unknown, c: C & { readonly retryable: boolean }): TxcError {
    return new TxcError('TXC_QUERY_FAILED', `A statement failed on participant ${this.participant}`, {
      cause,
      retryable: c.retryable,
      details: this.details(c),
    });
  }

  /** Phase one did not prepare the branch (it is rolled back). */
  prepareFailed(why: string, retryable: boolean, cause?: unknown, c?: C): TxcError {
    return this.failure('TXC_PREPARE_FAILED', `Participant ${this.participant} did not prepare ${xidKey(this.xid)}: ${why}`, retryable, cause, c);
  }

  /** A commit did not happen. */
  commitFailed(why: string, retryable: boolean, cause?: unknown, c?: C): TxcError {
    return this.failure('TXC_COMMIT_FAILED', `Participant ${this.participant} did not commit ${xidKey(this.xid)}: ${why}`, retryable, cause, c);
  }

  /**
   * The connection was lost during `operation` (a prepare), which may or may not have taken
   * effect: not a refusal, so the coordinator resolves the branch by xid from a fresh connection.
   */
  inDoubt(operation: string, cause: unknown, c: C | undefined): TxcError {
    return new TxcError(
      'TXC_PARTICIPANT_UNAVAILABLE',
      `The connection to ${this.participant} was lost during ${operation} of ${xidKey(this.xid)}, which may or may not have prepared`,
      { cause, retryable: true, details: this.details(c) },
    );
  }

  /** An error with `code`, classifying `cause` when no classification is given. */
  failure(code: TxcErrorCode, fact: string, retryable: boolean, cause: unknown, c: C | undefined): TxcError {
    const used = c ?? (cause === undefined ? undefined : this.classify(cause));
    return new TxcError(code, fact, { cause, retryable, details: this.details(used) });
  }
}
