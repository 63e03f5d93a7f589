import type { Logger } from 'pino';
import type { LogConfig } from '../log/decision-log.js';
import type { ParticipantConfig } from '../participants/participant-config.js';
import type { QueryResult } from '../participants/participant.js';
import type { CoordinatorStats } from './stats.js';

/** Moments of the protocol where a test can crash or delay the coordinator. */
export type ProtocolPoint =
  | 'before-prepare'
  | 'after-prepare'
  | 'after-decision'
  | 'after-commit'
  | 'before-end';

/** Details handed to a protocol hook. */
export interface ProtocolPointInfo {
  readonly gtrid: string;
  /** Participant concerned (after-prepare, after-commit), if any. */
  readonly participant?: string;
}

/** A clock; injected so timeouts and backoff are deterministic in tests. */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; returns a cancel function. */
  setTimeout(fn: () => void, ms: number): () => void;
}

/** Retry policy for phase two and recovery. */
export interface BackoffConfig {
  /** First delay. Default 100 ms. */
  readonly initialMs?: number;
  /** Largest delay. Default 30 000 ms. */
  readonly maxMs?: number;
  /** Growth factor. Default 2. */
  readonly factor?: number;
}

/** Options of {@link createCoordinator}; the same shape (minus functions) is the CLI's JSON config. */
export interface CoordinatorConfig {
  /** Coordinator id, part of every transaction id: 1-24 of A-Z a-z 0-9 _ -. Unique per log. */
  readonly id: string;
  readonly log: LogConfig;
  /** Named participants. */
  readonly participants: Readonly<Record<string, ParticipantConfig>>;
  /** Phase-one deadline for all prepares together. Default 30 000 ms. */
  readonly prepareTimeoutMs?: number;
  /**
   * How long `transaction()` waits for phase two once the decision is durable; past it the call
   * resolves with `phaseTwoPending: true` and the commit continues in the background. Default 10 000 ms.
   */
  readonly phaseTwoTimeoutMs?: number;
  readonly recovery?: {
    /** Recover in-doubt branches before `createCoordinator` resolves. Default true. */
    readonly onStart?: boolean;
    /** Background recovery period; 0 disables. Default 60 000 ms. */
    readonly intervalMs?: number;
  };
  readonly backoff?: BackoffConfig;
  /** pino level when no logger is given. Default `warn` (or TXCOORD_LOG_LEVEL). */
  readonly logLevel?: string;
}

/** Things only code can pass: injected for tests and embedding. */
export interface CoordinatorHooks {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Source of uuids for transaction ids (must be time-ordered to keep ids sortable). */
  readonly uuid?: () => string;
  /** Source of randomness for backoff jitter, in [0, 1). */
  readonly random?: () => number;
  /** Called at each protocol point; may throw (simulated crash) or never resolve. */
  readonly onProtocolPoint?: (point: ProtocolPoint, info: ProtocolPointInfo) => void | Promise<void>;
}

/** Everything {@link createCoordinator} accepts. */
export type CreateCoordinatorOptions = CoordinatorConfig & CoordinatorHooks;

/** Per-transaction options. */
export interface TransactionOptions {
  /** Stored with the commit record for audit (user id, request id...). */
  readonly meta?: Readonly<Record<string, string | number | boolean | null>>;
  /** Overrides the coordinator's prepare timeout. */
  readonly prepareTimeoutMs?: number;
}

/** The handle a transaction callback receives. */
export interface Tx {
  /** Global transaction id. */
  readonly id: string;
  /** Runs a statement on a participant; the participant joins on its first query. Placeholders are the driver's ($1 / ?). */
  query(participant: string, sql: string, params?: readonly unknown[]): Promise<QueryResult>;
}

/** How a transaction was committed. */
export type CommitMode =
  /** Nothing was written anywhere: no commit work at all. */
  | 'read-only'
  /** Exactly one participant wrote: a plain local commit, no log write. */
  | 'one-phase'
  /** Two or more wrote: two-phase commit with a forced decision record. */
  | '2pc';

/** What `coord.transaction` resolves to. */
export interface TransactionResult<T> {
  readonly id: string;
  readonly outcome: 'committed';
  readonly mode: CommitMode;
  /** The callback's return value. */
  readonly value: T;
  /** Participants that wrote. */
  readonly participants: readonly string[];
  /** True when some phase-two commit is still being retried in the background (the outcome is already decided). */
  readonly phaseTwoPending: boolean;
}

/** A prepared branch found in a participant. */
export interface InDoubtBranch {
  readonly participant: string;
  readonly gtrid: string;
  readonly bqual: string;
  /** Owning coordinator id. */
  readonly coordinatorId: string;
  /** What the log says: commit (a commit record exists), rollback (presumed abort), or unknown (another coordinator's). */
  readonly decision: 'commit' | 'rollback' | 'unknown';
  /** Whether the transaction is still running in this process (recovery leaves it alone). */
  readonly inFlight: boolean;
  /** Age in ms, from the time in the gtrid. */
  readonly ageMs?: number;
}

/** A branch whose outcome differs from the log's decision. */
export interface HeuristicReport {
  readonly gtrid: string;
  readonly participant: string;
  readonly bqual: string;
  readonly expected: 'commit' | 'rollback';
  readonly actual: 'committed' | 'rolled-back' | 'unknown';
}

/** What one recovery pass did. */
export interface RecoveryReport {
  readonly committed: number;
  readonly rolledBack: number;
  /** Commit records whose every branch is finished and got an end record. */
  readonly ended: number;
  readonly heuristic: readonly HeuristicReport[];
  /** Branches still in doubt afterwards (participant unreachable, in flight, or another coordinator's). */
  readonly remaining: readonly InDoubtBranch[];
  /** Participants that could not be checked, with the error code. */
  readonly failures: readonly { participant: string; code: string; message: string }[];
}

/** Options of a recovery pass. */
export interface RecoverOptions {
  /** Report what would be done without doing it. */
  readonly dryRun?: boolean;
  /** Called after each branch is resolved, for progress display. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** The embedded coordinator. */
export interface Coordinator {
  readonly id: string;
  /** Runs `fn` as one atomic transaction across every participant it queries. */
  transaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<TransactionResult<T>>;
  /** Resolves every in-doubt branch this coordinator owns (commit where the log says so, else roll back). */
  recover(options?: RecoverOptions): Promise<RecoveryReport>;
  /** Counters since start: commits by mode, rollbacks, heuristic outcomes, retries, recovery. */
  stats(): CoordinatorStats;
  /** Lists prepared branches in every participant (all coordinators' txcoord branches). */
  inDoubt(): Promise<InDoubtBranch[]>;
  /** Waits for in-flight transactions and phase-two retries (up to `timeoutMs`), then closes pools and the log. */
  close(options?: { timeoutMs?: number }): Promise<void>;
}
