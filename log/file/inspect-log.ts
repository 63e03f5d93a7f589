import { TxcError } from '../../coordinator/errors.js';
import { LiveSet } from '../live-set.js';
import type { LogRecord } from '../log-record.js';
import { scanLogDir, type LogDirScan } from './scan-log-dir.js';

/** A record with where it lives. */
export interface InspectedRecord {
  readonly file: string;
  readonly offset: number;
  readonly record: LogRecord;
  /** In a segment a compaction snapshot replaced; not part of the live set. */
  readonly superseded: boolean;
}

/** Result of {@link inspectLogDir}. */
export interface LogInspection {
  /** Every readable record, superseded ones included, in log order. */
  readonly records: InspectedRecord[];
  /** The live records replay would produce from the readable, non-superseded records. */
  readonly live: LogRecord[];
  /** Damaged byte ranges that were skipped to reach the records after them. */
  readonly gaps: LogDirScan['gaps'];
  readonly tornTail?: LogDirScan['tornTail'];
  /** The first damage that makes opening the log fail, if any. */
  readonly corruption?: LogDirScan['corruption'];
}

/**
 * Reads everything that can be read from a log directory, without taking its lock or changing
 * anything. Unlike opening, it does not stop at damage: it skips to the next valid record and
 * reports the skipped range, so an operator can see what a damaged log still holds (the live
 * set is then a best effort). Throws TXC_LOG_IO if the directory cannot be read.
 */
export async function inspectLogDir(dir: string): Promise<LogInspection> {
  const records: InspectedRecord[] = [];
  const live = new LiveSet();
  let scan: LogDirScan;
  try {
    scan = await scanLogDir(
      dir,
      (record, file, offset, superseded) => {
        records.push({ file, offset, record, superseded });
        if (!superseded) live.apply(record);
      },
      { salvage: true, readSuperseded: true },
    );
  } catch (cause) {
    throw new TxcError('TXC_LOG_IO', `cannot read the decision log in ${dir}`, { cause, details: { dir } });
  }
  return {
    records,
    live: [...live.records()],
    gaps: scan.gaps,
    ...(scan.tornTail ? { tornTail: scan.tornTail } : {}),
    ...(scan.corruption ? { corruption: scan.corruption } : {}),
  };
}
