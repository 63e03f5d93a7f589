import { TxcError } from '../../coordinator/errors.js';
import type { LogRecord } from '../log-record.js';

/** The record types the log knows (the `type` column holds one of them). */
export const RECORD_TYPES: ReadonlySet<string> = new Set<LogRecord['type']>(['commit', 'heuristic', 'saga', 'saga-step', 'end']);

/** Column limits of the tables; a record over them must fail alone, not take its batch down. */
export const LIMITS = { gtrid: 64, idempotencyKey: 200, status: 16 } as const;

/** A record ready to be written: a private copy and its JSON text. */
export interface EncodedRecord {
  /** A deep copy: later mutation by the caller cannot change what the log holds. */
  readonly record: LogRecord;
  readonly json: string;
}

// PostgreSQL's jsonb refuses \u0000 and unpaired surrogates (both legal in JS strings and in
// JSON text). One such record in a multi-row insert would fail the whole batch, so it is
// refused at append time instead.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function badString(s: string): boolean {
  return s.includes('\u0000') || LONE_SURROGATE.test(s);
}

function findBadString(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return badString(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = findBadString(value[i], `${path}[${i}]`);
      if (p) return p;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (badString(k)) return `${path} (a key)`;
      const p = findBadString(v, `${path}.${k}`);
      if (p) return p;
    }
  }
  return undefined;
}

function refuse(gtrid: unknown, fact: string, cause?: unknown): TxcError {
  return new TxcError('TXC_LOG_IO', `the record for gtrid ${String(gtrid)} cannot be stored: ${fact}`, {
    ...(cause !== undefined ? { cause } : {}),
    details: { gtrid: typeof gtrid === 'string' ? gtrid : null, durability: 'not-written' },
  });
}

/**
 * Copies and encodes `record` for the records table, refusing (TXC_LOG_IO, `durability:
 * 'not-written'`) what the table could not hold: an unknown type, a gtrid or idempotency key
 * longer than its column, text jsonb rejects, or a value JSON cannot encode.
 */
export function encodeLogRecord(record: LogRecord): EncodedRecord {
  const gtrid: unknown = (record as { gtrid?: unknown }).gtrid;
  if (typeof gtrid !== 'string' || gtrid.length === 0 || gtrid.length > LIMITS.gtrid) {
    throw refuse(gtrid, `gtrid must be a string of 1-${LIMITS.gtrid} characters`);
  }
  if (!RECORD_TYPES.has((record as { type?: unknown }).type as string)) {
    throw refuse(gtrid, `unknown record type ${JSON.stringify((record as { type?: unknown }).type)}`);
  }
  let json: string;
  let copy: LogRecord;
  try {
    json = JSON.stringify(record);
    copy = JSON.parse(json) as LogRecord;
  } catch (cause) {
    throw refuse(gtrid, 'it cannot be encoded as JSON', cause);
  }
  const bad = findBadString(copy, 'record');
  if (bad) throw refuse(gtrid, `${bad} holds a NUL character or an unpaired surrogate, which PostgreSQL jsonb cannot store`);
  if (copy.type === 'saga' && copy.idempotencyKey !== undefined) {
    if (typeof copy.idempotencyKey !== 'string' || copy.idempotencyKey.length > LIMITS.idempotencyKey) {
      throw refuse(gtrid, `idempotencyKey must be a string of at most ${LIMITS.idempotencyKey} characters`);
    }
  }
  if (copy.type === 'end' && copy.status !== undefined && (typeof copy.status !== 'string' || copy.status.length > LIMITS.status)) {
    throw refuse(gtrid, 'end status must be committed, compensated or failed');
  }
  return { record: copy, json };
}

type Check = (r: Record<string, unknown>) => string | undefined;

const str = (k: string): Check => (r) => (typeof r[k] === 'string' ? undefined : `${k} must be a string`);
const num = (k: string): Check => (r) => (typeof r[k] === 'number' && Number.isFinite(r[k]) ? undefined : `${k} must be a number`);
const oneOf = (k: string, values: readonly string[], optional = false): Check => (r) =>
  (optional && r[k] === undefined) || values.includes(r[k] as string) ? undefined : `${k} must be one of ${values.join(', ')}`;
const audit: Check[] = [str('coordinatorId'), str('host'), num('pid'), num('startedAt')];
const branches: Check = (r) => {
  const b = r['branches'];
  if (!Array.isArray(b)) return 'branches must be an array';
  const bad = b.findIndex((x: unknown) => {
    const o = x as Record<string, unknown> | null;
    return typeof o !== 'object' || o === null || typeof o['participant'] !== 'string' || typeof o['bqual'] !== 'string';
  });
  return bad >= 0 ? `branches[${bad}] must have participant and bqual strings` : undefined;
};

const SHAPES: Readonly<Record<LogRecord['type'], readonly Check[]>> = {
  commit: [branches, num('decidedAt'), ...audit],
  heuristic: [str('participant'), str('bqual'), oneOf('expected', ['commit', 'rollback']), oneOf('actual', ['committed', 'rolled-back', 'unknown']), num('at')],
  saga: [oneOf('kind', ['steps', 'defined', 'transaction']), ...audit],
  'saga-step': [str('step'), oneOf('op', ['action', 'compensate']), oneOf('phase', ['intent', 'done', 'failed']), num('at')],
  end: [num('at'), oneOf('status', ['committed', 'compensated', 'failed'], true)],
};

/**
 * Why `value` (a stored record) is not a valid {@link LogRecord}, or undefined when it is. With
 * `row`, also checks that the record agrees with its row's gtrid and type columns.
 */
export function logRecordProblem(value: unknown, row?: { readonly gtrid: string; readonly type: string }): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  if (typeof r['type'] !== 'string' || !RECORD_TYPES.has(r['type'])) return `unknown record type ${JSON.stringify(r['type'])}`;
  if (typeof r['gtrid'] !== 'string' || r['gtrid'] === '') return 'gtrid must be a non-empty string';
  if (row && row.gtrid !== r['gtrid']) return `gtrid ${JSON.stringify(r['gtrid'])} differs from the row's ${JSON.stringify(row.gtrid)}`;
  if (row && row.type !== r['type']) return `type ${JSON.stringify(r['type'])} differs from the row's ${JSON.stringify(row.type)}`;
  for (const check of SHAPES[r['type'] as LogRecord['type']]) {
    const problem = check(r);
    if (problem) return problem;
  }
  return undefined;
}
