import { TxcError } from '../../coordinator/errors.js';

/**
 * The only schema names the log accepts. The name is spliced into SQL (identifiers cannot be
 * bound parameters), so it is restricted to a shape that needs no escaping beyond the quotes.
 */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Qualified, quoted names of the log's tables in one schema, ready to splice into SQL. */
export interface LogTables {
  /** The schema, unquoted (as configured). */
  readonly schema: string;
  /** Quoted schema name. */
  readonly quotedSchema: string;
  /** Every record ever appended, in `seq` order. */
  readonly records: string;
  /** One row per transaction or saga that has records: who owns it, until when, whether it ended. */
  readonly owners: string;
  /** One row per coordinator id: the lease of the process using it, and who recovers it when dead. */
  readonly instances: string;
}

/** Base names of the tables; prefixed because `public` is usually shared with application tables. */
export const TABLE_NAMES = {
  records: 'txcoord_log_records',
  owners: 'txcoord_log_owners',
  instances: 'txcoord_log_instances',
} as const;

/** The table names in `schema` (default `public`); TXC_CONFIG_INVALID for a name outside {@link SCHEMA_NAME}. */
export function logTables(schema = 'public'): LogTables {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new TxcError('TXC_CONFIG_INVALID', `log.schema ${JSON.stringify(schema)} must match ${String(SCHEMA_NAME)}`, {
      details: { field: 'log.schema' },
    });
  }
  const q = `"${schema}"`;
  return {
    schema,
    quotedSchema: q,
    records: `${q}.${TABLE_NAMES.records}`,
    owners: `${q}.${TABLE_NAMES.owners}`,
    instances: `${q}.${TABLE_NAMES.instances}`,
  };
}
