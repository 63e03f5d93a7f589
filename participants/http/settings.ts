import { TxcError } from '../../coordinator/errors.js';
import { redactUrl } from '../../coordinator/logger.js';
import type { HttpParticipantConfig } from '../participant-config.js';

/** Default per-attempt timeout. */
export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;

/** setTimeout fires at once for anything longer (a 32-bit signed delay). */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** An HTTP participant's configuration, checked and put in the shape each request needs. */
export interface HttpSettings {
  /** Base URL without credentials and without a trailing slash; a step's path is appended. */
  readonly baseUrl: string;
  /** The base URL as it may appear in logs and error messages. */
  readonly safeBaseUrl: string;
  /** Configured headers under lower-case names, plus `authorization` when the base URL held credentials. */
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

// RFC 9110 token characters.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// fetch sends header values as ByteStrings and refuses CR, LF and NUL.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Headers the configuration may not set: the idempotency key is per request and is what makes
 * retries safe, and the others describe the connection or the framing, which fetch owns.
 */
const RESERVED_HEADERS = new Set([
  'idempotency-key',
  'host',
  'content-length',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'upgrade',
  'expect',
]);

/**
 * Checks an HTTP participant's configuration (without contacting the service) and resolves its
 * defaults. Throws TXC_CONFIG_INVALID naming the field. Credentials written into the base URL
 * (`https://user:${PASS}@host/api`) become a Basic `authorization` header, because fetch refuses
 * URLs that carry them.
 */
export function resolveHttpSettings(name: string, config: HttpParticipantConfig): HttpSettings {
  const field = `participants.${name}`;
  const invalid = (path: string, what: string) =>
    new TxcError('TXC_CONFIG_INVALID', `${field}.${path} ${what}`, { details: { participant: name, field: `${field}.${path}` } });

  let url: URL;
  try {
    url = new URL(config.baseUrl);
  } catch {
    throw invalid('baseUrl', 'must be an http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('baseUrl', 'must be an http:// or https:// URL');
  // A step's path is appended to the base, which cannot work after a query or a fragment.
  if (url.search !== '' || url.hash !== '') throw invalid('baseUrl', 'must not have a query string or a fragment');

  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(config.headers ?? {})) {
    const lower = key.toLowerCase();
    if (!HEADER_NAME.test(key)) throw invalid('headers', `has an invalid header name ${JSON.stringify(key)}`);
    // Never echo the value: it is typically a token.
    if (typeof value !== 'string' || !HEADER_VALUE.test(value)) throw invalid(`headers.${key}`, 'must be a string without line breaks');
    if (RESERVED_HEADERS.has(lower)) throw invalid(`headers.${key}`, 'is set by txcoord or by the HTTP client and may not be configured');
    if (lower in headers) throw invalid(`headers.${key}`, 'is given twice (header names are case-insensitive)');
    headers[lower] = value;
  }

  if (url.username !== '' || url.password !== '') {
    if ('authorization' in headers) throw invalid('baseUrl', 'has credentials and headers.authorization is set too: keep one');
    let user: string;
    let pass: string;
    try {
      user = decodeURIComponent(url.username);
      pass = decodeURIComponent(url.password);
    } catch {
      throw invalid('baseUrl', 'has badly percent-encoded credentials');
    }
    headers['authorization'] = `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
    url.username = '';
    url.password = '';
  }

  const timeoutMs = config.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  if (!isTimeout(timeoutMs)) throw invalid('timeoutMs', `must be a positive number of milliseconds up to ${MAX_TIMEOUT_MS}`);

  const baseUrl = url.href.replace(/\/+$/, '');
  return { baseUrl, safeBaseUrl: redactUrl(baseUrl), headers, timeoutMs };
}

/** Whether `ms` can be used as a per-attempt timeout. */
export function isTimeout(ms: unknown): ms is number {
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 && ms <= MAX_TIMEOUT_MS;
}
