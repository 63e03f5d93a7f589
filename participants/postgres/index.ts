import pg from 'pg';
import { TxcError } from '../../coordinator/errors.js';
import { assertParticipantName } from '../../coordinator/xid.js';
import type { Participant } from '../participant.js';
import type { ParticipantDeps, PostgresParticipantConfig } from '../participant-config.js';
import type { PgPool } from './driver.js';
import { PostgresParticipant } from './participant.js';

export { PostgresParticipant, type PostgresParticipantOptions } from './participant.js';
export { PostgresBranch, type PostgresBranchHost } from './branch.js';
export { classifyPgError, type PgErrorClass, type PgErrorKind } from './errors.js';
export type { PgClient, PgPool, PgResult, PgTransactionStatus } from './driver.js';

const DEFAULT_MAX = 10;
const DEFAULT_ACQUIRE_TIMEOUT_MS = 10_000;
const DEFAULT_QUERY_TIMEOUT_MS = 60_000;

/** A PostgreSQL participant over a node-postgres pool built from `config`. */
export function createPostgresParticipant(
  name: string,
  config: PostgresParticipantConfig,
  deps: ParticipantDeps,
): Participant {
  assertParticipantName(name);
  const max = positiveInt(config.pool?.max ?? DEFAULT_MAX, `participants.${name}.pool.max`);
  const acquireTimeoutMs = positiveInt(
    config.pool?.acquireTimeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_MS,
    `participants.${name}.pool.acquireTimeoutMs`,
  );
  const queryTimeoutMs = positiveInt(config.pool?.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS, `participants.${name}.pool.queryTimeoutMs`);
  const pool: PgPool = new pg.Pool({
    connectionString: config.connectionString,
    max,
    // A client-side read deadline (its error has no code, so it classifies as a lost
    // connection and the branch is dropped), and keepalives to notice a dead peer at all.
    query_timeout: queryTimeoutMs,
    keepAlive: true,
    // Our own timer reports TXC_POOL_TIMEOUT; pg-pool's, a little later, only clears the
    // abandoned wait (its error carries no code to tell it apart).
    connectionTimeoutMillis: acquireTimeoutMs + 1_000,
    application_name: `txcoord:${name}`,
  });
  return new PostgresParticipant(name, pool, { acquireTimeoutMs, logger: deps.logger });
}

function positiveInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new TxcError('TXC_CONFIG_INVALID', `${field} must be a positive integer, not ${String(value)}`);
  }
  return value;
}
