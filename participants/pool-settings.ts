import { TxcError } from '../coordinator/errors.js';
import type { PoolConfig } from './participant-config.js';

/** Pool settings with defaults applied. */
export type PoolSettings = Required<PoolConfig>;

const DEFAULTS: PoolSettings = { max: 10, acquireTimeoutMs: 10_000, queryTimeoutMs: 60_000 };

/**
 * The pool settings of participant `name`, defaults filled in; TXC_CONFIG_INVALID naming the
 * field for anything but a positive integer (code can skip the config validator).
 */
export function resolvePoolSettings(name: string, pool: PoolConfig = {}): PoolSettings {
  const out = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof PoolSettings)[]) {
    const value = pool[key] ?? DEFAULTS[key];
    if (!Number.isInteger(value) || value <= 0) {
      throw new TxcError('TXC_CONFIG_INVALID', `participants.${name}.pool.${key} must be a positive integer, not ${String(value)}`, {
        details: { field: `participants.${name}.pool.${key}` },
      });
    }
    out[key] = value;
  }
  return out;
}
