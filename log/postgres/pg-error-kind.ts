import { classifyPgError } from '../../participants/postgres/errors.js';

// Another session created the same object between our "if not exists" check and our CREATE:
// unique_violation on the catalog, duplicate_table, duplicate_object, duplicate_schema.
const CREATED_CONCURRENTLY = new Set(['23505', '42P07', '42710', '42P06']);

/** Whether a DDL error only means another process created the object at the same time. */
export function isCreatedConcurrently(err: unknown): boolean {
  return CREATED_CONCURRENTLY.has(classifyPgError(err).sqlState ?? '');
}

/** Whether the connection that ran the failed statement must be destroyed rather than reused. */
export function isConnectionLost(err: unknown): boolean {
  return classifyPgError(err).kind === 'connection';
}

/** Whether retrying may succeed (lost connection, deadlock, serialization failure, server busy). */
export function isRetryable(err: unknown): boolean {
  return classifyPgError(err).retryable;
}
