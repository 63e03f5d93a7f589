/**
 * The process the demo crashes on purpose. Usage (spawned by the demo, not by people):
 * `node demo-worker.js <demo dir> <transfer plan JSON>`.
 *
 * It opens the demo's databases and decision log exactly like the demo does, runs one transfer,
 * and at the protocol point `after-commit` of the first bank kills itself with SIGKILL: the commit
 * decision is durable, the first bank has committed, the second is still prepared. Each step is
 * written to stdout synchronously, so every line reaches the parent before the kill.
 * @packageDocumentation
 */
import { writeSync } from 'node:fs';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { createDefaultLogger } from '../../coordinator/logger.js';
import type { ProtocolPoint, ProtocolPointInfo } from '../../coordinator/types.js';
import type { PgliteParticipantConfig } from '../../participants/participant-config.js';
import { createParticipant } from '../../participants/registry.js';
import { transfer, type TransferPlan } from './bank.js';
import { BANKS, demoConfig } from './demo-config.js';
import { holdCommitUntil } from './hold-commit.js';

const say = (line: string) => writeSync(1, `${line}\n`);

const [dir, planJson] = process.argv.slice(2);
if (!dir || !planJson) {
  process.stderr.write('usage: demo-worker.js <demo dir> <transfer plan JSON>\n');
  process.exit(2);
}
const plan = JSON.parse(planJson) as TransferPlan;
const config = demoConfig(dir);
const logger = createDefaultLogger(process.env['TXCOORD_LOG_LEVEL'] ?? 'error');
const [first, second] = BANKS;

// The gate never opens: the process dies at the first bank's after-commit, before the second
// bank's COMMIT PREPARED is sent. That is the crash window this demo shows.
const never = new Promise<void>(() => undefined);
const adapters = await Promise.all(
  BANKS.map(async (bank) => {
    const p = await createParticipant(bank, config.participants[bank] as PgliteParticipantConfig, { logger: logger.child({ participant: bank }) });
    return [bank, bank === second ? holdCommitUntil(p, never) : p] as const;
  }),
);

const onProtocolPoint = (point: ProtocolPoint, info: ProtocolPointInfo): void => {
  if (point === 'after-prepare') say(`${info.participant}: PREPARE TRANSACTION acknowledged`);
  if (point === 'after-decision') say('commit decision forced to the decision log: from now on the transfer is committed');
  if (point === 'after-commit' && info.participant === first) {
    say(`${first}: COMMIT PREPARED acknowledged; ${second} is still prepared`);
    say('protocol point after-commit reached: SIGKILL');
    process.kill(process.pid, 'SIGKILL');
  }
};

const coord = await createCoordinator({
  ...config,
  participants: Object.fromEntries(adapters.map(([bank, adapter]) => [bank, { driver: 'custom' as const, adapter }])),
  logger,
  onProtocolPoint,
});
say(`started transfer ${plan.id}`);
await transfer(coord, plan);
// Reaching this line means the crash did not happen: the parent reports it as a failure.
say(`transfer ${plan.id} finished without a crash`);
await coord.close();
process.exit(3);
