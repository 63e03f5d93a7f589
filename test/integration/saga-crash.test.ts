/**
 * Real crashes of a saga: a child coordinator process is SIGKILLed at each saga step point
 * (before an action, after it, before and after a compensation); then the real CLI recovers.
 * The HTTP services stand apart (in this test process) and keep ledgers: every effect must be
 * applied at most once, and the saga must end committed or fully compensated.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLedgerService, type LedgerService } from '../fixtures/ledger-service.js';
import { CLI, ROOT, runNode } from './run-node.js';

const CHILD = join(ROOT, 'dist/test/fixtures/saga-crash-child.js');
const work = mkdtempSync(join(tmpdir(), 'txc-saga-crash-'));
let inventory: LedgerService;
let billing: LedgerService;

beforeAll(async () => {
  inventory = await startLedgerService();
  billing = await startLedgerService();
});

afterAll(async () => {
  await inventory.close();
  await billing.close();
  if (process.env['TXCOORD_KEEP_TEST_DATA'] !== '1') await rm(work, { recursive: true, force: true });
});

/** How many ledger entries of `op` the service applied since `from`. */
function applied(service: LedgerService, op: string, from: number): number {
  return service.ledger().filter((e) => e.seq > from && e.op === op).length;
}

const SCENARIOS = [
  { point: 'saga-before-action', step: 'reserve', refuse: false, expected: 'committed' },
  { point: 'saga-after-action', step: 'reserve', refuse: false, expected: 'committed' },
  { point: 'saga-before-action', step: 'charge', refuse: false, expected: 'committed' },
  { point: 'saga-after-action', step: 'charge', refuse: false, expected: 'committed' },
  { point: 'saga-before-compensate', step: 'reserve', refuse: true, expected: 'compensated' },
  { point: 'saga-after-compensate', step: 'reserve', refuse: true, expected: 'compensated' },
] as const;

describe('SIGKILL of the coordinator during a saga, then `txcoord recover`', () => {
  for (const [i, s] of SCENARIOS.entries()) {
    it(`at ${s.point} of ${s.step}${s.refuse ? ' (charge refused, so compensating)' : ''}: ends ${s.expected}, each effect at most once`, async () => {
      const config = join(work, `saga-${i}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          id: `sagacrash${i}`,
          log: { type: 'file', dir: join(work, `log-${i}`) },
          participants: {
            inventory: { driver: 'http', baseUrl: inventory.url, timeoutMs: 5000 },
            billing: { driver: 'http', baseUrl: billing.url, timeoutMs: 5000 },
          },
          recovery: { onStart: false, intervalMs: 0 },
          backoff: { initialMs: 10, maxMs: 100 },
        }),
      );
      billing.faults({ reset: true, ...(s.refuse ? { rejectWhen: { op: 'charge', field: 'cents', equals: 500 } } : {}) });
      inventory.faults({ reset: true });
      const invFrom = inventory.ledger().length;
      const billFrom = billing.ledger().length;

      const child = await runNode(CHILD, [config, s.point, s.step]);
      expect(child.signal, child.stderr + child.stdout).toBe('SIGKILL');

      billing.faults({ reset: true, ...(s.refuse ? { rejectWhen: { op: 'charge', field: 'cents', equals: 500 } } : {}) });
      const rec = await runNode(CLI, ['recover', '--config', config, '--json']);
      expect(rec.code, rec.stderr).toBe(0);
      const report = JSON.parse(rec.stdout) as { sagas: { resumed: number; committed: number; compensated: number } };
      expect(report.sagas.resumed).toBe(1);
      expect(report.sagas[s.expected]).toBe(1);

      const counts = {
        reserve: applied(inventory, 'reserve', invFrom),
        release: applied(inventory, 'release', invFrom),
        charge: applied(billing, 'charge', billFrom),
        refund: applied(billing, 'refund', billFrom),
      };
      for (const n of Object.values(counts)) expect(n).toBeLessThanOrEqual(1);
      if (s.expected === 'committed') expect(counts).toEqual({ reserve: 1, release: 0, charge: 1, refund: 0 });
      else expect(counts).toEqual({ reserve: 1, release: 1, charge: 0, refund: 0 });

      // A second pass finds nothing left.
      const again = await runNode(CLI, ['recover', '--config', config, '--json']);
      expect(again.code).toBe(0);
      expect((JSON.parse(again.stdout) as { sagas: { resumed: number } }).sagas.resumed).toBe(0);
    });
  }
});
