import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { assertParticipantName } from '../../coordinator/xid.js';
import type { Participant } from '../participant.js';
import type { OracleParticipantConfig, ParticipantDeps } from '../participant-config.js';
import { resolvePoolSettings, type PoolSettings } from '../pool-settings.js';
import { OUT_FORMAT_OBJECT, TPC_BEGIN_NEW, TPC_END_NORMAL, type OracleDriverModule, type OraclePoolAttributes } from './driver.js';
import { OracleParticipant } from './participant.js';

export { OracleParticipant, type OracleParticipantOptions } from './participant.js';
export { OracleBranch, type OracleBranchHost, type OracleBranchMode } from './branch.js';
export { classifyOracleError, type OracleErrorClass, type OracleErrorKind } from './errors.js';
export type {
  OracleConnection,
  OracleDriverModule,
  OracleExecuteOptions,
  OracleExecuteResult,
  OraclePool,
  OraclePoolAttributes,
  OracleXid,
} from './driver.js';

/**
 * An Oracle participant over a node-oracledb pool built from `config`, in Thin mode (this
 * adapter never calls initOracleClient). The pool is created on first use.
 */
export function createOracleParticipant(name: string, config: OracleParticipantConfig, deps: ParticipantDeps): Participant {
  assertParticipantName(name);
  const settings = resolvePoolSettings(name, config.pool);
  const attributes = oraclePoolAttributes(name, config.connectionString, settings);
  const driver = loadDriver(deps.logger);
  return new OracleParticipant(name, () => driver.createPool(attributes), {
    acquireTimeoutMs: settings.acquireTimeoutMs,
    queryTimeoutMs: settings.queryTimeoutMs,
    logger: deps.logger,
  });
}

/**
 * The createPool attributes for `oracle://user:password@host[:port]/service_name[?params]`
 * (user and password percent-encoded; params are passed on as Easy Connect parameters).
 * TXC_CONFIG_INVALID names the field, never its value (it holds a password).
 */
export function oraclePoolAttributes(name: string, connectionString: string, pool: PoolSettings): OraclePoolAttributes {
  const field = `participants.${name}.connectionString`;
  const invalid = (why: string) =>
    new TxcError('TXC_CONFIG_INVALID', `${field} ${why}; expected oracle://user:password@host:port/service_name`, { details: { field } });
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw invalid('is not a URL');
  }
  if (url.protocol !== 'oracle:') throw invalid(`has scheme ${url.protocol.replace(/:$/, '')}, not oracle`);
  if (!url.hostname) throw invalid('has no host');
  const service = url.pathname.replace(/^\//, '');
  // service_name, optionally :server_type and /instance_name, as Easy Connect has them.
  if (!/^[A-Za-z0-9_.$#-]+(:[A-Za-z]+)?(\/[A-Za-z0-9_.$#-]+)?$/.test(service)) throw invalid('has no valid service name');
  let user: string;
  let password: string;
  try {
    user = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    throw invalid('has a badly percent-encoded user or password');
  }
  if (!user) throw invalid('has no user');
  return {
    user,
    password,
    connectString: `${url.host}/${service}${url.search}`,
    poolMin: 0,
    poolMax: pool.max,
    poolIncrement: 1,
    // Our own timer reports TXC_POOL_TIMEOUT; the pool's queue (NJS-040) gives up a little later.
    queueTimeout: pool.acquireTimeoutMs + 1_000,
    connectTimeout: Math.max(1, Math.ceil(pool.acquireTimeoutMs / 1000)),
    // TCP keepalive after a minute idle: without it a silently dead peer is never noticed.
    expireTime: 1,
  };
}

/**
 * node-oracledb, loaded with require: it is CommonJS and ships no type declarations, so only
 * the slice typed in driver.ts is used, and its constants are checked against ours.
 */
function loadDriver(logger: Logger): OracleDriverModule {
  const driver = createRequire(import.meta.url)('oracledb') as OracleDriverModule;
  if (driver.OUT_FORMAT_OBJECT !== OUT_FORMAT_OBJECT || driver.TPC_BEGIN_NEW !== TPC_BEGIN_NEW || driver.TPC_END_NORMAL !== TPC_END_NORMAL) {
    throw new TxcError('TXC_UNSUPPORTED', 'The installed oracledb package has different TPC constants than this adapter was written for (node-oracledb 6.6 or later is needed)');
  }
  if (!driver.thin) {
    // Someone else in this process called initOracleClient(): Thick mode also has the tpc*
    // calls, but the behaviour documented in docs/oracle.md was verified for Thin only.
    logger.warn('node-oracledb is in Thick mode in this process; the Oracle participant was verified in Thin mode');
  }
  return driver;
}
