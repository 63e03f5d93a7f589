import { setTimeout as sleep } from 'node:timers/promises';
import { TxcError } from '../coordinator/errors.js';
import { classifyFetchError } from '../participants/http/errors.js';
import type { ClientSettings } from './client-settings.js';
import { errorFromAnswer } from './error-from-answer.js';
import type { FetchLikeInit, FetchLikeResponse } from './fetch-like.js';

/** One call to the server, as the client methods describe it. */
export interface CallSpec {
  readonly method: 'GET' | 'POST';
  /** The route with its path segments already encoded, e.g. `/v1/sagas/txc1.a.0190…`. */
  readonly route: string;
  /** Sent as JSON; POSTs without one send `{}` (a JSON content type with an empty body is a 400 on most servers). */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Whether the call may be repeated after a retryable failure. */
  readonly retry: boolean;
  /** What the answer is: JSON (the default) or text (metrics). */
  readonly accept?: 'json' | 'text';
  /** Non-2xx statuses whose body is an answer, not an error (GET /readyz answers 503 with a ReadyAnswer). */
  readonly answerStatuses?: readonly number[];
}

/** An answer the client methods read. */
export interface Answer {
  readonly status: number;
  readonly text: string;
}

const MAX_DELAY_MS = 5_000;
const MAX_RETRY_AFTER_MS = 30_000;

/**
 * Sends calls to the txcoord server: auth header, per-attempt timeout, error mapping and, for
 * calls marked safe, retries with backoff. Every failure is a TxcError; `details.httpStatus` is
 * set exactly when the server (or a proxy) answered.
 */
export class HttpTransport {
  // Told apart from other aborts by identity: fetch rejects with the reason it was aborted with.
  private readonly timedOut = new Error('txcoord client: attempt timed out');

  constructor(private readonly settings: ClientSettings) {}

  /** Sends the call (retrying when `spec.retry` allows) and returns a 2xx or allowed answer. */
  async call(spec: CallSpec): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(spec, attempt);
      } catch (err) {
        if (!spec.retry || attempt >= this.settings.retries || !TxcError.is(err) || !err.retryable) throw err;
        await sleep(this.delay(attempt, err));
      }
    }
  }

  /** As {@link call}, with the body parsed as JSON. */
  async json(spec: CallSpec): Promise<{ readonly status: number; readonly body: unknown }> {
    const answer = await this.call(spec);
    try {
      return { status: answer.status, body: JSON.parse(answer.text) as unknown };
    } catch (err) {
      throw new TxcError(
        'TXC_PARTICIPANT_UNAVAILABLE',
        `The txcoord server answered HTTP ${answer.status} to ${spec.method} ${spec.route} with a body that is not JSON`,
        { cause: err, details: { httpStatus: answer.status } },
      );
    }
  }

  /** One attempt; `attempt` counts from 0, and errors of a repeat say `details.attempts`. */
  private async once(spec: CallSpec, attempt: number): Promise<Answer> {
    const { method, route } = spec;
    // Tells a caller that an earlier attempt may have acted even when this one was refused.
    const attempts = attempt > 0 ? { attempts: attempt + 1 } : {};
    const headers: Record<string, string> = {
      ...spec.headers,
      accept: spec.accept === 'text' ? 'text/plain' : 'application/json',
      authorization: `Bearer ${this.settings.token}`,
    };
    let body: string | undefined;
    if (method === 'POST') {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(spec.body ?? {});
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(this.timedOut), this.settings.timeoutMs);
    const init: FetchLikeInit = { method, headers, signal: controller.signal, redirect: 'manual', ...(body === undefined ? {} : { body }) };
    try {
      let res: FetchLikeResponse;
      let text: string;
      try {
        res = await this.settings.fetch(`${this.settings.baseUrl}${route}`, init);
        // Read under the same timer: a server that sends headers and then stalls is as good as down.
        text = await res.text();
      } catch (err) {
        throw this.noAnswer(err, spec, controller.signal, attempts);
      }
      const { status } = res;
      if ((status >= 200 && status <= 299) || spec.answerStatuses?.includes(status)) return { status, text };
      if (status >= 300 && status <= 399) {
        const location = res.headers.get('location');
        throw new TxcError(
          'TXC_CONFIG_INVALID',
          `The txcoord server answered ${method} ${route} with a redirect (HTTP ${status}${location ? ` to ${location}` : ''}): set baseUrl to the address it redirects to`,
          { details: { httpStatus: status, ...attempts } },
        );
      }
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      throw errorFromAnswer(status, text, { method, route, ...attempts, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The error for a call that got no (complete) answer: the server may or may not have acted on it. */
  private noAnswer(err: unknown, spec: CallSpec, signal: AbortSignal, attempts: { attempts?: number }): TxcError {
    const at = `${spec.method} ${spec.route}`;
    if (signal.aborted && signal.reason === this.timedOut) {
      return new TxcError(
        'TXC_PARTICIPANT_UNAVAILABLE',
        `The txcoord server at ${this.settings.baseUrl} did not answer ${at} within ${this.settings.timeoutMs} ms`,
        { cause: err, retryable: true, details: { timeoutMs: this.settings.timeoutMs, ...attempts } },
      );
    }
    const c = classifyFetchError(err);
    if (c.kind === 'request') {
      return new TxcError('TXC_BAD_REQUEST', `${at} could not be sent to the txcoord server`, { cause: err, details: attempts });
    }
    return new TxcError(
      'TXC_PARTICIPANT_UNAVAILABLE',
      `The txcoord server at ${this.settings.baseUrl} could not be reached for ${at}${c.code ? ` (${c.code})` : ''}`,
      { cause: err, retryable: true, details: { ...(c.code ? { code: c.code } : {}), ...attempts } },
    );
  }

  /** Exponential backoff with jitter (so clients that failed together do not retry together), or Retry-After. */
  private delay(attempt: number, err: TxcError): number {
    const full = Math.min(MAX_DELAY_MS, this.settings.retryDelayMs * 2 ** attempt);
    const backoff = full / 2 + Math.random() * (full / 2);
    const retryAfter = err.details['retryAfterMs'];
    return typeof retryAfter === 'number' ? Math.max(backoff, Math.min(retryAfter, MAX_RETRY_AFTER_MS)) : backoff;
  }
}

/** Retry-After in delta-seconds (the form servers send with 503/429); HTTP dates are ignored. */
function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || !/^\s*\d+\s*$/.test(value)) return undefined;
  return Number(value.trim()) * 1000;
}
