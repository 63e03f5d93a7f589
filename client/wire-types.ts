/**
 * The HTTP API of `txcoord serve`, as JSON shapes. Shared by the server (api/server/) and the
 * TypeScript client (client/), so the two cannot drift apart. Every error answer is
 * {@link WireError}; every id is a txcoord gtrid.
 */

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Scalar metadata stored with a transaction or saga for audit. */
export type WireMeta = Readonly<Record<string, string | number | boolean | null>>;

/** Every non-2xx answer. `code` is a TXC_* code; `message` says what to do. */
export interface WireError {
  readonly error: { readonly code: string; readonly message: string; readonly details?: Readonly<Record<string, Json>> };
}

/** One branch of a client-driven transaction: the xid the application must use on its own connection. */
export interface WireBranch {
  readonly participant: string;
  /** The participant's driver (`postgres`, `mysql`, `oracle`, ...): it says which form to use. */
  readonly driver: string;
  readonly formatId: number;
  readonly gtrid: string;
  readonly bqual: string;
  /** PostgreSQL / PGlite: the gid for `PREPARE TRANSACTION '<gid>'`. */
  readonly gid?: string;
  /** MySQL / MariaDB: the xid clause for `XA START <xa>` / `XA END <xa>` / `XA PREPARE <xa>`. */
  readonly xa?: string;
}

/** POST /v1/transactions */
export interface BeginTransactionRequest {
  /** Participants to register at once (more can be added with POST .../branches). */
  readonly participants?: readonly string[];
  /** Past this, an undecided transaction is aborted. Default 60 000 ms, at most 3 600 000. */
  readonly timeoutMs?: number;
  readonly meta?: WireMeta;
}

/** State of a client-driven transaction. */
export type ExternalState = 'active' | 'committing' | 'committed' | 'aborted';

/** Answer of POST /v1/transactions and GET /v1/transactions/:id. */
export interface TransactionView {
  readonly id: string;
  readonly state: ExternalState;
  /** ms since epoch. */
  readonly deadlineAt: number;
  readonly branches: readonly WireBranch[];
  /** Why it was aborted, when it was. */
  readonly reason?: string;
}

/** POST /v1/transactions/:id/branches */
export interface AddBranchRequest {
  readonly participant: string;
}

/** Answer of POST /v1/transactions/:id/commit (200). A branch not prepared aborts it: 409 TXC_PREPARE_FAILED. */
export interface CommitAnswer {
  readonly id: string;
  readonly outcome: 'committed';
  /** Some branch is still being committed in the background (the outcome is decided). */
  readonly phaseTwoPending: boolean;
}

/** Answer of POST /v1/transactions/:id/abort. */
export interface AbortAnswer {
  readonly id: string;
  readonly outcome: 'aborted';
}

/** One step of POST /v1/transactions/execute: a named statement from the server's config. */
export interface ExecuteStep {
  readonly participant: string;
  readonly statement: string;
  /** Values of the statement's `:name` parameters. */
  readonly params?: Readonly<Record<string, Json>>;
}

/** POST /v1/transactions/execute */
export interface ExecuteRequest {
  readonly steps: readonly ExecuteStep[];
  readonly mode?: 'auto' | '2pc' | 'saga';
  readonly meta?: WireMeta;
}

/** Answer of POST /v1/transactions/execute. */
export interface ExecuteAnswer {
  readonly id: string;
  readonly outcome: 'committed';
  readonly mode: string;
  readonly guarantee: 'atomic' | 'compensating';
  /** One per step, in order. */
  readonly results: readonly { readonly rowCount: number; readonly rows: readonly Readonly<Record<string, Json>>[] }[];
}

/** A saga step operation over HTTP: a service call, or a named statement on a database participant. */
export type WireSagaOperation =
  | { readonly path: string; readonly body?: Json }
  | { readonly statement: string; readonly params?: Readonly<Record<string, Json>> };

/** One step of POST /v1/sagas. */
export interface WireSagaStep {
  readonly name: string;
  readonly participant: string;
  readonly action: WireSagaOperation;
  /** For a named statement, the statement's configured compensation is used when this is omitted. */
  readonly compensate?: WireSagaOperation;
  readonly after?: readonly string[];
  readonly timeoutMs?: number;
}

/** POST /v1/sagas (an `Idempotency-Key` header makes a repeat return the first saga). */
export interface SubmitSagaRequest {
  readonly steps: readonly WireSagaStep[];
  readonly timeoutMs?: number;
  readonly meta?: WireMeta;
}

/** Answer of POST /v1/sagas (202). `existing` when the Idempotency-Key had been seen. */
export interface SubmitSagaAnswer {
  readonly id: string;
  readonly existing: boolean;
}

/** Answer of GET /v1/sagas/:id. */
export interface SagaView {
  readonly id: string;
  readonly status: 'running' | 'committed' | 'compensated' | 'failed';
  readonly steps: readonly {
    readonly name: string;
    readonly participant?: string;
    readonly action: 'done' | 'failed' | 'unknown' | 'not-run' | 'running';
    readonly compensation: 'not-needed' | 'done' | 'null' | 'failed' | 'pending';
    readonly result?: Json;
    readonly error?: { readonly code: string; readonly message: string };
  }[];
  readonly error?: { readonly code: string; readonly message: string; readonly step?: string };
}

/** One prepared branch, as GET /v1/in-doubt lists it. */
export interface WireInDoubt {
  readonly participant: string;
  readonly gtrid: string;
  readonly bqual: string;
  /** `<gtrid>.<bqual>`: the id POST /v1/in-doubt/:xid/resolve takes. */
  readonly xid: string;
  readonly coordinatorId: string;
  readonly decision: 'commit' | 'rollback' | 'marker' | 'unknown';
  readonly inFlight: boolean;
  readonly ageMs?: number;
}

/** Answer of GET /v1/in-doubt. */
export interface InDoubtAnswer {
  readonly branches: readonly WireInDoubt[];
  readonly failures: readonly { readonly participant: string; readonly code: string; readonly message: string }[];
}

/** POST /v1/in-doubt/:xid/resolve */
export interface ResolveRequest {
  readonly outcome: 'commit' | 'rollback';
  /** Required when the outcome contradicts the decision log. */
  readonly force?: boolean;
}

/** Answer of POST /v1/in-doubt/:xid/resolve. */
export interface ResolveAnswer {
  readonly xid: string;
  readonly outcome: 'commit' | 'rollback';
  /** What the log decided before (a manual resolution is always recorded as a heuristic decision). */
  readonly logDecision: 'commit' | 'rollback' | 'marker' | 'unknown';
  /** Branches the resolution acted on. */
  readonly resolved: number;
}

/** Answer of GET /readyz (200 when ok, else 503). */
export interface ReadyAnswer {
  readonly ok: boolean;
  readonly checks: Readonly<Record<string, 'ok' | string>>;
}
