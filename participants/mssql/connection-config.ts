import { TxcError } from '../../coordinator/errors.js';
import { redactUrl } from '../../coordinator/logger.js';
import type { PoolSettings } from '../pool-settings.js';
import type { TediousConnectionConfig } from './driver.js';

/** tedious `ISOLATION_LEVEL.READ_COMMITTED` (a unit test checks it against tedious). */
export const READ_COMMITTED = 0x02;

const DEFAULT_PORT = 1433;
const QUERY_KEYS = new Set(['encrypt', 'trustServerCertificate']);

/**
 * The tedious settings of participant `name` from its connection string
 * `mssql://user:password@host:1433/database?encrypt=true&trustServerCertificate=false`
 * (user and password percent-encoded; port 1433, `encrypt=true` and
 * `trustServerCertificate=false` by default; `encrypt=strict` for TDS 8.0). `queryTimeoutMs`
 * becomes tedious's `requestTimeout`, which covers BEGIN/COMMIT/ROLLBACK too. TXC_CONFIG_INVALID
 * names the problem; the password never appears in it.
 */
export function tediousConnectionConfig(name: string, connectionString: string, settings: PoolSettings): TediousConnectionConfig {
  const field = `participants.${name}.connectionString`;
  const invalid = (problem: string) =>
    new TxcError('TXC_CONFIG_INVALID', `${field} ${problem} (expected mssql://user:password@host:1433/database?encrypt=true)`, { details: { field } });
  const decode = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw invalid('has a malformed percent-encoding');
    }
  };
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw invalid(`is not a URL: ${redactUrl(connectionString)}`);
  }
  if (url.protocol !== 'mssql:') throw invalid(`has scheme ${url.protocol.replace(/:$/, '')}, not mssql`);
  const server = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!server) throw invalid('names no host');
  const userName = decode(url.username);
  if (!userName) throw invalid('names no user (SQL Server authentication needs one)');
  const port = url.port ? Number(url.port) : DEFAULT_PORT;
  const path = decode(url.pathname.replace(/^\//, ''));
  if (path.includes('/')) throw invalid(`has a path with more than a database name`);

  for (const key of url.searchParams.keys()) {
    if (!QUERY_KEYS.has(key)) throw invalid(`has unknown option ${key} (known: ${[...QUERY_KEYS].join(', ')})`);
  }
  const encryptText = url.searchParams.get('encrypt') ?? 'true';
  if (encryptText !== 'true' && encryptText !== 'false' && encryptText !== 'strict') throw invalid('has encrypt other than true, false or strict');
  const trustText = url.searchParams.get('trustServerCertificate') ?? 'false';
  if (trustText !== 'true' && trustText !== 'false') throw invalid('has trustServerCertificate other than true or false');

  return {
    server,
    authentication: { type: 'default', options: { userName, password: decode(url.password) } },
    options: {
      port,
      ...(path ? { database: path } : {}),
      encrypt: encryptText === 'strict' ? 'strict' : encryptText === 'true',
      trustServerCertificate: trustText === 'true',
      requestTimeout: settings.queryTimeoutMs,
      // Logging in must not outlast the caller's wait for a connection.
      connectTimeout: settings.acquireTimeoutMs,
      appName: `txcoord:${name}`,
      abortTransactionOnError: false,
      isolationLevel: READ_COMMITTED,
      connectionIsolationLevel: READ_COMMITTED,
      useUTC: true,
      useColumnNames: false,
      rowCollectionOnDone: false,
      rowCollectionOnRequestCompletion: false,
    },
  };
}
