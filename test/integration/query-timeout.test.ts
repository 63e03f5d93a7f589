import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { TxcError } from '../../coordinator/errors.js';
import { mysqlUrl, pgUrl, requireDbOrSkip } from './db-env.js';

const ready = (await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql'));

// A statement whose answer never comes (a network dropping packets) must fail the transaction
// after queryTimeoutMs instead of hanging it; a slow statement stands in for the silence.
describe.skipIf(!ready)('pool.queryTimeoutMs', () => {
  const open = () =>
    createCoordinator({
      id: 'itqto',
      log: { type: 'memory' },
      participants: {
        erp: { driver: 'postgres', connectionString: pgUrl, pool: { queryTimeoutMs: 300 } },
        crm: { driver: 'mysql', uri: mysqlUrl, pool: { queryTimeoutMs: 300 } },
      },
      recovery: { intervalMs: 0 },
      logger: pino({ level: 'silent' }),
    });

  for (const [participant, sql] of [
    ['erp', 'select pg_sleep(3)'],
    ['crm', 'select sleep(3)'],
  ] as const) {
    it(`${participant}: a statement with no answer in time fails the transaction, and the coordinator stays usable`, async () => {
      const coord = await open();
      const err = await coord
        .transaction(async (tx) => {
          await tx.query('erp', 'select 1');
          await tx.query('crm', 'select 1');
          await tx.query(participant, sql);
        })
        .catch((e: unknown) => e);
      expect(TxcError.is(err, 'TXC_QUERY_FAILED')).toBe(true);
      expect((err as TxcError).retryable).toBe(true);
      const r = await coord.transaction(async (tx) => [await tx.query('erp', 'select 1 as x'), await tx.query('crm', 'select 1 as x')]);
      expect(r.value.map((q) => q.rows[0]?.['x'])).toEqual([1, 1]);
      await coord.close();
    });
  }
});
