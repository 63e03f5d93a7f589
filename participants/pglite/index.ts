import { TxcError } from '../../coordinator/errors.js';
import { assertParticipantName } from '../../coordinator/xid.js';
import type { Participant } from '../participant.js';
import type { ParticipantDeps, PgliteParticipantConfig } from '../participant-config.js';
import { openPglite } from './driver.js';
import { PgliteParticipant } from './participant.js';

export { PgliteParticipant, type PgliteParticipantOptions } from './participant.js';
export { PgliteBranch, type BranchContext } from './branch.js';
export { classifyPgliteError, type PgliteErrorClass, type PgliteErrorKind } from './errors.js';
export {
  openPglite,
  pgliteConf,
  type PgliteDriver,
  type PgliteOpener,
  type PgliteOpenOptions,
  type PgliteResults,
} from './driver.js';

const DEFAULT_MAX_PREPARED = 64;
const DEFAULT_ACQUIRE_TIMEOUT_MS = 10_000;
// PostgreSQL's own ceiling for max_prepared_transactions.
const MAX_PREPARED_LIMIT = 262_143;

/** A PGlite participant on `config.dataDir`; PGlite itself starts on first use (preflight or begin). */
export function createPgliteParticipant(name: string, config: PgliteParticipantConfig, deps: ParticipantDeps): Participant {
  assertParticipantName(name);
  const dataDir = config.dataDir;
  // idb:// and memory:// would give a participant whose prepared branches vanish with the
  // process, which breaks the recovery guarantee: only file-system directories are accepted.
  if (typeof dataDir !== 'string' || dataDir.trim() === '' || dataDir.includes('://')) {
    const field = `participants.${name}.dataDir`;
    throw new TxcError('TXC_CONFIG_INVALID', `${field} must be a file-system directory, not ${JSON.stringify(dataDir)}`);
  }
  const maxPreparedTransactions = integer(
    config.maxPreparedTransactions ?? DEFAULT_MAX_PREPARED,
    1,
    MAX_PREPARED_LIMIT,
    `participants.${name}.maxPreparedTransactions`,
  );
  const acquireTimeoutMs = integer(
    config.acquireTimeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_MS,
    0,
    2_147_483_647,
    `participants.${name}.acquireTimeoutMs`,
  );
  const { logger } = deps;
  const localOnly = config.localOnly === true;
  return new PgliteParticipant({ name, dataDir, maxPreparedTransactions, acquireTimeoutMs, logger, open: openPglite, localOnly });
}

function integer(value: number, min: number, max: number, field: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TxcError('TXC_CONFIG_INVALID', `${field} must be an integer from ${min} to ${max}, not ${String(value)}`);
  }
  return value;
}
