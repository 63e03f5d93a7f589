import type { Logger } from 'pino';
import { TxcError } from '../coordinator/errors.js';
import type { DecisionLog, LogConfig } from './decision-log.js';
import { openFileLog } from './file/file-log.js';
import { createMemoryLog } from './memory/memory-log.js';

/** Options of {@link openLog}. */
export interface OpenLogOptions {
  /** Receives the log's warnings (torn tail cut, stale lock taken over). */
  readonly logger?: Logger;
  /** The coordinator id opening it: the owner of what it writes in a shared log. */
  readonly coordinatorId?: string;
}

/**
 * Opens the decision log that `config` describes. Throws TXC_CONFIG_INVALID for an unknown
 * `type`, and whatever the backend throws (see {@link openFileLog}).
 */
export async function openLog(config: LogConfig, opts: OpenLogOptions = {}): Promise<DecisionLog> {
  switch (config.type) {
    case 'file':
      return openFileLog(config, opts.logger ? { logger: opts.logger } : {});
    case 'memory':
      return createMemoryLog();
    case 'postgres': {
      if (!opts.coordinatorId) throw new TxcError('TXC_CONFIG_INVALID', 'A shared log needs the coordinator id of the process opening it', { details: { field: 'id' } });
      const { openPostgresLog } = await import('./postgres/index.js');
      return openPostgresLog(config, { coordinatorId: opts.coordinatorId, ...(opts.logger ? { logger: opts.logger } : {}) });
    }
    default: {
      const type: unknown = (config as { type?: unknown }).type;
      throw new TxcError('TXC_CONFIG_INVALID', `log.type must be "file", "postgres" or "memory", not ${JSON.stringify(type)}`, {
        details: { field: 'log.type' },
      });
    }
  }
}
