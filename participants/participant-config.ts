import type { BackoffConfig } from '../coordinator/types.js';
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

/** Circuit breaker around one participant's calls (opossum). */
export interface BreakerConfig {
  /** Failure percentage over the rolling window that opens the breaker. Default 50. */
  readonly errorThresholdPercentage?: number;
  /** Calls in the window before the percentage counts. Default 5. */
  readonly volumeThreshold?: number;
  /** How long the breaker stays open before letting one trial call through. Default 10 000 ms. */
  readonly resetTimeoutMs?: number;
  /** Rolling window length. Default 10 000 ms. */
  readonly rollingCountTimeoutMs?: number;
  /** false turns the breaker off for this participant. Default true. */
  readonly enabled?: boolean;
}

/**
 * A statement the HTTP service may run by name (`POST /v1/transactions/execute`, saga steps),
 * so no raw SQL crosses the network. `:name` marks a parameter; values are always bound. Where
 * the participant cannot prepare, `compensate` (same parameters) undoes it, or is `false` for a
 * statement that needs no undo (a read), as `tx.query`'s `compensate: false`.
 */
export type NamedStatement = string | { readonly sql: string; readonly compensate?: string | false };

/** Retry and breaker settings any participant may carry. */
export interface ResilienceConfig {
  /** Backoff of phase-two retries, saga retries and compensations for this participant (overrides the coordinator's). */
  readonly backoff?: BackoffConfig;
  readonly breaker?: BreakerConfig;
  /** Named statements for the HTTP service (database participants). */
  readonly statements?: Readonly<Record<string, NamedStatement>>;
}

/** A PostgreSQL participant (node-postgres). */
export interface PostgresParticipantConfig extends ResilienceConfig {
  readonly driver: 'postgres';
  /** e.g. `postgres://app:${PGPASSWORD}@db1:5432/erp`. */
  readonly connectionString: string;
  readonly pool?: PoolConfig;
  /**
   * Use only local transactions (no PREPARE TRANSACTION): the participant then counts as a
   * one-phase database, like SQL Server. For servers with prepared transactions disabled, and
   * for exercising the last-resource and saga paths on a real database.
   */
  readonly localOnly?: boolean;
}

/** A MySQL 8 / MariaDB participant (mysql2, XA). */
export interface MysqlParticipantConfig extends ResilienceConfig {
  readonly driver: 'mysql';
  /** e.g. `mysql://app:${MYSQL_PASSWORD}@db2:3306/crm`. */
  readonly uri: string;
  readonly pool?: PoolConfig;
  /** Use only local transactions (no XA): see {@link PostgresParticipantConfig.localOnly}. */
  readonly localOnly?: boolean;
}

/** A SQL Server participant (tedious): local transactions only, so a last resource or a saga participant. */
export interface MssqlParticipantConfig extends ResilienceConfig {
  readonly driver: 'mssql';
  /**
   * `mssql://user:${MSSQL_PASSWORD}@host:1433/database?encrypt=true&trustServerCertificate=false`.
   */
  readonly connectionString: string;
  readonly pool?: PoolConfig;
}

/** An Oracle Database participant (node-oracledb Thin mode, real 2PC with the tpc* calls). */
export interface OracleParticipantConfig extends ResilienceConfig {
  readonly driver: 'oracle';
  /** `oracle://user:${ORACLE_PASSWORD}@host:1521/service_name`. */
  readonly connectionString: string;
  readonly pool?: PoolConfig;
}

/** An HTTP service taking part in sagas only (it can neither prepare nor roll back). */
export interface HttpParticipantConfig extends ResilienceConfig {
  readonly driver: 'http';
  /** e.g. `https://billing.internal/api`; each step's path is appended. */
  readonly baseUrl: string;
  /** Sent with every request (e.g. an authorization header; use `${ENV}` for secrets). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Per-attempt timeout. Default 10 000 ms. */
  readonly timeoutMs?: number;
}

/** An embedded PostgreSQL (PGlite) participant, in-process, one connection. */
export interface PgliteParticipantConfig extends ResilienceConfig {
  readonly driver: 'pglite';
  /** Directory of the database files; created on first open. */
  readonly dataDir: string;
  /** `max_prepared_transactions` for this database; must stay the same on every open. Default 64. */
  readonly maxPreparedTransactions?: number;
  /** How long a transaction waits for the single connection. Default 10 000 ms. */
  readonly acquireTimeoutMs?: number;
  /** Use only local transactions: see {@link PostgresParticipantConfig.localOnly}. */
  readonly localOnly?: boolean;
}

/** An adapter instance supplied by the caller (custom databases, tests). */
export interface CustomParticipantConfig extends ResilienceConfig {
  readonly driver: 'custom';
  readonly adapter: Participant;
}

/** Every participant configuration. */
export type ParticipantConfig =
  | PostgresParticipantConfig
  | MysqlParticipantConfig
  | PgliteParticipantConfig
  | MssqlParticipantConfig
  | OracleParticipantConfig
  | HttpParticipantConfig
  | CustomParticipantConfig;

/** What an adapter factory receives besides its own config. */
export interface ParticipantDeps {
  /** Logger for this participant (a child of the coordinator's). */
  readonly logger: Logger;
}
