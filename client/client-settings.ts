import { TxcError } from '../coordinator/errors.js';
import type { FetchLike } from './fetch-like.js';
import type { TxcoordClientOptions } from './txcoord-client-options.js';

/** {@link TxcoordClientOptions} checked, with defaults applied. */
export interface ClientSettings {
  /** The base URL without trailing slashes; routes are appended to it. Holds no credentials, so it may go into messages. */
  readonly baseUrl: string;
  readonly token: string;
  readonly timeoutMs: number;
  readonly fetch: FetchLike;
  readonly retries: number;
  readonly retryDelayMs: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 2;
const DEFAULT_RETRY_DELAY_MS = 200;
const MAX_RETRIES = 10;
// Visible ASCII only: anything else either breaks the header or is silently trimmed by fetch.
const TOKEN = /^[\x21-\x7e]+$/;

/** Checks the client options; TXC_CONFIG_INVALID names the first wrong one. */
export function resolveClientSettings(options: TxcoordClientOptions): ClientSettings {
  const invalid = (fact: string) => new TxcError('TXC_CONFIG_INVALID', `TxcoordClient: ${fact}`);
  if (typeof options !== 'object' || options === null) throw invalid('options are required ({ baseUrl, token })');
  let url: URL;
  try {
    url = new URL(options.baseUrl);
  } catch (err) {
    throw new TxcError('TXC_CONFIG_INVALID', `TxcoordClient: baseUrl ${JSON.stringify(options.baseUrl)} is not a URL`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`baseUrl must be http: or https:, not ${url.protocol}`);
  // fetch refuses URLs with credentials, and a query or fragment would end up in the middle of every route.
  if (url.username !== '' || url.password !== '') throw invalid('baseUrl must not contain credentials: pass the token as `token`');
  if (url.search !== '' || url.hash !== '') throw invalid('baseUrl must not have a query string or fragment');
  const baseUrl = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;

  if (typeof options.token !== 'string' || !TOKEN.test(options.token)) {
    throw invalid('token must be a non-empty string of visible ASCII characters');
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw invalid(`timeoutMs must be a positive number of milliseconds, not ${String(timeoutMs)}`);
  }
  const retries = options.retries ?? DEFAULT_RETRIES;
  if (!Number.isInteger(retries) || retries < 0 || retries > MAX_RETRIES) {
    throw invalid(`retries must be an integer from 0 to ${MAX_RETRIES}, not ${String(retries)}`);
  }
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  if (typeof retryDelayMs !== 'number' || !Number.isFinite(retryDelayMs) || retryDelayMs < 0) {
    throw invalid(`retryDelayMs must be a number of milliseconds >= 0, not ${String(retryDelayMs)}`);
  }
  const fetchFn = options.fetch ?? (globalThis.fetch as FetchLike | undefined);
  if (typeof fetchFn !== 'function') throw invalid('no global fetch: pass `fetch`');
  return { baseUrl, token: options.token, timeoutMs, fetch: fetchFn, retries, retryDelayMs };
}
