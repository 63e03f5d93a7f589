import { readFile } from 'node:fs/promises';
import { TxcError } from './errors.js';
import { assertCoordinatorId, assertParticipantName } from './xid.js';
import type { CoordinatorConfig } from './types.js';

/** Drivers a JSON config may name ('custom' needs code, so it is only accepted programmatically). */
export const CONFIG_DRIVERS = ['postgres', 'mysql', 'pglite', 'mssql', 'oracle', 'http'] as const;

const CONFIG_KEYS = ['id', 'log', 'participants', 'prepareTimeoutMs', 'phaseTwoTimeoutMs', 'recovery', 'backoff', 'logLevel', 'decisionIn', 'markerRetentionMs', 'barrierRetentionMs', 'api'] as const;
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
    throw invalid(field ? `${field}.${key}` : key, `must be a ${allowZero ? 'non-negative' : 'positive'} integer`);
  }
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], field: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw invalid(field ? `${field}.${k}` : k, `is not a known setting (expected one of: ${allowed.join(', ')})`);
  }
}

const RESILIENCE_KEYS = ['backoff', 'breaker', 'statements'] as const;

/** Per driver: the keys a participant may have and the ones that must be non-empty strings. */
const DRIVER_SHAPES: Readonly<Record<(typeof CONFIG_DRIVERS)[number], { keys: readonly string[]; required: readonly string[] }>> = {
  postgres: { keys: ['connectionString', 'pool', 'localOnly'], required: ['connectionString'] },
  mysql: { keys: ['uri', 'pool', 'localOnly'], required: ['uri'] },
  pglite: { keys: ['dataDir', 'maxPreparedTransactions', 'acquireTimeoutMs', 'localOnly'], required: ['dataDir'] },
  mssql: { keys: ['connectionString', 'pool'], required: ['connectionString'] },
  oracle: { keys: ['connectionString', 'pool'], required: ['connectionString'] },
  http: { keys: ['baseUrl', 'headers', 'timeoutMs'], required: ['baseUrl'] },
};

function isConfigDriver(d: unknown): d is (typeof CONFIG_DRIVERS)[number] {
  return typeof d === 'string' && (CONFIG_DRIVERS as readonly string[]).includes(d);
}

function validateBackoff(b: unknown, field: string): void {
  if (b === undefined) return;
  if (!isRecord(b)) throw invalid(field, 'must be an object');
  checkKeys(b, ['initialMs', 'maxMs', 'factor'], field);
  optionalPositiveInt(b, 'initialMs', field);
  optionalPositiveInt(b, 'maxMs', field);
  const f = b['factor'];
  if (f !== undefined && (typeof f !== 'number' || f < 1)) throw invalid(`${field}.factor`, 'must be a number >= 1');
}

function validateBreaker(b: unknown, field: string): void {
  if (b === undefined) return;
  if (!isRecord(b)) throw invalid(field, 'must be an object');
  checkKeys(b, ['errorThresholdPercentage', 'volumeThreshold', 'resetTimeoutMs', 'rollingCountTimeoutMs', 'enabled'], field);
  const pct = b['errorThresholdPercentage'];
  if (pct !== undefined && (typeof pct !== 'number' || pct <= 0 || pct > 100)) throw invalid(`${field}.errorThresholdPercentage`, 'must be a number in (0, 100]');
  optionalPositiveInt(b, 'volumeThreshold', field);
  optionalPositiveInt(b, 'resetTimeoutMs', field);
  optionalPositiveInt(b, 'rollingCountTimeoutMs', field);
  if (b['enabled'] !== undefined && typeof b['enabled'] !== 'boolean') throw invalid(`${field}.enabled`, 'must be true or false');
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
  if (isConfigDriver(driver)) {
    const shape = DRIVER_SHAPES[driver];
    checkKeys(p, ['driver', ...shape.keys, ...RESILIENCE_KEYS], field);
    for (const k of shape.required) requireString(p, k, field);
  } else if (driver === 'custom' && allowCustom) {
    checkKeys(p, ['driver', 'adapter', ...RESILIENCE_KEYS], field);
    const a = p['adapter'];
    if (!isRecord(a) || typeof a['begin'] !== 'function') throw invalid(`${field}.adapter`, 'must be a Participant object');
  } else {
    throw invalid(`${field}.driver`, `must be one of ${CONFIG_DRIVERS.join(', ')} (got ${JSON.stringify(driver)})`);
  }
  optionalPositiveInt(p, 'maxPreparedTransactions', field);
  optionalPositiveInt(p, 'acquireTimeoutMs', field);
  optionalPositiveInt(p, 'timeoutMs', field);
  if (p['localOnly'] !== undefined && typeof p['localOnly'] !== 'boolean') throw invalid(`${field}.localOnly`, 'must be true or false');
  if (driver === 'http') {
    try {
      const u = new URL(p['baseUrl'] as string);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    } catch {
      throw invalid(`${field}.baseUrl`, 'must be an http:// or https:// URL');
    }
    const h = p['headers'];
    if (h !== undefined && (!isRecord(h) || Object.values(h).some((v) => typeof v !== 'string'))) {
      throw invalid(`${field}.headers`, 'must be an object of string values');
    }
  }
  if (p['pool'] !== undefined) {
    if (!isRecord(p['pool'])) throw invalid(`${field}.pool`, 'must be an object');
    checkKeys(p['pool'], ['max', 'acquireTimeoutMs', 'queryTimeoutMs'], `${field}.pool`);
    optionalPositiveInt(p['pool'], 'max', `${field}.pool`);
    optionalPositiveInt(p['pool'], 'acquireTimeoutMs', `${field}.pool`);
    optionalPositiveInt(p['pool'], 'queryTimeoutMs', `${field}.pool`);
  }
  validateBackoff(p['backoff'], `${field}.backoff`);
  validateBreaker(p['breaker'], `${field}.breaker`);
  validateStatements(p['statements'], `${field}.statements`, driver === 'http');
}

function validateStatements(st: unknown, field: string, service: boolean): void {
  if (st === undefined) return;
  if (service) throw invalid(field, 'is for database participants only (a service is called with a path)');
  if (!isRecord(st)) throw invalid(field, 'must be an object of name → SQL text or { "sql", "compensate"?: SQL text or false }');
  for (const [name, v] of Object.entries(st)) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw invalid(`${field}.${name}`, 'has an invalid name: use 1-64 of A-Z a-z 0-9 _ . -');
    if (typeof v === 'string' && v.length > 0) continue;
    if (!isRecord(v)) throw invalid(`${field}.${name}`, 'must be SQL text or { "sql", "compensate"?: SQL text or false }');
    checkKeys(v, ['sql', 'compensate'], `${field}.${name}`);
    requireString(v, 'sql', `${field}.${name}`);
    // false: the statement needs no undo (a read on a participant that cannot prepare).
    if (v['compensate'] !== undefined && v['compensate'] !== false) requireString(v, 'compensate', `${field}.${name}`);
  }
}

function validateApi(api: unknown): void {
  if (api === undefined) return;
  if (!isRecord(api)) throw invalid('api', 'must be an object such as { "port": 7070, "tokens": { "${TOKEN}": "client" } }');
  checkKeys(api, ['host', 'port', 'tokens', 'bodyLimitBytes'], 'api');
  if (api['host'] !== undefined && typeof api['host'] !== 'string') throw invalid('api.host', 'must be a string');
  const port = api['port'];
  if (port !== undefined && (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)) throw invalid('api.port', 'must be a port number (0-65535)');
  optionalPositiveInt(api, 'bodyLimitBytes', 'api');
  const tokens = api['tokens'];
  if (!isRecord(tokens) || Object.keys(tokens).length === 0) throw invalid('api.tokens', 'must name at least one token: { "<token or ${ENV}>": "client" | "admin" }');
  for (const [t, role] of Object.entries(tokens)) {
    // The token itself is a secret: never put it in the message.
    if (t.length < 16) throw invalid('api.tokens', 'has a token shorter than 16 characters');
    if (role !== 'client' && role !== 'admin') throw invalid('api.tokens', 'maps a token to something other than "client" or "admin"');
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
  } else if (log['type'] === 'postgres') {
    checkKeys(log, ['type', 'connectionString', 'schema', 'leaseMs'], 'log');
    requireString(log, 'connectionString', 'log');
    if (log['schema'] !== undefined && (typeof log['schema'] !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(log['schema']))) {
      throw invalid('log.schema', 'must be a lower-case SQL identifier');
    }
    optionalPositiveInt(log, 'leaseMs', 'log');
  } else {
    throw invalid('log.type', `must be "file", "postgres" or "memory" (got ${JSON.stringify(log['type'])})`);
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
  validateBackoff(raw['backoff'], 'backoff');
  const decisionIn = raw['decisionIn'];
  if (decisionIn !== undefined) {
    if (typeof decisionIn !== 'string' || !Object.hasOwn(participants, decisionIn)) {
      throw invalid('decisionIn', `must name a configured participant (got ${JSON.stringify(decisionIn)})`);
    }
  }
  optionalPositiveInt(raw, 'markerRetentionMs', '');
  optionalPositiveInt(raw, 'barrierRetentionMs', '');
  validateApi(raw['api']);
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
  const substituted = substituteEnv(parsed, env);
  // Tokens are the keys of api.tokens: substitute there too, so "${TOKEN}" is never a literal token.
  if (isRecord(substituted) && isRecord(substituted['api']) && isRecord(substituted['api']['tokens'])) {
    const tokens = substituted['api']['tokens'];
    substituted['api']['tokens'] = Object.fromEntries(Object.entries(tokens).map(([k, v]) => [substituteEnv(k, env, 'api.tokens') as string, v]));
  }
  return validateConfig(substituted, { allowCustom: false });
}
