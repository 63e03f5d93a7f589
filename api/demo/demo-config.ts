import { join } from 'node:path';
import type { CoordinatorConfig } from '../../coordinator/types.js';

/** The two banks, in the order every transfer queries them (see {@link transfer}). */
export const BANKS = ['bank_a', 'bank_b'] as const;

/** One of the demo's participants. */
export type Bank = (typeof BANKS)[number];

/** `max_prepared_transactions` of both banks: PGlite must be opened with the same value every time. */
export const DEMO_MAX_PREPARED = 16;

/** Coordinator id of the demo (part of every transaction id it creates). */
export const DEMO_COORDINATOR_ID = 'demo';

/**
 * The demo's coordinator configuration: two embedded PGlite databases and a file decision log,
 * all under `dir`. The parent and the crashing worker build it from the same function, so both
 * open exactly the same databases with the same settings.
 */
export function demoConfig(dir: string): CoordinatorConfig {
  return {
    id: DEMO_COORDINATOR_ID,
    log: { type: 'file', dir: join(dir, 'txlog') },
    participants: {
      bank_a: { driver: 'pglite', dataDir: join(dir, 'bank_a'), maxPreparedTransactions: DEMO_MAX_PREPARED },
      bank_b: { driver: 'pglite', dataDir: join(dir, 'bank_b'), maxPreparedTransactions: DEMO_MAX_PREPARED },
    },
    recovery: { onStart: false, intervalMs: 0 },
  };
}
