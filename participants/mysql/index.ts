import mysql from 'mysql2';
import { assertParticipantName } from '../../coordinator/xid.js';
import type { Participant } from '../participant.js';
import { resolvePoolSettings } from '../pool-settings.js';
import type { MysqlParticipantConfig, ParticipantDeps } from '../participant-config.js';
import { timedPool } from './driver.js';
import { MysqlParticipant } from './participant.js';

export { MysqlParticipant, type MysqlParticipantOptions } from './participant.js';
export { MysqlBranch, type MysqlBranchHost } from './branch.js';
export { classifyMysqlError, type MysqlErrorClass, type MysqlErrorKind } from './errors.js';
export type { MysqlConnection, MysqlOkPacket, MysqlPool } from './driver.js';

/** A MySQL 8 / MariaDB participant over a mysql2 (callback API) pool built from `config` (plain transactions only with `localOnly`). */
export function createMysqlParticipant(name: string, config: MysqlParticipantConfig, deps: ParticipantDeps): Participant {
  assertParticipantName(name);
  const { max, acquireTimeoutMs, queryTimeoutMs } = resolvePoolSettings(name, config.pool);
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
  const pool = timedPool(raw, queryTimeoutMs);
  return new MysqlParticipant(name, pool, { acquireTimeoutMs, logger: deps.logger, localOnly: config.localOnly === true });
}
