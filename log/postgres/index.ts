/**
 * The decision log in PostgreSQL tables, shared by several coordinator processes: each
 * transaction is owned through a lease by the process that started it, and taken over by
 * another when that lease expires.
 */
export { openPostgresLog, DEFAULT_LEASE_MS, DEFAULT_RETENTION_MS, type PostgresLogOptions } from './open-postgres-log.js';
export type { PostgresDecisionLog, PostgresLogStats } from './postgres-log.js';
export { inspectPostgresLog, type PostgresLogInspection, type InspectedInstance, type InspectedTransaction } from './inspect-postgres-log.js';
export { verifyPostgresLog, type PostgresLogVerification, type BadRecordRow } from './verify-postgres-log.js';
export { TABLE_NAMES } from './log-tables.js';
