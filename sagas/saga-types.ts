import type { JsonValue, SagaOperation, SagaStepSpec } from '../log/log-record.js';
import type { QueryResult } from '../participants/participant.js';

export type { JsonValue, SagaOperation, SagaStepSpec };

/** A saga given as data (`coord.saga`). */
export interface SagaDefinition {
  readonly steps: readonly SagaStepSpec[];
  /** Past this many ms from the start, a saga still going forward compensates instead. */
  readonly timeoutMs?: number;
  /** Stored with the saga for audit. */
  readonly meta?: Readonly<Record<string, string | number | boolean | null>>;
}

/** Options of one saga run. */
export interface SagaRunOptions {
  readonly timeoutMs?: number;
  readonly meta?: Readonly<Record<string, string | number | boolean | null>>;
  /** A caller's key; stored with the saga (the HTTP service uses it to return the first saga on a repeat). */
  readonly idempotencyKey?: string;
}

/** What a handler step receives. */
export interface SagaStepContext<I = JsonValue> {
  readonly sagaId: string;
  readonly step: string;
  readonly input: I;
  /** Results of the steps that finished before this one. */
  readonly results: Readonly<Record<string, JsonValue | undefined>>;
  /** Unique per saga, step and operation; the same on every retry. Pass it to services you call. */
  readonly idempotencyKey: string;
  /** Aborted when the step's or saga's deadline passes or the coordinator closes. */
  readonly signal: AbortSignal;
  /**
   * Runs a statement on the step's database participant, in one local transaction with the
   * barrier row, committed when the handler returns: the step's effect happens exactly once.
   * Throws TXC_UNSUPPORTED when the step names no database participant.
   */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult>;
  /** POSTs to the step's HTTP participant with this step's idempotency key. */
  call(path: string, body?: JsonValue): Promise<JsonValue>;
}

/** One step of a saga defined with handler functions (`coord.defineSaga`). */
export interface SagaHandlerStep<I = JsonValue> {
  readonly name: string;
  /** A database participant makes `ctx.query` exactly-once; an HTTP one enables `ctx.call`. */
  readonly participant?: string;
  /** Does the step. A plain throw is a business failure (compensate); a retryable TxcError is retried. */
  action(ctx: SagaStepContext<I>): Promise<JsonValue | void>;
  /** Undoes it; receives the action's result (undefined when the action's fate is unknown). */
  compensate?(ctx: SagaStepContext<I> & { readonly result: JsonValue | undefined }): Promise<void>;
  readonly after?: readonly string[];
  readonly timeoutMs?: number;
}

/** How one step ended. */
export interface SagaStepOutcome {
  readonly name: string;
  readonly participant?: string;
  /** done; failed (refused: nothing to undo); unknown (may have happened); not-run. */
  readonly action: 'done' | 'failed' | 'unknown' | 'not-run';
  /** not-needed; done; null (nothing had happened: a null compensation); failed (heuristic). */
  readonly compensation: 'not-needed' | 'done' | 'null' | 'failed';
  readonly result?: JsonValue;
  readonly error?: { readonly code: string; readonly message: string };
}

/** What a saga resolves to. It resolves (not rejects) when compensated: check `status`. */
export interface SagaResult {
  readonly id: string;
  readonly mode: 'saga';
  /** committed: every step done; compensated: undone after a failure; failed: a compensation can never succeed. */
  readonly status: 'committed' | 'compensated' | 'failed';
  readonly guarantee: 'compensating';
  readonly steps: readonly SagaStepOutcome[];
  /** The failure that made the saga compensate. */
  readonly error?: { readonly code: string; readonly message: string; readonly step?: string };
}
