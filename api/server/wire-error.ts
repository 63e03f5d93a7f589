import type { Json, WireError } from '../../client/wire-types.js';
import { ERROR_CODES, TxcError, type TxcErrorCode } from '../../coordinator/errors.js';
import { shortField } from './bad-request.js';

/** The wire code of a failure that is no TxcError: a bug or an environment problem. */
export const INTERNAL_CODE = 'TXC_INTERNAL';

/** HTTP status of each TxcError code a client can cause or wait out; every other code is a 500. */
export const STATUS_OF_CODE: Readonly<Partial<Record<TxcErrorCode, number>>> = {
  TXC_BAD_REQUEST: 400,
  TXC_PARTICIPANT_UNKNOWN: 400,
  TXC_COMPENSATION_REQUIRED: 400,
  TXC_TWO_PHASE_UNSUPPORTED: 400,
  TXC_ID_INVALID: 400,
  TXC_UNSUPPORTED: 400,
  // A statement the database refused (constraint violation, bad SQL in a named statement's
  // parameters): the request cannot succeed as sent, and nothing was committed.
  TXC_QUERY_FAILED: 422,
  TXC_COMMIT_FAILED: 409,
  TXC_UNAUTHORIZED: 401,
  TXC_FORBIDDEN: 403,
  TXC_NOT_FOUND: 404,
  // 421 Misdirected Request: this instance cannot answer for that transaction; its owner can.
  TXC_WRONG_INSTANCE: 421,
  TXC_RESOLVE_REFUSED: 409,
  TXC_PREPARE_FAILED: 409,
  TXC_TRANSACTION_CLOSED: 409,
  TXC_PARTICIPANT_UNAVAILABLE: 503,
  TXC_POOL_TIMEOUT: 503,
  TXC_PREPARE_TIMEOUT: 503,
  TXC_COORDINATOR_CLOSED: 503,
};

/** One error answer: status, body, extra headers, and how loudly to log it. */
export interface WireErrorAnswer {
  readonly status: number;
  readonly body: WireError;
  readonly headers: Readonly<Record<string, string>>;
  /** 'error' for the failures that need an operator (5xx other than 503), 'info' for the rest. */
  readonly level: 'info' | 'warn' | 'error';
}

/** What the mapping needs to know about the server and the request. */
export interface WireErrorContext {
  /** The configured body limit, named in 413 answers. */
  readonly bodyLimit: number;
  /** Scrubs secrets out of messages. */
  readonly scrub: (s: string) => string;
  /** The request id, quoted in 500 answers so an operator can find the log line. */
  readonly requestId: string;
}

/** The shape of an ajv error as Fastify hands it over (verbose mode, so `parentSchema` is there). */
interface AjvError {
  readonly instancePath?: string;
  /** Set on errors about an object key (propertyNames). */
  readonly propertyName?: string;
  readonly keyword?: string;
  readonly message?: string;
  readonly params?: Readonly<Record<string, unknown>>;
  readonly parentSchema?: { readonly description?: unknown; readonly properties?: Readonly<Record<string, unknown>> };
}

interface FastifyLikeError {
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly validation?: readonly AjvError[];
  readonly validationContext?: unknown;
  readonly message?: unknown;
}

function answer(status: number, code: string, message: string, details?: Record<string, Json>, headers: Record<string, string> = {}): WireErrorAnswer {
  return {
    status,
    body: { error: { code, message, ...(details && Object.keys(details).length ? { details } : {}) } },
    headers,
    level: status >= 500 && status !== 503 ? 'error' : 'info',
  };
}

/** The answer for a path no route serves. */
export function notFoundRoute(): WireErrorAnswer {
  return answer(404, 'TXC_NOT_FOUND', 'No such route: see GET /docs/json for the routes.');
}

/** `/steps/0/action` → `steps[0].action` (JSON pointer to the field syntax used in messages). */
export function pointerToField(pointer: string, root: string): string {
  let field = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^[0-9]+$/.test(seg)) field += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) field += field ? `.${seg}` : seg;
    else field += `[${JSON.stringify(seg)}]`;
  }
  return field || 'body';
}

function child(field: string, key: unknown): string {
  return pointerToField(`/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`, field);
}

function describeType(t: unknown): string {
  const types = String(t).split(',');
  return types.length === 1 ? String(types[0]) : `${types.slice(0, -1).join(', ')} or ${types.at(-1) ?? ''}`;
}

/** The field an ajv error is about and what is wrong with it, in words. */
export function validationProblem(error: AjvError, context: string): { field: string; problem: string } {
  // Body fields are named bare (`steps[0].name`); the other parts by their part (`params.id`).
  const root = context === 'body' ? '' : context;
  const at = pointerToField(error.instancePath ?? '', root);
  const p = error.params ?? {};
  const description = typeof error.parentSchema?.description === 'string' ? error.parentSchema.description : undefined;
  if (error.propertyName !== undefined) return { field: child(at === 'body' ? root : at, error.propertyName), problem: 'is not a valid key here' };
  switch (error.keyword) {
    case 'required':
      return { field: child(at === 'body' ? root : at, p['missingProperty']), problem: 'is required' };
    case 'additionalProperties': {
      const allowed = Object.keys(error.parentSchema?.properties ?? {});
      return {
        field: child(at === 'body' ? root : at, p['additionalProperty']),
        problem: `is not allowed here (${allowed.length ? `allowed: ${allowed.join(', ')}` : 'no fields are'})`,
      };
    }
    case 'propertyNames':
      return { field: child(at === 'body' ? root : at, p['propertyName']), problem: 'is not a valid name here' };
    case 'type':
      return { field: at, problem: `must be ${describeType(p['type'])}` };
    case 'enum':
      return { field: at, problem: `must be one of: ${(Array.isArray(p['allowedValues']) ? p['allowedValues'] : []).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'pattern':
      return { field: at, problem: description ? `must be ${description}` : 'has an invalid format' };
    default:
      return { field: at, problem: error.message ?? 'is invalid' };
  }
}

function fromFastify(err: FastifyLikeError, ctx: WireErrorContext): WireErrorAnswer | undefined {
  if (Array.isArray(err.validation) && err.validation.length > 0) {
    const { field, problem } = validationProblem(err.validation[0] as AjvError, String(err.validationContext ?? 'body'));
    const f = shortField(field);
    return answer(400, 'TXC_BAD_REQUEST', ctx.scrub(`Field \`${f}\` ${problem}. ${ERROR_CODES.TXC_BAD_REQUEST}`), { field: f });
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : undefined;
  if (status === undefined || status < 400 || status >= 500) return undefined;
  const bad = (message: string) => answer(status, status === 404 ? 'TXC_NOT_FOUND' : 'TXC_BAD_REQUEST', `${message}; nothing was done.`);
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return bad(`The request body is larger than the limit of ${ctx.bodyLimit} bytes (api.bodyLimitBytes)`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return bad('The Content-Type is not supported: send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return bad('The body is empty but the Content-Type says JSON: send a JSON object, or no Content-Type and no body');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return bad('The request body is not valid JSON (or it holds a forbidden __proto__ or constructor.prototype key)');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return bad('The Content-Length does not match the body');
    case 'FST_ERR_BAD_URL':
      return bad('The URL is malformed (bad percent-encoding)');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return bad('A path parameter is too long');
    default:
      return status === 404 ? notFoundRoute() : bad(`The request was refused (HTTP ${status})`);
  }
}

function scalarDetails(details: Readonly<Record<string, unknown>>, scrub: (s: string) => string): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(details)) {
    if (typeof v === 'string') out[k] = scrub(v);
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) out[k] = v;
  }
  return out;
}

/**
 * Maps any error a route or Fastify raised to the wire answer. A TxcError a client can act on
 * keeps its message and details (scrubbed); any other TxcError becomes a 500 with its code and
 * the code's generic text only (the specific fact may name hosts or statements); anything else
 * is a 500 TXC_INTERNAL naming the request id. Never a stack trace.
 */
export function toWireError(err: unknown, ctx: WireErrorContext): WireErrorAnswer {
  if (TxcError.is(err)) {
    const status = STATUS_OF_CODE[err.code];
    if (status !== undefined) {
      const headers: Record<string, string> = status === 503 ? { 'retry-after': '1' } : status === 401 ? { 'www-authenticate': 'Bearer realm="txcoord"' } : {};
      return answer(status, err.code, ctx.scrub(err.message), scalarDetails(err.details, ctx.scrub), headers);
    }
    // The code's advice last, as in every TxcError message, so clients can split fact from advice.
    return answer(500, err.code, `Request ${ctx.requestId} failed. ${ERROR_CODES[err.code]}`);
  }
  if (typeof err === 'object' && err !== null) {
    const mapped = fromFastify(err as FastifyLikeError, ctx);
    if (mapped) return mapped;
  }
  return answer(500, INTERNAL_CODE, `Internal error: the server logged it under request id ${ctx.requestId}. Retry later; report it if it persists.`);
}
