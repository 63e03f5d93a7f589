import type { Logger } from 'pino';
import type { LogConfig } from '../log/decision-log.js';
import type { ParticipantConfig } from '../participants/participant-config.js';
import type { QueryResult } from '../participants/participant.js';
import type { AbortAnswer, CommitAnswer, ResolveAnswer, SagaView, TransactionView, WireBranch } from '../client/wire-types.js';
import type { JsonValue, SagaDefinition, SagaHandlerStep, SagaResult, SagaRunOptions } from '../sagas/saga-types.js';
import type { CoordinatorStats } from './stats.js';

/** Moments of the protocol where a test can crash or delay the coordinator. */
export type ProtocolPoint =
  | 'before-prepare'
  | 'after-prepare'
  /** Last resource: every other branch prepared, the marker commit not sent yet. */
  | 'before-marker'
  | 'after-decision'
  | 'after-commit'
  | 'before-end'
  /** Saga step points (info.step names the step). */
  | 'saga-before-action'
  | 'saga-after-action'
  | 'saga-before-compensate'
  | 'saga-after-compensate';

/** Details handed to a protocol hook. */
export interface ProtocolPointInfo {
  readonly gtrid: string;
  /** Participant concerned (after-prepare, after-commit), if any. */
  readonly participant?: string;
  /** Saga step concerned (saga points). */
  readonly step?: string;
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
  /**
   * Keep the commit decision of 2PC transactions as a marker row in this participant (which
   * must support local transactions) instead of a forced write to the log, whenever it wrote
   * in the transaction: it commits in one phase, with the marker, as the commit point.
   */
  readonly decisionIn?: string;
  /** How long abort markers written by recovery are kept before garbage collection. Default 86 400 000 (1 day). */
  readonly markerRetentionMs?: number;
  /**
   * How long the saga barrier rows (`txcoord_barrier`) of this coordinator's sagas are kept:
   * recovery deletes the rows of sagas started longer ago than this, never those of a saga still
   * in the log (with a shared log, still unfinished in the shared tables, whoever drives it now).
   * Default 604 800 000 (7 days).
   */
  readonly barrierRetentionMs?: number;
  /** The HTTP service (`txcoord serve`); ignored by the embedded library. */
  readonly api?: ApiConfig;
}

/** Settings of `txcoord serve`. */
export interface ApiConfig {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 7070. */
  readonly port?: number;
  /** Bearer token → role. Use `${ENV}` for the tokens themselves. */
  readonly tokens: Readonly<Record<string, 'client' | 'admin'>>;
  /** Largest request body. Default 1 048 576. */
  readonly bodyLimitBytes?: number;
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

/**
 * Which protocol a transaction may use. 'auto' (default) gives the strongest guarantee the
 * participants allow: 2PC when all written participants can prepare, 2PC plus one
 * commit-marked last resource when exactly one cannot, a compensating saga otherwise. '2pc'
 * fails fast (TXC_TWO_PHASE_UNSUPPORTED) when a participant cannot prepare; 'saga' always
 * requires compensations on participants that cannot prepare.
 */
export type TransactionModeOption = 'auto' | '2pc' | 'saga';

/** Per-transaction options. */
export interface TransactionOptions {
  /** Stored with the commit record for audit (user id, request id...). */
  readonly meta?: Readonly<Record<string, string | number | boolean | null>>;
  /** Overrides the coordinator's prepare timeout. */
  readonly prepareTimeoutMs?: number;
  readonly mode?: TransactionModeOption;
  /** Overrides the coordinator's `decisionIn`; false keeps the decision in the log. */
  readonly decisionIn?: string | false;
}

/** A statement that undoes one statement on a participant that cannot prepare (saga mode). */
export interface Compensation {
  readonly sql: string;
  readonly params?: readonly unknown[];
}

/** Options of one `tx.query`. */
export interface QueryOptions {
  /**
   * Required in saga mode on a participant that cannot prepare; compensations run in reverse
   * order if the transaction must be undone. `false` declares a statement that needs no undo (a read).
   */
  readonly compensate?: Compensation | false;
}

/** The handle a transaction callback receives. */
export interface Tx {
  /** Global transaction id. */
  readonly id: string;
  /** Runs a statement on a participant; the participant joins on its first query. Placeholders are the driver's ($1 / ? / @p1). */
  query(participant: string, sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult>;
}

/** How a transaction was committed. */
export type CommitMode =
  /** Nothing was written anywhere: no commit work at all. */
  | 'read-only'
  /** Exactly one participant wrote: a plain local commit, no log write. */
  | 'one-phase'
  /** Two or more wrote: two-phase commit with a forced decision record. */
  | '2pc'
  /** 2PC with one participant committed in one phase with a marker row as the commit point. */
  | 'last-resource'
  /** Participants that cannot prepare committed locally, with compensations logged to undo them. */
  | 'saga';

/** What `coord.transaction` resolves to. */
export interface TransactionResult<T> {
  readonly id: string;
  readonly outcome: 'committed';
  readonly mode: CommitMode;
  /** atomic: all or nothing, isolated until commit; compensating: undone by compensation on failure, not isolated. */
  readonly guarantee: 'atomic' | 'compensating';
  /** Where the commit decision was kept: 'log', or the participant holding the marker. */
  readonly decisionIn?: string;
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
  /**
   * What the log says: commit (a commit record exists), rollback (presumed abort), marker (no
   * record; the commit marker in `markerIn` decides: its absence means rollback), or unknown
   * (another coordinator's).
   */
  readonly decision: 'commit' | 'rollback' | 'marker' | 'unknown';
  /** Participants whose commit marker may decide this branch (decision 'marker'). */
  readonly markerIn?: readonly string[];
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

/** Sagas a recovery pass found unfinished and drove on. */
export interface SagaRecoveryReport {
  readonly resumed: number;
  readonly committed: number;
  readonly compensated: number;
  readonly failed: number;
  /** Sagas still unfinished after the pass (a participant still failing, or no definition registered). */
  readonly remaining: readonly { readonly id: string; readonly reason: string }[];
}

/** What one recovery pass did. */
export interface RecoveryReport {
  readonly sagas: SagaRecoveryReport;
  /** Commit markers garbage-collected. */
  readonly markersRemoved: number;
  /** Saga barrier rows garbage-collected (see `barrierRetentionMs`). */
  readonly barrierRowsRemoved: number;
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
  /** How long the pass waits for resumed sagas before reporting them as remaining (they go on in the background). Default 30 000 ms. */
  readonly sagaWaitMs?: number;
}

/** Options of a client-driven transaction. */
export interface ExternalBeginOptions {
  readonly participants?: readonly string[];
  /** Past this an undecided transaction is aborted. Default 60 000 ms. */
  readonly timeoutMs?: number;
  readonly meta?: Readonly<Record<string, string | number | boolean | null>>;
}

/**
 * Client-driven two-phase commit (the HTTP service's /v1/transactions): the application runs
 * each branch on its own connection with the xid given here, prepares it, and releases that
 * connection; `commit` then forces the decision and commits every branch on the coordinator's
 * own connections. Recovery leaves an active one alone until it is decided or past its deadline.
 */
export interface ExternalTransactions {
  begin(options?: ExternalBeginOptions): Promise<TransactionView>;
  /** Registers one more participant; throws TXC_TRANSACTION_CLOSED once it is no longer active. */
  addBranch(id: string, participant: string): Promise<WireBranch>;
  /** Every branch must be prepared: if one is not, everything is rolled back (TXC_PREPARE_FAILED). */
  commit(id: string): Promise<CommitAnswer>;
  abort(id: string, reason?: string): Promise<AbortAnswer>;
  /**
   * The transaction, while this process remembers it (active, or recently decided); throws
   * TXC_WRONG_INSTANCE for one another coordinator instance began (as commit and abort do).
   */
  get(id: string): TransactionView | undefined;
}

/** The embedded coordinator. */
export interface Coordinator {
  readonly id: string;
  /** Runs `fn` as one transaction across every participant it queries, with the strongest guarantee they allow. */
  transaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<TransactionResult<T>>;
  /** Runs a saga given as data; resolves with its final state (committed, compensated or failed). */
  saga(definition: SagaDefinition, options?: SagaRunOptions): Promise<SagaResult>;
  /** Registers a saga of handler functions under `name` (every process that may resume it must register it). */
  defineSaga<I extends JsonValue = JsonValue>(name: string, steps: readonly SagaHandlerStep<I>[]): void;
  /** Runs the saga registered under `name` with `input`. */
  runSaga<I extends JsonValue = JsonValue>(name: string, input: I, options?: SagaRunOptions): Promise<SagaResult>;
  /**
   * Starts a data saga and resolves as soon as its first record is durable (the HTTP service
   * answers 202 then). With `options.idempotencyKey` seen before, returns that saga (`existing`).
   */
  submitSaga(definition: SagaDefinition, options?: SagaRunOptions): Promise<{ id: string; existing: boolean; result: Promise<SagaResult> }>;
  /** A saga's state: running (from the log), or its final state while remembered. */
  sagaStatus(id: string): Promise<SagaView | undefined>;
  /** Client-driven two-phase commit. */
  readonly external: ExternalTransactions;
  /**
   * Resolves an in-doubt branch by hand (`xid` = `<gtrid>.<bqual>`, or a gtrid for all its
   * branches). Refused (TXC_RESOLVE_REFUSED) when it contradicts the log unless `force`; always
   * recorded as a heuristic decision.
   */
  resolve(xid: string, outcome: 'commit' | 'rollback', options?: { force?: boolean }): Promise<ResolveAnswer>;
  /** Resolves every in-doubt branch this coordinator owns (commit where the log says so, else roll back). */
  recover(options?: RecoverOptions): Promise<RecoveryReport>;
  /** Counters since start: commits by mode, rollbacks, heuristic outcomes, retries, recovery. */
  stats(): CoordinatorStats;
  /**
   * Lists prepared branches in every participant (all coordinators' txcoord branches). Throws
   * TXC_SCAN_INCOMPLETE, naming them, when some participant could not be listed, since a partial
   * list reads as "nothing else is in doubt"; `allowPartial` returns what could be listed instead
   * (the failures are logged).
   */
  inDoubt(options?: { readonly allowPartial?: boolean }): Promise<InDoubtBranch[]>;
  /** Waits for in-flight transactions and phase-two retries (up to `timeoutMs`), then closes pools and the log. */
  close(options?: { timeoutMs?: number }): Promise<void>;
}
