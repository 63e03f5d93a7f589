/**
 * JSON schemas of the wire shapes in client/wire-types.ts: Fastify validates requests with them
 * (ajv, additional properties refused), serializes answers with them (fields outside the
 * contract never leave the server), and @fastify/swagger publishes them at GET /docs/json.
 * Open maps (`meta`, statement `params`, a saga step `body`) are the only objects that admit
 * keys not listed, and they are bounded in size and key shape instead.
 */

/** A JSON schema, as far as these files use it. */
export type Schema = Readonly<Record<string, unknown>>;

const GTRID = 'txc1\\.[A-Za-z0-9_-]{1,24}\\.[0-9a-f]{32}';
const BQUAL = 'b[0-9]{1,4}(?:~[A-Za-z0-9_-]{1,48})?';

const participantName: Schema = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,48}$', description: 'a participant name (1-48 of A-Z a-z 0-9 _ -)' };
const stepName: Schema = { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'a step name (1-64 of A-Z a-z 0-9 _ . -)' };
const statementName: Schema = { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'a statement name from participants.<name>.statements' };
const anyJson: Schema = { description: 'any JSON value' };

/** `txc1.<coordinator id>.<32 hex digits>`. */
export const transactionId: Schema = { type: 'string', pattern: `^${GTRID}$`, description: 'a txcoord id (txc1.<coordinator id>.<32 hex digits>)' };

const meta: Schema = {
  type: 'object',
  description: 'Scalar metadata stored with the transaction or saga for audit.',
  maxProperties: 32,
  propertyNames: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'], maxLength: 1024 },
};

const statementParams: Schema = {
  type: 'object',
  description: 'Values of the statement’s :name parameters.',
  maxProperties: 100,
  propertyNames: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' },
  additionalProperties: anyJson,
};

const timeoutMs = (max: number): Schema => ({ type: 'integer', minimum: 1, maximum: max });

const sagaOperation: Schema = {
  type: 'object',
  description: 'Either { path, body? } for an HTTP participant or { statement, params? } for a database participant.',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    path: { type: 'string', maxLength: 2048, pattern: '^/(?!/)[^\\s#\\\\]*$', description: 'a path starting with a single / (no spaces, # or backslashes)' },
    body: anyJson,
    statement: statementName,
    params: statementParams,
  },
};

/** POST /v1/sagas */
export const submitSagaRequest: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['steps'],
  properties: {
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'participant', 'action'],
        properties: {
          name: stepName,
          participant: participantName,
          action: sagaOperation,
          compensate: sagaOperation,
          after: { type: 'array', maxItems: 100, uniqueItems: true, items: stepName },
          timeoutMs: timeoutMs(86_400_000),
        },
      },
    },
    timeoutMs: timeoutMs(86_400_000),
    meta,
  },
};

/** Header of POST /v1/sagas (only the header read is described: every request carries others). */
export const idempotencyHeaders: Schema = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      maxLength: 255,
      pattern: '^[\\x21-\\x7e](?:[\\x20-\\x7e]*[\\x21-\\x7e])?$',
      description: '1-255 printable ASCII characters, without leading or trailing spaces',
    },
  },
};

/** POST /v1/transactions */
export const beginTransactionRequest: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    participants: { type: 'array', maxItems: 64, uniqueItems: true, items: participantName },
    timeoutMs: timeoutMs(3_600_000),
    meta,
  },
};

/** POST /v1/transactions/:id/branches */
export const addBranchRequest: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['participant'],
  properties: { participant: participantName },
};

/** POST /v1/transactions/:id/commit (no fields; an absent body is the same). */
export const commitRequest: Schema = { type: 'object', additionalProperties: false, properties: {} };

/** POST /v1/transactions/:id/abort (an absent body is the same as `{}`). */
export const abortRequest: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 500, description: 'Why, recorded with the abort.' } },
};

/** POST /v1/transactions/execute */
export const executeRequest: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['steps'],
  properties: {
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['participant', 'statement'],
        properties: { participant: participantName, statement: statementName, params: statementParams },
      },
    },
    mode: { type: 'string', enum: ['auto', '2pc', 'saga'] },
    meta,
  },
};

/** POST /v1/in-doubt/:xid/resolve */
export const resolveRequest: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['outcome'],
  properties: {
    outcome: { type: 'string', enum: ['commit', 'rollback'] },
    force: { type: 'boolean', description: 'Required when the outcome contradicts the decision log.' },
  },
};

/** `:id` of the transaction and saga routes. */
export const idParams: Schema = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: transactionId } };

/** `:xid` of the resolve route: `<gtrid>.<bqual>`, or a gtrid for all its branches. */
export const xidParams: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['xid'],
  properties: {
    xid: { type: 'string', pattern: `^${GTRID}(?:\\.${BQUAL})?$`, description: 'an xid (<gtrid>.<bqual>) or a gtrid (txc1.<coordinator id>.<32 hex digits>[.b<n>])' },
  },
};

/** Routes that take no query parameters say so, so a mistyped option is refused rather than ignored. */
export const noQuery: Schema = { type: 'object', additionalProperties: false, properties: {} };

// ---- answers ----

/** Every non-2xx answer. */
export const wireError: Schema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'a TXC_* code' },
        message: { type: 'string', description: 'what happened and what to do' },
        details: { type: 'object', additionalProperties: true },
      },
    },
  },
};

/** One branch of a client-driven transaction. */
export const wireBranch: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['participant', 'driver', 'formatId', 'gtrid', 'bqual'],
  properties: {
    participant: { type: 'string' },
    driver: { type: 'string' },
    formatId: { type: 'integer' },
    gtrid: { type: 'string' },
    bqual: { type: 'string' },
    gid: { type: 'string', description: 'PostgreSQL / PGlite: the gid for PREPARE TRANSACTION' },
    xa: { type: 'string', description: 'MySQL / MariaDB: the xid clause for XA START / END / PREPARE' },
  },
};

/** State of a client-driven transaction. */
export const transactionView: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'state', 'deadlineAt', 'branches'],
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: ['active', 'committing', 'committed', 'aborted'] },
    deadlineAt: { type: 'integer', description: 'ms since epoch' },
    branches: { type: 'array', items: wireBranch },
    reason: { type: 'string' },
  },
};

/** Answer of commit. */
export const commitAnswer: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'outcome', 'phaseTwoPending'],
  properties: { id: { type: 'string' }, outcome: { type: 'string', enum: ['committed'] }, phaseTwoPending: { type: 'boolean' } },
};

/** Answer of abort. */
export const abortAnswer: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'outcome'],
  properties: { id: { type: 'string' }, outcome: { type: 'string', enum: ['aborted'] } },
};

/** Answer of execute. */
export const executeAnswer: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'outcome', 'mode', 'guarantee', 'results'],
  properties: {
    id: { type: 'string' },
    outcome: { type: 'string', enum: ['committed'] },
    mode: { type: 'string', description: 'read-only, one-phase, 2pc, last-resource or saga' },
    guarantee: { type: 'string', enum: ['atomic', 'compensating'] },
    results: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['rowCount', 'rows'],
        properties: { rowCount: { type: 'integer' }, rows: { type: 'array', items: { type: 'object', additionalProperties: true } } },
      },
    },
  },
};

/** Answer of POST /v1/sagas. */
export const submitSagaAnswer: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'existing'],
  properties: { id: { type: 'string' }, existing: { type: 'boolean', description: 'the Idempotency-Key had been seen: this is the first saga' } },
};

const stepError: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' } },
};

/** Answer of GET /v1/sagas/:id. */
export const sagaView: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'status', 'steps'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['running', 'committed', 'compensated', 'failed'] },
    steps: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'action', 'compensation'],
        properties: {
          name: { type: 'string' },
          participant: { type: 'string' },
          action: { type: 'string', enum: ['done', 'failed', 'unknown', 'not-run', 'running'] },
          compensation: { type: 'string', enum: ['not-needed', 'done', 'null', 'failed', 'pending'] },
          result: anyJson,
          error: stepError,
        },
      },
    },
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, step: { type: 'string' } },
    },
  },
};

/** Answer of GET /v1/in-doubt. */
export const inDoubtAnswer: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['branches', 'failures'],
  properties: {
    branches: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['participant', 'gtrid', 'bqual', 'xid', 'coordinatorId', 'decision', 'inFlight'],
        properties: {
          participant: { type: 'string' },
          gtrid: { type: 'string' },
          bqual: { type: 'string' },
          xid: { type: 'string', description: '<gtrid>.<bqual>: the id POST /v1/in-doubt/:xid/resolve takes' },
          coordinatorId: { type: 'string' },
          decision: { type: 'string', enum: ['commit', 'rollback', 'marker', 'unknown'] },
          inFlight: { type: 'boolean' },
          ageMs: { type: 'number' },
        },
      },
    },
    failures: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['participant', 'code', 'message'],
        properties: { participant: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
};

/** Answer of resolve. */
export const resolveAnswer: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['xid', 'outcome', 'logDecision', 'resolved'],
  properties: {
    xid: { type: 'string' },
    outcome: { type: 'string', enum: ['commit', 'rollback'] },
    logDecision: { type: 'string', enum: ['commit', 'rollback', 'marker', 'unknown'] },
    resolved: { type: 'integer' },
  },
};

/** Answer of GET /readyz. */
export const readyAnswer: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['ok', 'checks'],
  properties: { ok: { type: 'boolean' }, checks: { type: 'object', additionalProperties: { type: 'string' } } },
};

/** Answer of GET /healthz. */
export const healthAnswer: Schema = { type: 'object', additionalProperties: false, required: ['ok'], properties: { ok: { type: 'boolean' } } };

/** The error answers every authenticated route may give, for the OpenAPI document. */
export function errorResponses(...statuses: number[]): Record<string, Schema> {
  return Object.fromEntries(statuses.map((s) => [String(s), { ...wireError, description: ERROR_DESCRIPTIONS[s] ?? 'error' }]));
}

const ERROR_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'TXC_BAD_REQUEST (message and details.field name the field), TXC_PARTICIPANT_UNKNOWN, TXC_COMPENSATION_REQUIRED, TXC_TWO_PHASE_UNSUPPORTED',
  401: 'TXC_UNAUTHORIZED: no valid bearer token',
  403: 'TXC_FORBIDDEN: a client token on an admin route',
  404: 'TXC_NOT_FOUND',
  409: 'TXC_PREPARE_FAILED, TXC_TRANSACTION_CLOSED or TXC_RESOLVE_REFUSED',
  413: 'TXC_BAD_REQUEST: body larger than api.bodyLimitBytes',
  421: 'TXC_WRONG_INSTANCE: another instance began this transaction (details.coordinatorId); send its requests there',
  415: 'TXC_BAD_REQUEST: Content-Type other than application/json',
  500: 'Any other TXC_* code (generic message), or TXC_INTERNAL',
  503: 'TXC_PARTICIPANT_UNAVAILABLE, TXC_POOL_TIMEOUT or TXC_COORDINATOR_CLOSED (Retry-After: 1)',
};
