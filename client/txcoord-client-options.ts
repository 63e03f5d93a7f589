import type { FetchLike } from './fetch-like.js';

/** Options of {@link TxcoordClient}. */
export interface TxcoordClientOptions {
  /** The server's base URL, e.g. `http://txcoord:8080` (a path prefix is kept; no credentials, query or fragment). */
  readonly baseUrl: string;
  /** A token from the server config `api.tokens`, sent as `Authorization: Bearer <token>`. */
  readonly token: string;
  /** Per attempt, including reading the answer. Default 30 000 ms. */
  readonly timeoutMs?: number;
  /** Node's global `fetch` by default. */
  readonly fetch?: FetchLike;
  /**
   * Extra attempts for calls that are safe to repeat (GETs; POST /v1/sagas with an idempotency
   * key; commit and abort only when asked), after a network failure, a timeout or HTTP
   * 429/502/503/504. Default 2.
   */
  readonly retries?: number;
  /** Delay before the first retry; it doubles each time (with jitter) up to 5 s. Default 200 ms. */
  readonly retryDelayMs?: number;
}

/** Options of `submitSaga`. */
export interface SubmitSagaOptions {
  /**
   * Sent as `Idempotency-Key`: a repeat with the same key returns the first saga (`existing`),
   * which is also what makes the call safe to retry automatically. Printable ASCII, no
   * surrounding spaces.
   */
  readonly idempotencyKey?: string;
}

/** Options of `waitForSaga`. */
export interface WaitForSagaOptions {
  /** How long to wait for the saga to leave `running`. Default 60 000 ms. */
  readonly timeoutMs?: number;
  /** Delay between two reads of the saga. Default 500 ms. */
  readonly pollMs?: number;
}

/** Options of `commit` and `abort`. */
export interface DecisionCallOptions {
  /**
   * Repeat the call (same id) after a network failure, a timeout or HTTP 502/503/504. Safe
   * because the server answers a repeat from the transaction's state: a repeated commit of a
   * committing/committed transaction answers 200 again, of an aborted one 409
   * TXC_TRANSACTION_CLOSED; a repeated abort of an aborted one answers 200. Default false.
   */
  readonly retry?: boolean;
}
