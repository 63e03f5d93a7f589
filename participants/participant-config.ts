import type { Logger } from 'pino';
import type { Participant } from './participant.js';

/** Pool settings shared by the server-backed adapters. */
export interface PoolConfig {
  /** Most connections kept open. Default 10. */
  readonly max?: number;
  /** How long `begin` waits for a free connection before TXC_POOL_TIMEOUT. Default 10 000 ms. */
  readonly acquireTimeoutMs?: number;
  /**
   * Longest any one statement (including PREPARE and COMMIT) may wait for an answer before its
   * connection is taken as dead: without it a network that silently drops packets would hang
   * the transaction forever. Default 60 000 ms.
   */
  readonly queryTimeoutMs?: number;
}

/** A PostgreSQL participant (node-postgres). */
export interface PostgresParticipantConfig {
  readonly driver: 'postgres';
  /** e.g. `postgres://app:${PGPASSWORD}@db1:5432/erp`. */
  readonly connectionString: string;
  readonly pool?: PoolConfig;
}

/** A MySQL 8 / MariaDB participant (mysql2, XA). */
export interface MysqlParticipantConfig {
  readonly driver: 'mysql';
  /** e.g. `mysql://app:${MYSQL_PASSWORD}@db2:3306/crm`. */
  readonly uri: string;
  readonly pool?: PoolConfig;
}

/** An embedded PostgreSQL (PGlite) participant, in-process, one connection. */
export interface PgliteParticipantConfig {
  readonly driver: 'pglite';
  /** Directory of the database files; created on first open. */
  readonly dataDir: string;
  /** `max_prepared_transactions` for this database; must stay the same on every open. Default 64. */
  readonly maxPreparedTransactions?: number;
  /** How long a transaction waits for the single connection. Default 10 000 ms. */
  readonly acquireTimeoutMs?: number;
}

/** An adapter instance supplied by the caller (custom databases, tests). */
export interface CustomParticipantConfig {
  readonly driver: 'custom';
  readonly adapter: Participant;
}

/** Every participant configuration. */
export type ParticipantConfig =
  | PostgresParticipantConfig
  | MysqlParticipantConfig
  | PgliteParticipantConfig
  | CustomParticipantConfig;

/** What an adapter factory receives besides its own config. */
export interface ParticipantDeps {
  /** Logger for this participant (a child of the coordinator's). */
  readonly logger: Logger;
}
