import { Connection, Request, TYPES } from 'tedious';
import { assertParticipantName } from '../../coordinator/xid.js';
import type { Participant } from '../participant.js';
import type { MssqlParticipantConfig, ParticipantDeps } from '../participant-config.js';
import { resolvePoolSettings } from '../pool-settings.js';
import { tediousConnectionConfig } from './connection-config.js';
import type { TediousDriver } from './driver.js';
import { MssqlParticipant } from './participant.js';
import { createSessionPool } from './pool.js';

export { MssqlParticipant, type MssqlParticipantOptions } from './participant.js';
export { MssqlBranch, type MssqlBranchHost } from './branch.js';
export { classifyMssqlError, type MssqlErrorClass, type MssqlErrorKind } from './errors.js';
export { createSessionPool, type MssqlSessionPool, type SessionPoolOptions } from './pool.js';
export { MssqlSession } from './session.js';
export { tediousConnectionConfig } from './connection-config.js';
export { tediousParameter, type TediousParameter } from './parameters.js';
export type {
  TediousColumn,
  TediousConnection,
  TediousConnectionConfig,
  TediousDataType,
  TediousDriver,
  TediousRequest,
  TediousTypes,
} from './driver.js';

/**
 * tedious itself behind the adapter's driver interface; the assignments also check, at compile
 * time, that the real Connection, Request and TYPES fit the slice declared in driver.ts.
 */
export const tediousDriver: TediousDriver = {
  createConnection: (config) => new Connection(config),
  createRequest: (sql, callback) => new Request(sql, callback),
  types: TYPES,
};

/**
 * A SQL Server participant over a tarn pool of tedious connections built from `config`:
 * one-phase only (capabilities `{ twoPhase: false, localTransactions: true }`).
 */
export function createMssqlParticipant(name: string, config: MssqlParticipantConfig, deps: ParticipantDeps): Participant {
  assertParticipantName(name);
  const settings = resolvePoolSettings(name, config.pool);
  const connection = tediousConnectionConfig(name, config.connectionString, settings);
  const logger = deps.logger;
  const pool = createSessionPool({
    driver: tediousDriver,
    config: connection,
    max: settings.max,
    acquireTimeoutMs: settings.acquireTimeoutMs,
    logger,
  });
  return new MssqlParticipant(name, pool, { acquireTimeoutMs: settings.acquireTimeoutMs, logger, types: tediousDriver.types });
}
