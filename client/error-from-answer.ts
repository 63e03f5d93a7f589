import { ERROR_CODES, TxcError, type TxcErrorCode, type TxcErrorDetails } from '../coordinator/errors.js';

/** How much of a body that is not a WireError goes into the message. */
const EXCERPT_CHARS = 300;

/**
 * Statuses after which the same call may succeed later. 503 is the server's own "not now"; 429,
 * 502 and 504 come from proxies and load balancers in front of it.
 */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/** Where an answer came from, for the message. */
export interface AnswerContext {
  readonly method: string;
  /** The route without query string, e.g. `/v1/transactions/txc1.a.0190…/commit`. */
  readonly route: string;
  /** From a `Retry-After` header in seconds, when the answer had one. */
  readonly retryAfterMs?: number;
  /** Set from the second attempt of a repeated call on. */
  readonly attempts?: number;
}

/**
 * The TxcError for a non-2xx answer. A WireError body gives the code, message and details as the
 * server sent them (the message is rebuilt so it reads exactly as the server's); anything else
 * (a proxy's page, a newer server's unknown code) gets a code from the status. `details.httpStatus`
 * is always set: it is how callers tell a server's verdict from a lost answer.
 */
export function errorFromAnswer(status: number, text: string, at: AnswerContext): TxcError {
  const retryable = RETRYABLE_STATUSES.has(status);
  const base: Record<string, string | number | boolean | null> = { httpStatus: status };
  if (at.retryAfterMs !== undefined) base.retryAfterMs = at.retryAfterMs;
  if (at.attempts !== undefined) base.attempts = at.attempts;
  const wire = parseWireError(text);
  if (wire && isKnownCode(wire.code)) {
    const details: TxcErrorDetails = { ...flatten(wire.details), ...base };
    return new TxcError(wire.code, factOf(wire.code, wire.message), { details, retryable });
  }
  const said = wire ? `${wire.code}: ${wire.message}` : excerpt(text);
  const details: TxcErrorDetails = { ...(wire ? flatten(wire.details) : {}), ...base, ...(wire ? { serverCode: wire.code } : {}) };
  return new TxcError(
    codeForStatus(status),
    `The txcoord server answered HTTP ${status} to ${at.method} ${at.route}${said ? `: ${said}` : ''}`,
    { details, retryable },
  );
}

interface ParsedWireError {
  readonly code: string;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

function parseWireError(text: string): ParsedWireError | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  const error = isObject(body) ? body.error : undefined;
  if (!isObject(error) || typeof error.code !== 'string' || typeof error.message !== 'string') return undefined;
  return { code: error.code, message: error.message, details: isObject(error.details) ? error.details : {} };
}

function isKnownCode(code: string): code is TxcErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/**
 * The specific fact of a server message: the server sends TxcError messages, which end with the
 * code's advice, and the TxcError built here appends that advice again.
 */
function factOf(code: TxcErrorCode, message: string): string | undefined {
  const advice = ERROR_CODES[code];
  if (message === advice || message === '') return undefined;
  if (message.endsWith(`. ${advice}`)) return message.slice(0, -(advice.length + 2));
  return message.replace(/\.\s*$/, '');
}

/** WireError details are any JSON; TxcError details are scalars, so nested values travel as JSON text. */
function flatten(details: Readonly<Record<string, unknown>>): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [key, value] of Object.entries(details)) {
    if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[key] = value;
    else if (value !== undefined) out[key] = JSON.stringify(value);
  }
  return out;
}

function codeForStatus(status: number): TxcErrorCode {
  switch (status) {
    case 400:
    case 413:
    case 415:
    case 422:
      return 'TXC_BAD_REQUEST';
    case 401:
      return 'TXC_UNAUTHORIZED';
    case 403:
      return 'TXC_FORBIDDEN';
    case 404:
      return 'TXC_NOT_FOUND';
    case 421:
      return 'TXC_WRONG_INSTANCE';
    case 409:
      return 'TXC_TRANSACTION_CLOSED';
    default:
      // 5xx, 429 and the rest: the service is not in a state to do it; no code says more.
      return 'TXC_PARTICIPANT_UNAVAILABLE';
  }
}

function excerpt(text: string): string {
  const t = text.trim();
  return t.length > EXCERPT_CHARS ? `${t.slice(0, EXCERPT_CHARS)}…` : t;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
