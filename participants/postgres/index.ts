import pg from 'pg';
import { assertParticipantName } from '../../coordinator/xid.js';
import type { Participant } from '../participant.js';
import { resolvePoolSettings } from '../pool-settings.js';
import type { ParticipantDeps, PostgresParticipantConfig } from '../participant-config.js';
import type { PgPool } from './driver.js';
import { PostgresParticipant } from './participant.js';

export { PostgresParticipant, type PostgresParticipantOptions } from './participant.js';
export { PostgresBranch, type PostgresBranchHost } from './branch.js';
export { classifyPgError, type PgErrorClass, type PgErrorKind } from './errors.js';
export type { PgClient, PgPool, PgResult, PgTransactionStatus } from './driver.js';

/** A PostgreSQL participant over a node-postgres pool built from `config` (local transactions only with `localOnly`). */
export function createPostgresParticipant(
  name: string,
  config: PostgresParticipantConfig,
  deps: ParticipantDeps,
): Participant {
  assertParticipantName(name);
  const { max, acquireTimeoutMs, queryTimeoutMs } = resolvePoolSettings(name, config.pool);
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
  return new PostgresParticipant(name, pool, { acquireTimeoutMs, logger: deps.logger, localOnly: config.localOnly === true });
}
