import { TxcError } from '../../coordinator/errors.js';
import { LiveSet } from '../live-set.js';
import { scanLogDir, type LogPosition } from './scan-log-dir.js';
import type { SegmentKind } from './segment-file.js';

/** One segment as {@link verifyLogDir} saw it. */
export interface VerifiedSegment {
  readonly file: string;
  readonly records: number;
  readonly bytes: number;
  readonly kind: SegmentKind | 'partial' | 'bad';
  /** Left over from an interrupted compaction: not read, deleted on the next open. */
  readonly superseded: boolean;
}

/** Result of {@link verifyLogDir}. */
export interface LogVerification {
  /**
   * False only for corruption (damage no crash explains; opening would throw TXC_LOG_CORRUPT).
   * A torn tail leaves it true: it is the expected trace of a crash and the next open cuts it.
   */
  readonly ok: boolean;
  readonly segments: VerifiedSegment[];
  /** Records read (superseded segments excluded). */
  readonly records: number;
  /** Records of live transactions (what recovery would see). */
  readonly live: number;
  readonly liveTransactions: number;
  readonly tornTail?: LogPosition & { readonly bytes: number; readonly reason: string };
  readonly corruption?: LogPosition & { readonly reason: string };
  /** Human-readable remarks on harmless findings (torn tail, leftovers). */
  readonly notes: string[];
}

/**
 * Checks a log directory without taking its lock or changing anything, so it can run beside a
 * live coordinator (whose in-flight write may then show up as a torn tail, or a compaction
 * make a segment vanish mid-read: run it again). Throws TXC_LOG_IO if the directory cannot be read.
 */
export async function verifyLogDir(dir: string): Promise<LogVerification> {
  const live = new LiveSet();
  let records = 0;
  let scan;
  try {
    scan = await scanLogDir(dir, (record) => {
      live.apply(record);
      records++;
    });
  } catch (cause) {
    throw new TxcError('TXC_LOG_IO', `cannot read the decision log in ${dir}`, { cause, details: { dir } });
  }
  const notes: string[] = [];
  if (scan.tornTail) {
    notes.push(
      `torn tail of ${scan.tornTail.bytes} bytes at ${scan.tornTail.file}:${scan.tornTail.offset} (${scan.tornTail.reason}); the next open cuts it off`,
    );
  }
  const superseded = scan.segments.filter((s) => s.superseded).length;
  if (superseded > 0) notes.push(`${superseded} segment(s) superseded by a compaction snapshot; the next open deletes them`);
  if (scan.strayTmp.length > 0) notes.push(`${scan.strayTmp.length} leftover .tmp file(s) of an interrupted compaction; the next open deletes them`);
  if (scan.corruption) {
    notes.push(`corruption at ${scan.corruption.file}:${scan.corruption.offset}: ${scan.corruption.reason}; segments after it were not read`);
  }
  return {
    ok: scan.corruption === undefined,
    segments: scan.segments.map(({ file, records: n, bytes, kind, superseded: s }) => ({ file, records: n, bytes, kind, superseded: s })),
    records,
    live: live.records().length,
    liveTransactions: live.transactions,
    ...(scan.tornTail
      ? { tornTail: { file: scan.tornTail.file, offset: scan.tornTail.offset, bytes: scan.tornTail.bytes, reason: scan.tornTail.reason } }
      : {}),
    ...(scan.corruption ? { corruption: scan.corruption } : {}),
    notes,
  };
}
