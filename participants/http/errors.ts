/**
 * What an HTTP answer or a fetch failure means for a saga step, decided by status code and error
 * code only: response bodies and error messages are never parsed.
 */
export type HttpStatusKind =
  /** 2xx: the operation happened. */
  | 'ok'
  /** 409, 422: the service refused it as a business failure; the saga compensates, no retry. */
  | 'rejected'
  /** Any other 3xx/4xx (wrong path, auth, bad body, a redirect): the request can never succeed as sent. */
  | 'misconfigured'
  /** 5xx, 429, 408: the service may do it on a later attempt with the same idempotency key. */
  | 'unavailable';

/** Classifies one HTTP status. */
export function classifyHttpStatus(status: number): HttpStatusKind {
  if (status >= 200 && status <= 299) return 'ok';
  if (status === 409 || status === 422) return 'rejected';
  // 408 is the server giving up on a slow request, not a verdict on the request itself: it is
  // retried like 429 and 5xx.
  if (status === 429 || status === 408 || (status >= 500 && status <= 599)) return 'unavailable';
  // 1xx never reaches fetch's caller; 3xx only because redirects are not followed (see driver.ts).
  return 'misconfigured';
}

/** What a rejected fetch means. */
export type FetchFailureKind =
  /** No answer was received (refused, reset, DNS, TLS, socket timeouts): the service may or may not have acted. */
  | 'network'
  /** fetch refused to build the request (an invalid header, say): nothing was sent, and nothing ever will be. */
  | 'request';

/** The classification of one fetch rejection that was not an abort. */
export interface FetchFailureClass {
  readonly kind: FetchFailureKind;
  /** The Node or undici error code found on the error or its causes (ECONNREFUSED, UND_ERR_SOCKET…). */
  readonly code?: string;
}

/**
 * Classifies an error thrown by fetch (or a fake mimicking it). Node's fetch reports every network
 * failure as `TypeError('fetch failed', { cause })` with the code on the cause (or, for
 * happy-eyeballs connects, on an AggregateError's members); a TypeError with no cause at all
 * comes from validating the request before anything is sent.
 */
export function classifyFetchError(err: unknown): FetchFailureClass {
  const code = findCode(err, 0);
  if (code !== undefined) return { kind: 'network', code };
  if (err instanceof TypeError && err.cause === undefined) return { kind: 'request' };
  return { kind: 'network' };
}

function findCode(err: unknown, depth: number): string | undefined {
  // Cause chains are short; the bound only guards against a cycle.
  if (typeof err !== 'object' || err === null || depth > 5) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const c = findCode(inner, depth + 1);
      if (c !== undefined) return c;
    }
  }
  return findCode((err as { cause?: unknown }).cause, depth + 1);
}
