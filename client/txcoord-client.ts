import { TxcError } from '../coordinator/errors.js';
import { assertParticipantName, coordinatorOf, fromPgGid } from '../coordinator/xid.js';
import { resolveClientSettings } from './client-settings.js';
import { errorFromAnswer } from './error-from-answer.js';
import { HttpTransport } from './http-transport.js';
import { runTransaction, type RunTransactionOptions, type RunTransactionResult, type TransactionScope } from './run-transaction.js';
import type { DecisionCallOptions, SubmitSagaOptions, TxcoordClientOptions, WaitForSagaOptions } from './txcoord-client-options.js';
import type {
  AbortAnswer,
  BeginTransactionRequest,
  CommitAnswer,
  ExecuteAnswer,
  ExecuteRequest,
  InDoubtAnswer,
  ReadyAnswer,
  ResolveAnswer,
  ResolveRequest,
  SagaView,
  SubmitSagaAnswer,
  SubmitSagaRequest,
  TransactionView,
  WireBranch,
} from './wire-types.js';

// Visible ASCII with no leading or trailing space: fetch trims header values, which would
// silently change the key the server stores.
const IDEMPOTENCY_KEY = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
const DEFAULT_WAIT_MS = 60_000;
const DEFAULT_POLL_MS = 500;

/**
 * Client of the txcoord HTTP service (`txcoord serve`). Every failure is a TxcError: a non-2xx
 * answer carries the server's code, message and details (plus `details.httpStatus`); no answer
 * at all (network, timeout) is TXC_PARTICIPANT_UNAVAILABLE, retryable, with the cause. Only
 * calls that are safe to repeat are retried: GETs, `submitSaga` with an idempotency key, and
 * `commit` / `abort` when asked to.
 */
export class TxcoordClient {
  private readonly http: HttpTransport;

  constructor(options: TxcoordClientOptions) {
    this.http = new HttpTransport(resolveClientSettings(options));
  }

  /**
   * POST /v1/sagas: starts a saga and resolves once the server has logged it (202). Without an
   * idempotency key a failed call is not repeated: it may have started the saga.
   */
  async submitSaga(request: SubmitSagaRequest, options: SubmitSagaOptions = {}): Promise<SubmitSagaAnswer> {
    const key = options.idempotencyKey;
    if (key !== undefined && (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key))) {
      throw new TxcError('TXC_BAD_REQUEST', 'The idempotency key must be non-empty printable ASCII without surrounding spaces', {
        details: { field: 'idempotencyKey' },
      });
    }
    return this.post<SubmitSagaAnswer>('/v1/sagas', request, {
      retry: key !== undefined,
      ...(key === undefined ? {} : { headers: { 'idempotency-key': key } }),
    });
  }

  /** GET /v1/sagas/:id. */
  async getSaga(id: string): Promise<SagaView> {
    return this.get<SagaView>(`/v1/sagas/${segment(id, 'Saga id')}`);
  }

  /**
   * Reads the saga every `pollMs` until it is no longer running. Resolves with the final view,
   * or, once `timeoutMs` has passed, with the last one, still `running` (the saga goes on).
   */
  async waitForSaga(id: string, options: WaitForSagaOptions = {}): Promise<SagaView> {
    const timeoutMs = positive(options.timeoutMs ?? DEFAULT_WAIT_MS, 'timeoutMs');
    const pollMs = positive(options.pollMs ?? DEFAULT_POLL_MS, 'pollMs');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const view = await this.getSaga(id);
      const left = deadline - Date.now();
      if (view.status !== 'running' || left <= 0) return view;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, left)));
    }
  }

  /** POST /v1/transactions: a client-driven transaction, with a branch per listed participant. Not repeated on failure. */
  async beginTransaction(request: BeginTransactionRequest = {}): Promise<TransactionView> {
    for (const p of request.participants ?? []) assertParticipantName(p);
    return this.post<TransactionView>('/v1/transactions', request, { retry: false });
  }

  /** POST /v1/transactions/:id/branches: registers one more participant and returns its branch. */
  async addBranch(id: string, participant: string): Promise<WireBranch> {
    assertParticipantName(participant);
    return this.post<WireBranch>(`/v1/transactions/${segment(id, 'Transaction id')}/branches`, { participant }, { retry: false });
  }

  /**
   * POST /v1/transactions/:id/commit. Every branch must be prepared: if one is not, the server
   * rolls everything back and answers 409 TXC_PREPARE_FAILED. The server answers a repeat from
   * the state: 200 again once committing or committed (so `retry: true` is safe), 409
   * TXC_TRANSACTION_CLOSED once aborted. After a failure without an HTTP status
   * (`details.httpStatus` absent) or with a 5xx, the commit may have been decided:
   * `getTransaction(id)` tells (`runTransaction` does this for you).
   */
  async commit(id: string, options: DecisionCallOptions = {}): Promise<CommitAnswer> {
    return this.post<CommitAnswer>(`/v1/transactions/${segment(id, 'Transaction id')}/commit`, {}, { retry: options.retry === true });
  }

  /**
   * POST /v1/transactions/:id/abort: rolls back every branch, prepared or not. A repeat of an
   * aborted transaction answers 200 again; a committing or committed one 409 TXC_TRANSACTION_CLOSED.
   */
  async abort(id: string, options: DecisionCallOptions = {}): Promise<AbortAnswer> {
    return this.post<AbortAnswer>(`/v1/transactions/${segment(id, 'Transaction id')}/abort`, {}, { retry: options.retry === true });
  }

  /** GET /v1/transactions/:id: while the server remembers it (active, or decided in the last minutes). */
  async getTransaction(id: string): Promise<TransactionView> {
    return this.get<TransactionView>(`/v1/transactions/${segment(id, 'Transaction id')}`);
  }

  /**
   * POST /v1/transactions/execute: named statements from the server's config, run as one
   * transaction. Not repeated on failure; after one without an answer it may have committed.
   */
  async execute(request: ExecuteRequest): Promise<ExecuteAnswer> {
    return this.post<ExecuteAnswer>('/v1/transactions/execute', request, { retry: false });
  }

  /** GET /v1/in-doubt: prepared branches in every participant (admin token). */
  async inDoubt(): Promise<InDoubtAnswer> {
    return this.get<InDoubtAnswer>('/v1/in-doubt');
  }

  /**
   * POST /v1/in-doubt/:xid/resolve (`<gtrid>.<bqual>`, or a gtrid for all its branches; admin
   * token). Refused with TXC_RESOLVE_REFUSED when it contradicts the log unless `force`.
   */
  async resolve(xid: string, request: ResolveRequest): Promise<ResolveAnswer> {
    if (typeof xid !== 'string' || (fromPgGid(xid) === undefined && coordinatorOf(xid) === undefined)) {
      throw new TxcError('TXC_ID_INVALID', `${JSON.stringify(xid)} is neither a txcoord xid (<gtrid>.<bqual>) nor a gtrid`);
    }
    return this.post<ResolveAnswer>(`/v1/in-doubt/${encodeURIComponent(xid)}/resolve`, request, { retry: false });
  }

  /** GET /healthz: resolves when the server process answers 2xx. */
  async health(): Promise<void> {
    await this.http.call({ method: 'GET', route: '/healthz', retry: true });
  }

  /** GET /readyz: `ok` false (a 503 answer) lists the failing checks; it is an answer, not an error. */
  async ready(): Promise<ReadyAnswer> {
    const route = '/readyz';
    const answer = await this.http.call({ method: 'GET', route, retry: true, answerStatuses: [503] });
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      body = undefined;
    }
    if (isReadyAnswer(body)) return body;
    // A 503 that is not a ReadyAnswer is a failure like any other (a proxy, a server starting up).
    if (answer.status !== 200) throw errorFromAnswer(answer.status, answer.text, { method: 'GET', route });
    throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `The txcoord server answered GET ${route} with a body that is not a ReadyAnswer`, {
      details: { httpStatus: answer.status },
    });
  }

  /** GET /metrics: the Prometheus text exposition. */
  async metrics(): Promise<string> {
    return (await this.http.call({ method: 'GET', route: '/metrics', retry: true, accept: 'text' })).text;
  }

  /**
   * The whole client-driven transaction in one call: begins it with `participants`, runs `fn`
   * (which attaches a connection per participant with `tx.pg`, `tx.mysql` or `tx.attach` and
   * does its work), prepares every attached branch, and commits. Any failure rolls back and
   * aborts, then rethrows. See {@link runTransaction} in run-transaction.ts.
   *
   * @example
   * const { value } = await client.runTransaction(['erp', 'crm'], async (tx) => {
   *   const erp = await tx.pg('erp', pgClient);
   *   await erp.query('update stock set qty = qty - 1 where sku = $1', ['A']);
   *   const crm = await tx.mysql('crm', await mysqlPool.getConnection());
   *   await crm.query('insert into orders (sku) values (?)', ['A']);
   *   return 'ok';
   * });
   */
  async runTransaction<T>(participants: readonly string[], fn: (tx: TransactionScope) => Promise<T>, options?: RunTransactionOptions): Promise<RunTransactionResult<T>> {
    return runTransaction(this, participants, fn, options);
  }

  private async get<T>(route: string): Promise<T> {
    return (await this.http.json({ method: 'GET', route, retry: true })).body as T;
  }

  private async post<T>(route: string, body: unknown, spec: { retry: boolean; headers?: Readonly<Record<string, string>> }): Promise<T> {
    return (await this.http.json({ method: 'POST', route, body, ...spec })).body as T;
  }
}

/**
 * An id as a path segment. Every id the server hands out is a txcoord gtrid; checking that
 * keeps `..` and friends out of the URL, where they would address another route.
 */
function segment(id: string, what: string): string {
  if (typeof id !== 'string' || coordinatorOf(id) === undefined) throw new TxcError('TXC_ID_INVALID', `${what} ${JSON.stringify(id)} is not a txcoord id`);
  return encodeURIComponent(id);
}

function positive(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TxcError('TXC_BAD_REQUEST', `${name} must be a positive number of milliseconds, not ${String(value)}`, { details: { field: name } });
  }
  return value;
}

function isReadyAnswer(body: unknown): body is ReadyAnswer {
  return typeof body === 'object' && body !== null && typeof (body as ReadyAnswer).ok === 'boolean' && typeof (body as ReadyAnswer).checks === 'object';
}
