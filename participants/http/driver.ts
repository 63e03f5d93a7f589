/**
 * The slice of WHATWG `fetch` this adapter uses. Typing only this slice lets unit tests inject a
 * small recording fake; Node's global `fetch` satisfies it as is.
 */

/** What the participant passes to `fetch` for one attempt. */
export interface HttpRequestInit {
  readonly method: 'POST';
  /** Lower-case names, one value each (merging is done before, so fetch never joins two values). */
  readonly headers: Record<string, string>;
  /** The JSON text; absent when the step has no body. */
  readonly body?: string;
  /** Aborted by the per-attempt timeout, the caller's signal, or `close()`. */
  readonly signal: AbortSignal;
  /**
   * Always 'manual': fetch would follow a 301/302 by re-sending a POST as a GET, so a redirect
   * is reported as a misconfigured base URL instead of silently changing the request.
   */
  readonly redirect: 'manual';
}

/** The parts of a fetch `Response` the participant reads. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  /** Reads the whole body; rejects when the signal aborts or the connection breaks mid-body. */
  text(): Promise<string>;
}

/**
 * A fetch-like function. It rejects with the signal's reason when aborted, and with a TypeError
 * whose `cause` carries a Node or undici `code` (ECONNREFUSED, UND_ERR_SOCKET…) when the network
 * fails, as Node's fetch does.
 */
export type HttpFetch = (url: string, init: HttpRequestInit) => Promise<HttpResponse>;
