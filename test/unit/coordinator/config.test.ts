import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findDuplicateKey, loadConfigFile, validateConfig } from '../../../coordinator/config.js';
import { TxcError } from '../../../coordinator/errors.js';

const good = {
  id: 'billing-1',
  log: { type: 'file', dir: './txlog' },
  participants: {
    erp: { driver: 'postgres', connectionString: 'postgres://app@db1/erp' },
    crm: { driver: 'mysql', uri: 'mysql://app@db2/crm' },
    local: { driver: 'pglite', dataDir: './data/local' },
  },
};

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (TxcError.is(err, 'TXC_CONFIG_INVALID')) return String(err.details['field']);
    throw err;
  }
  return undefined;
}

async function writeConfig(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'txc-config-'));
  const file = join(dir, 'c.json');
  await writeFile(file, text);
  return file;
}

describe('configuration', () => {
  it('accepts the documented shape', () => {
    expect(validateConfig(good).id).toBe('billing-1');
  });

  it('names the bad field', () => {
    expect(fieldOf(() => validateConfig({ ...good, id: 'has space' }))).toBe('id');
    expect(fieldOf(() => validateConfig({ ...good, log: { type: 'tape' } }))).toBe('log.type');
    expect(fieldOf(() => validateConfig({ ...good, participants: { x: { driver: 'oracle9' } } }))).toBe('participants.x.driver');
    expect(fieldOf(() => validateConfig({ ...good, participants: { x: { driver: 'postgres' } } }))).toBe('participants.x.connectionString');
    expect(fieldOf(() => validateConfig({ ...good, participants: { x: { driver: 'mysql', uri: 'u', pool: { max: 0 } } } }))).toBe('participants.x.pool.max');
    expect(fieldOf(() => validateConfig({ ...good, participants: {} }))).toBe('participants');
    expect(fieldOf(() => validateConfig({ ...good, prepareTimout: 5 }))).toBe('prepareTimout');
    expect(fieldOf(() => validateConfig({ ...good, barrierRetentionMs: -1 }))).toBe('barrierRetentionMs');
    expect(validateConfig({ ...good, barrierRetentionMs: 3_600_000 }).barrierRetentionMs).toBe(3_600_000);
  });

  it('substitutes ${ENV} in strings and fails naming the field when a variable is missing', async () => {
    const text = JSON.stringify({ ...good, participants: { erp: { driver: 'postgres', connectionString: 'postgres://app:${TXC_T_PW}@db/erp' } } });
    const file = await writeConfig(text);
    const cfg = await loadConfigFile(file, { TXC_T_PW: 's3cret' });
    expect(cfg.participants['erp']).toMatchObject({ connectionString: 'postgres://app:s3cret@db/erp' });
    const err = await loadConfigFile(file, {}).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_CONFIG_INVALID')).toBe(true);
    expect((err as TxcError).details['field']).toBe('participants.erp.connectionString');
    expect((err as Error).message).toContain('TXC_T_PW');
  });

  it('refuses a duplicate participant name that JSON.parse would silently drop', async () => {
    const file = await writeConfig('{"id":"c","log":{"type":"memory"},"participants":{"a":{"driver":"pglite","dataDir":"x"},"a":{"driver":"pglite","dataDir":"y"}}}');
    const err = await loadConfigFile(file).catch((e: unknown) => e);
    expect((err as TxcError).details['field']).toBe('participants.a');
    expect(findDuplicateKey('{"a":{"x":1},"b":{"x":2}}')).toBeUndefined();
  });

  it('refuses custom adapters in files and reports unreadable or malformed files', async () => {
    const file = await writeConfig(JSON.stringify({ ...good, participants: { x: { driver: 'custom' } } }));
    expect(await loadConfigFile(file).catch((e: TxcError) => e.details['field'])).toBe('participants.x.driver');
    expect(await loadConfigFile('/nonexistent/c.json').catch((e: TxcError) => e.code)).toBe('TXC_CONFIG_INVALID');
    expect(await loadConfigFile(await writeConfig('{ nope')).catch((e: TxcError) => e.code)).toBe('TXC_CONFIG_INVALID');
  });
});
