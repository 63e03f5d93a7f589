import mysql from 'mysql2/promise';
import { TxcError } from '../../coordinator/errors.js';
import { assertParticipantName } from '../../coordinator/xid.js';
import type { Participant } from '../participant.js';
import type { MysqlParticipantConfig, ParticipantDeps } from '../participant-config.js';
import { withQueryTimeout } from './driver.js';
import { MysqlParticipant } from './participant.js';

export { MysqlParticipant, type MysqlParticipantOptions } from './participant.js';
export { MysqlBranch, type MysqlBranchHost } from './branch.js';
export { classifyMysqlError, type MysqlErrorClass, type MysqlErrorKind } from './errors.js';
export type { MysqlConnection, MysqlOkPacket, MysqlPool } from './driver.js';

const DEFAULT_MAX = 10;
const DEFAULT_ACQUIRE_TIMEOUT_MS = 10_000;
const DEFAULT_QUERY_TIMEOUT_MS = 60_000;

/** A MySQL 8 / MariaDB participant over a mysql2 pool built from `config`. */
export function createMysqlParticipant(name: string, config: MysqlParticipantConfig, deps: ParticipantDeps): Participant {
  assertParticipantName(name);
  const max = positiveInt(config.pool?.max ?? DEFAULT_MAX, `participants.${name}.pool.max`);
  const acquireTimeoutMs = positiveInt(
    config.pool?.acquireTimeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_MS,
    `participants.${name}.pool.acquireTimeoutMs`,
  );
  const queryTimeoutMs = positiveInt(config.pool?.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS, `participants.${name}.pool.queryTimeoutMs`);
  const raw = mysql.createPool({
    uri: config.uri,
    connectionLimit: max,
    waitForConnections: true,
    queueLimit: 0,
    connectTimeout: acquireTimeoutMs,
    enableKeepAlive: true,
    // mysql2 otherwise captures a stack trace for every statement (~5% of the process's CPU in
    // the transfer benchmark); driver errors reach users wrapped in a TxcError anyway.
    trace: false,
    // Never multipleStatements: user SQL shares these connections.
  });
  const pool = withQueryTimeout(raw, queryTimeoutMs);
  return new MysqlParticipant(name, pool, { acquireTimeoutMs, logger: deps.logger });
}

function positiveInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new TxcError('TXC_CONFIG_INVALID', `${field} must be a positive integer, not ${String(value)}`);
  }
  return value;
}
