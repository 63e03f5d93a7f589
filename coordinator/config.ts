import { readFile } from 'node:fs/promises';
import { TxcError } from './errors.js';
import { assertCoordinatorId, assertParticipantName } from './xid.js';
import type { CoordinatorConfig } from './types.js';

/** Drivers a JSON config may name ('custom' needs code, so it is only accepted programmatically). */
export const CONFIG_DRIVERS = ['postgres', 'mysql', 'pglite'] as const;

const CONFIG_KEYS = ['id', 'log', 'participants', 'prepareTimeoutMs', 'phaseTwoTimeoutMs', 'recovery', 'backoff', 'logLevel'] as const;
// Options only code can pass (functions and objects), accepted by createCoordinator but not in files.
const HOOK_KEYS = ['logger', 'clock', 'uuid', 'random', 'onProtocolPoint', 'decisionLog'] as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function invalid(field: string, problem: string): TxcError {
  return new TxcError('TXC_CONFIG_INVALID', `Config field \`${field}\` ${problem}`, { details: { field } });
}

/**
 * Replaces `${NAME}` in every string value with the environment variable NAME, so secrets stay
 * out of config files. A missing variable is an error naming the field, never an empty string.
 */
export function substituteEnv(value: Json, env: NodeJS.ProcessEnv = process.env, path = ''): Json {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) throw invalid(path || '(root)', `uses \${${name}} but the environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function requireString(obj: Record<string, unknown>, key: string, field: string): void {
  if (typeof obj[key] !== 'string' || (obj[key] as string).length === 0) throw invalid(`${field}.${key}`, 'must be a non-empty string');
}

function optionalPositiveInt(obj: Record<string, unknown> | undefined, key: string, field: string, allowZero = false): void {
  const v = obj?.[key];
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1)) {
    throw invalid(`${field}.${key}`, `must be a ${allowZero ? 'non-negative' : 'positive'} integer`);
  }
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], field: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw invalid(field ? `${field}.${k}` : k, `is not a known setting (expected one of: ${allowed.join(', ')})`);
  }
}

function validateParticipant(name: string, p: unknown, allowCustom: boolean): void {
  const field = `participants.${name}`;
  try {
    assertParticipantName(name);
  } catch {
    throw invalid(field, 'has an invalid name: use 1-48 characters of A-Z a-z 0-9 _ -');
  }
  if (!isRecord(p)) throw invalid(field, 'must be an object');
  const driver = p['driver'];
  if (driver === 'postgres') {
    checkKeys(p, ['driver', 'connectionString', 'pool'], field);
    requireString(p, 'connectionString', field);
  } else if (driver === 'mysql') {
    checkKeys(p, ['driver', 'uri', 'pool'], field);
    requireString(p, 'uri', field);
  } else if (driver === 'pglite') {
    checkKeys(p, ['driver', 'dataDir', 'maxPreparedTransactions', 'acquireTimeoutMs'], field);
    requireString(p, 'dataDir', field);
    optionalPositiveInt(p, 'maxPreparedTransactions', field);
    optionalPositiveInt(p, 'acquireTimeoutMs', field);
  } else if (driver === 'custom' && allowCustom) {
    const a = p['adapter'];
    if (!isRecord(a) || typeof a['begin'] !== 'function') throw invalid(`${field}.adapter`, 'must be a Participant object');
  } else {
    throw invalid(`${field}.driver`, `must be one of ${CONFIG_DRIVERS.join(', ')} (got ${JSON.stringify(driver)})`);
  }
  if (p['pool'] !== undefined) {
    if (!isRecord(p['pool'])) throw invalid(`${field}.pool`, 'must be an object');
    checkKeys(p['pool'], ['max', 'acquireTimeoutMs', 'queryTimeoutMs'], `${field}.pool`);
    optionalPositiveInt(p['pool'], 'max', `${field}.pool`);
    optionalPositiveInt(p['pool'], 'acquireTimeoutMs', `${field}.pool`);
    optionalPositiveInt(p['pool'], 'queryTimeoutMs', `${field}.pool`);
  }
}

/**
 * Checks a coordinator configuration, throwing TXC_CONFIG_INVALID naming the first bad field.
 * `allowCustom` admits `driver: 'custom'` adapters (code only, not JSON files).
 */
export function validateConfig(raw: unknown, { allowCustom = true } = {}): CoordinatorConfig {
  if (!isRecord(raw)) throw invalid('(root)', 'must be an object');
  checkKeys(raw, allowCustom ? [...CONFIG_KEYS, ...HOOK_KEYS] : CONFIG_KEYS, '');
  try {
    assertCoordinatorId(raw['id']);
  } catch {
    throw invalid('id', `must be 1-24 characters of A-Z a-z 0-9 _ - (got ${JSON.stringify(raw['id'])})`);
  }
  const log = raw['log'];
  if (!isRecord(log)) throw invalid('log', "must be an object such as { \"type\": \"file\", \"dir\": \"./txlog\" }");
  if (log['type'] === 'file') {
    checkKeys(log, ['type', 'dir', 'segmentBytes'], 'log');
    requireString(log, 'dir', 'log');
    optionalPositiveInt(log, 'segmentBytes', 'log');
  } else if (log['type'] === 'memory') {
    checkKeys(log, ['type'], 'log');
  } else {
    throw invalid('log.type', `must be "file" or "memory" (got ${JSON.stringify(log['type'])})`);
  }
  const participants = raw['participants'];
  if (!isRecord(participants) || Object.keys(participants).length === 0) {
    throw invalid('participants', 'must be an object with at least one named participant');
  }
  // JSON.parse keeps the last of duplicate keys silently; loadConfigFile checks the raw text for that.
  for (const [name, p] of Object.entries(participants)) validateParticipant(name, p, allowCustom);
  optionalPositiveInt(raw, 'prepareTimeoutMs', '');
  optionalPositiveInt(raw, 'phaseTwoTimeoutMs', '');
  if (raw['recovery'] !== undefined) {
    if (!isRecord(raw['recovery'])) throw invalid('recovery', 'must be an object');
    checkKeys(raw['recovery'], ['onStart', 'intervalMs'], 'recovery');
    if (raw['recovery']['onStart'] !== undefined && typeof raw['recovery']['onStart'] !== 'boolean') {
      throw invalid('recovery.onStart', 'must be true or false');
    }
    optionalPositiveInt(raw['recovery'], 'intervalMs', 'recovery', true);
  }
  if (raw['backoff'] !== undefined) {
    if (!isRecord(raw['backoff'])) throw invalid('backoff', 'must be an object');
    checkKeys(raw['backoff'], ['initialMs', 'maxMs', 'factor'], 'backoff');
    optionalPositiveInt(raw['backoff'], 'initialMs', 'backoff');
    optionalPositiveInt(raw['backoff'], 'maxMs', 'backoff');
    const f = raw['backoff']['factor'];
    if (f !== undefined && (typeof f !== 'number' || f < 1)) throw invalid('backoff.factor', 'must be a number >= 1');
  }
  if (raw['logLevel'] !== undefined && typeof raw['logLevel'] !== 'string') throw invalid('logLevel', 'must be a pino level name');
  return raw as unknown as CoordinatorConfig;
}

/** Finds a key repeated inside one JSON object (JSON.parse would silently keep the last). */
export function findDuplicateKey(text: string): string | undefined {
  const stack: Set<string>[] = [];
  const path: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"\s*:|[{}]|"(?:[^"\\]|\\.)*"/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const tok = m[0];
    if (tok === '{') stack.push(new Set());
    else if (tok === '}') stack.pop();
    else if (m[1] !== undefined) {
      const depth = stack.length;
      const key = JSON.parse(`"${m[1]}"`) as string;
      const seen = stack[depth - 1];
      if (seen?.has(key)) return [...path.slice(0, depth - 1), key].join('.');
      seen?.add(key);
      path.length = depth - 1;
      path.push(key);
    }
  }
  return undefined;
}

/** Reads a JSON config file, substitutes `${ENV}` values, and validates it. */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<CoordinatorConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new TxcError('TXC_CONFIG_INVALID', `Cannot read config file ${file}`, { cause, details: { file } });
  }
  let parsed: Json;
  try {
    parsed = JSON.parse(text) as Json;
  } catch (cause) {
    throw new TxcError('TXC_CONFIG_INVALID', `Config file ${file} is not valid JSON (${(cause as Error).message})`, { cause });
  }
  const dup = findDuplicateKey(text);
  if (dup) throw invalid(dup, 'appears twice in the same object (duplicate participant or setting name)');
  return validateConfig(substituteEnv(parsed, env), { allowCustom: false });
}
