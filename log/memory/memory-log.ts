import { TxcError } from '../../coordinator/errors.js';
import type { DecisionLog } from '../decision-log.js';
import { LiveSet } from '../live-set.js';
import type { LogRecord } from '../log-record.js';

/**
 * A decision log that keeps everything in memory: same liveness rules as the file log, nothing
 * survives the process. For tests and throwaway demos only.
 */
export function createMemoryLog(): DecisionLog {
  const live = new LiveSet();
  let closed = false;
  const closedError = (): TxcError => new TxcError('TXC_LOG_CLOSED', 'the in-memory decision log was closed');
  return {
    append(record: LogRecord, _force: boolean): Promise<void> {
      if (closed) return Promise.reject(closedError());
      let copy: LogRecord;
      try {
        // A copy, as the file log would store: later mutation by the caller must not rewrite
        // history, and a record JSON cannot hold must fail here as it would on disk.
        copy = JSON.parse(JSON.stringify(record)) as LogRecord;
      } catch (cause) {
        return Promise.reject(
          new TxcError('TXC_LOG_IO', `the record for gtrid ${record.gtrid} cannot be encoded as JSON`, { cause }),
        );
      }
      live.apply(copy);
      return Promise.resolve();
    },
    live: () => live.records(),
    compact: () => (closed ? Promise.reject(closedError()) : Promise.resolve()),
    close(): Promise<void> {
      closed = true;
      return Promise.resolve();
    },
  };
}
