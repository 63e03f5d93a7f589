import type { Logger } from 'pino';
import { TxcError, type TxcErrorDetails } from '../../coordinator/errors.js';
import { redactUrl } from '../../coordinator/logger.js';
import type { Xid } from '../../coordinator/xid.js';
import type { HttpParticipantConfig } from '../participant-config.js';
import type { Branch, Capabilities, InvokeRequest, InvokeResult, Participant, ResolveResult } from '../participant.js';
import type { HttpFetch, HttpResponse } from './driver.js';
import { classifyFetchError, classifyHttpStatus } from './errors.js';
import { isTimeout, resolveHttpSettings, type HttpSettings } from './settings.js';

/** What the participant needs besides its configuration. */
export interface HttpParticipantOptions {
  /** Node's global `fetch` in production; a fake in unit tests. */
  readonly fetch: HttpFetch;
  readonly logger: Logger;
}

/** How much of a refusing answer's body goes into the error message. */
export const BODY_EXCERPT_CHARS = 500;

// Abort reasons of an attempt's own controller, told apart by identity (fetch rejects with the
// reason it was aborted with).
const TIMED_OUT = new Error('txcoord: HTTP attempt timed out');
const CLOSED = new Error('txcoord: HTTP participant closed');

// Visible ASCII with no leading or trailing space: fetch trims header values, which would
// silently change the key the service stores.
const IDEMPOTENCY_KEY = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * A service reached over HTTP that takes part in sagas only: it can neither prepare nor roll
 * back, so each step is one idempotent POST and its undo is another (compensation only).
 * One `invoke` is one attempt; the saga runner retries with backoff and the same key.
 */
export class HttpParticipant implements Participant {
  readonly driver = 'http';
  readonly capabilities: Capabilities = { twoPhase: false, localTransactions: false };
  private readonly inFlight = new Set<AbortController>();
  private resolved: HttpSettings | TxcError | undefined;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly config: HttpParticipantConfig,
    private readonly options: HttpParticipantOptions,
  ) {}

  /**
   * Checks the configuration only. The service is deliberately not called: one being down must
   * not stop the coordinator, and a saga step retries it anyway.
   */
  async preflight(): Promise<void> {
    this.settings();
  }

  /** Always rejects: an HTTP service has no transactions to join. */
  async begin(_xid: Xid): Promise<Branch> {
    throw this.unsupported('begin');
  }

  /** Nothing is ever prepared here. */
  async listInDoubt(): Promise<Xid[]> {
    return [];
  }

  /** Always rejects: nothing is ever prepared here. */
  async commitPrepared(_xid: Xid): Promise<ResolveResult> {
    throw this.unsupported('commitPrepared');
  }

  /** Always rejects: nothing is ever prepared here. */
  async rollbackPrepared(_xid: Xid): Promise<ResolveResult> {
    throw this.unsupported('rollbackPrepared');
  }

  /** Aborts every request in flight; later calls reject with TXC_PARTICIPANT_UNAVAILABLE (not retryable). */
  async close(): Promise<void> {
    this.closed = true;
    for (const attempt of this.inFlight) attempt.abort(CLOSED);
    this.inFlight.clear();
  }

  /**
   * One POST of `request.body` as JSON to the base URL + `request.path`, with the idempotency
   * key. Resolves on 2xx. Rejects with TXC_STEP_REJECTED on 409/422, TXC_STEP_MISCONFIGURED on
   * other 3xx/4xx or a request that cannot be sent, TXC_PARTICIPANT_UNAVAILABLE (retryable) on
   * 5xx/429/408, network failures and the timeout, and with the signal's reason when the
   * caller's signal aborts. An invalid configuration (which preflight reports as
   * TXC_CONFIG_INVALID) is TXC_STEP_MISCONFIGURED here, with that error as `cause`.
   */
  async invoke(request: InvokeRequest): Promise<InvokeResult> {
    const caller = request.signal;
    caller?.throwIfAborted();
    if (this.closed) throw this.closedError();
    let settings: HttpSettings;
    try {
      settings = this.settings();
    } catch (err) {
      // preflight stops the coordinator on this first; a step still gets a code from the invoke
      // contract, with the configuration error as its cause.
      throw new TxcError('TXC_STEP_MISCONFIGURED', `Participant ${this.name} has an invalid configuration`, {
        cause: err,
        details: { participant: this.name },
      });
    }
    const { url, route, init, timeoutMs } = this.buildRequest(request, settings);
    const at = `POST ${settings.safeBaseUrl}${route}`;

    const attempt = new AbortController();
    // Linked by hand rather than with AbortSignal.any: a saga's signal lives across many
    // attempts, and any() keeps a record on it per call (nodejs/node#55351).
    const onCallerAbort = () => attempt.abort(caller?.reason);
    caller?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = setTimeout(() => attempt.abort(TIMED_OUT), timeoutMs);
    this.inFlight.add(attempt);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);

    // Turns a rejection from fetch or from reading the body into the error invoke rejects with.
    const failure = (err: unknown): unknown => {
      if (caller?.aborted) return caller.reason;
      const details = { participant: this.name, path: route };
      if (attempt.signal.aborted && attempt.signal.reason === TIMED_OUT) {
        this.options.logger.debug({ participant: this.name, path: route, ms: elapsed(), timeoutMs }, 'HTTP step timed out');
        return new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name} did not answer ${at} within ${timeoutMs} ms`, {
          cause: err,
          retryable: true,
          details: { ...details, timeoutMs },
        });
      }
      if (attempt.signal.aborted && attempt.signal.reason === CLOSED) return this.closedError();
      const c = classifyFetchError(err);
      this.options.logger.debug({ participant: this.name, path: route, ms: elapsed(), code: c.code }, 'HTTP step got no answer');
      if (c.kind === 'request') {
        return new TxcError('TXC_STEP_MISCONFIGURED', `Participant ${this.name}: ${at} could not be sent`, { cause: err, details });
      }
      // Retryable whatever the code (even TLS or DNS): no answer says nothing about what the
      // service did, the key makes a retry safe, and a compensation must not be given up on
      // for a fault an operator can fix.
      return new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name} could not be reached for ${at}${c.code ? ` (${c.code})` : ''}`, {
        cause: err,
        retryable: true,
        details: { ...details, code: c.code },
      });
    };

    try {
      let res: HttpResponse;
      try {
        res = await this.options.fetch(url, { ...init, signal: attempt.signal });
      } catch (err) {
        throw failure(err);
      }
      const kind = classifyHttpStatus(res.status);
      let text: string;
      try {
        text = await res.text();
      } catch (err) {
        // A 2xx whose body was lost: the service acted but the answer is gone, so this is the
        // "possibly completed" case a retry with the same key settles.
        if (kind === 'ok' || caller?.aborted) throw failure(err);
        text = '';
      }
      this.options.logger.debug({ participant: this.name, path: route, status: res.status, ms: elapsed() }, 'HTTP step answered');
      if (kind === 'ok') return { status: res.status, body: parseBody(text, res.headers.get('content-type')) };

      const details: TxcErrorDetails = { participant: this.name, status: res.status, path: route };
      const said = `answered HTTP ${res.status} to ${at}${text ? `: ${excerpt(text)}` : ''}`;
      if (kind === 'rejected') throw new TxcError('TXC_STEP_REJECTED', `Participant ${this.name} ${said}`, { details });
      if (kind === 'misconfigured') throw new TxcError('TXC_STEP_MISCONFIGURED', `Participant ${this.name} ${said}`, { details });
      throw new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name} ${said}`, { details, retryable: true });
    } finally {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onCallerAbort);
      this.inFlight.delete(attempt);
    }
  }

  /** The checked configuration; the same TXC_CONFIG_INVALID every time when it is wrong. */
  private settings(): HttpSettings {
    if (this.resolved === undefined) {
      try {
        this.resolved = resolveHttpSettings(this.name, this.config);
      } catch (err) {
        if (!TxcError.is(err)) throw err;
        this.resolved = err;
      }
    }
    if (this.resolved instanceof Error) throw this.resolved;
    return this.resolved;
  }

  private buildRequest(request: InvokeRequest, settings: HttpSettings) {
    const misconfigured = (fact: string) =>
      new TxcError('TXC_STEP_MISCONFIGURED', `Participant ${this.name}: ${fact}`, { details: { participant: this.name } });
    const { path, idempotencyKey } = request;
    // One leading slash exactly, so the join never yields `//` (which some servers route elsewhere).
    if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) {
      throw misconfigured(`the step path ${JSON.stringify(path)} must start with a single '/'`);
    }
    if (/[\s#]/.test(path)) throw misconfigured(`the step path ${JSON.stringify(path)} must not contain spaces, line breaks or '#'`);
    if (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw misconfigured('the idempotency key must be non-empty printable ASCII without surrounding spaces');
    }
    const timeoutMs = request.timeoutMs ?? settings.timeoutMs;
    if (!isTimeout(timeoutMs)) throw misconfigured(`the step timeout ${String(timeoutMs)} is not a positive number of milliseconds`);

    let body: string | undefined;
    if (request.body !== undefined) {
      try {
        body = JSON.stringify(request.body);
      } catch (err) {
        throw new TxcError('TXC_STEP_MISCONFIGURED', `Participant ${this.name}: the body for ${path} cannot be sent as JSON`, {
          cause: err,
          details: { participant: this.name },
        });
      }
      // A bare function or symbol stringifies to undefined.
      if (body === undefined) throw misconfigured(`the body for ${path} cannot be sent as JSON`);
    }

    // Configured headers may choose their own content-type or accept (a vendor JSON type);
    // the idempotency key is always ours (settings refuse it in the configuration).
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      ...settings.headers,
      'idempotency-key': idempotencyKey,
    };
    // The query string is left out of logs and messages: it is where tokens end up when they
    // are not in headers.
    const route = redactUrl(path.split('?')[0] ?? path);
    return {
      url: settings.baseUrl + path,
      route,
      timeoutMs,
      init: { method: 'POST' as const, headers, redirect: 'manual' as const, ...(body === undefined ? {} : { body }) },
    };
  }

  private unsupported(operation: string): TxcError {
    return new TxcError(
      'TXC_UNSUPPORTED',
      `Participant ${this.name} is an HTTP service and cannot ${operation}: it takes part in sagas only (use coord.saga)`,
      { details: { participant: this.name, operation } },
    );
  }

  private closedError(): TxcError {
    return new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `Participant ${this.name} is closed`, { details: { participant: this.name } });
  }
}

/** JSON when the service says so (or says nothing), otherwise the text; null for an empty body. */
function parseBody(text: string, contentType: string | null): unknown {
  if (text === '') return null;
  const media = contentType?.split(';')[0]?.trim().toLowerCase();
  // A text/plain "42" stays a string: only JSON media types (or none given) are parsed.
  if (media && !media.endsWith('/json') && !media.endsWith('+json')) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function excerpt(text: string): string {
  const t = redactUrl(text.trim());
  return t.length > BODY_EXCERPT_CHARS ? `${t.slice(0, BODY_EXCERPT_CHARS)}…` : t;
}
