/**
 * The slice of WHATWG `fetch` the client uses. Node's global `fetch` satisfies it as is; typing
 * only this slice lets tests (and applications with their own agents or tracing) inject another.
 */

/** What the client passes to `fetch` for one attempt. */
export interface FetchLikeInit {
  readonly method: 'GET' | 'POST';
  /** Lower-case names, one value each. */
  readonly headers: Record<string, string>;
  /** JSON text; absent on GET. */
  readonly body?: string;
  /** Aborted by the per-attempt timeout. */
  readonly signal: AbortSignal;
  /**
   * Always 'manual': fetch would follow a 301/302/303 on a POST by re-sending it as a GET, so a
   * redirect is reported as a misconfigured base URL instead of silently changing the call.
   */
  readonly redirect: 'manual';
}

/** The parts of a fetch `Response` the client reads. */
export interface FetchLikeResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  /** Reads the whole body; rejects when the signal aborts or the connection breaks mid-body. */
  text(): Promise<string>;
}

/**
 * A fetch-like function: rejects with the signal's reason when aborted, and with a TypeError
 * whose `cause` carries a Node or undici `code` (ECONNREFUSED, UND_ERR_SOCKET…) when the network
 * fails, as Node's fetch does.
 */
export type FetchLike = (url: string, init: FetchLikeInit) => Promise<FetchLikeResponse>;
