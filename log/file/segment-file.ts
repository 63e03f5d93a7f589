import { decodeRecord, findNextRecord } from './record-framing.js';
import type { LogRecord } from '../log-record.js';

/** First bytes of a segment that appends go to. */
export const APPEND_MAGIC = Buffer.from('TXCLOG1\n', 'latin1');

/**
 * First bytes of a segment written by compaction. A snapshot segment holds every live record as
 * of the moment it was taken, so on replay it supersedes every lower-numbered segment.
 */
export const SNAPSHOT_MAGIC = Buffer.from('TXCSNP1\n', 'latin1');

/** Both magics have this length. */
export const MAGIC_BYTES = 8;

/** What a segment holds, judged from its header. */
export type SegmentKind = 'append' | 'snapshot';

const SEGMENT_NAME = /^seg-(\d{16})\.log$/;
const TMP_NAME = /^seg-(\d{16})\.tmp$/;

/** File name of segment number `n`: `seg-<16 digits>.log`, so names sort like numbers. */
export function segmentFileName(n: number): string {
  return `seg-${String(n).padStart(16, '0')}.log`;
}

/** Name a snapshot segment is written under before it is complete and renamed into place. */
export function tmpSegmentFileName(n: number): string {
  return `seg-${String(n).padStart(16, '0')}.tmp`;
}

/** The number of a segment file name, or undefined for any other name. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Whether `name` is a leftover of a compaction that did not finish. */
export function isTmpSegmentFileName(name: string): boolean {
  return TMP_NAME.test(name);
}

/** Result of reading a segment's first bytes. */
export type SegmentHeader =
  | { readonly kind: SegmentKind }
  /** Shorter than a magic but a prefix of one (possibly empty): a segment whose creation was cut. */
  | { readonly kind: 'partial' }
  | { readonly kind: 'bad' };

/** Classifies the header of a segment from its first bytes (at least {@link MAGIC_BYTES} if present). */
export function readSegmentHeader(bytes: Uint8Array): SegmentHeader {
  if (bytes.length >= MAGIC_BYTES) {
    const head = Buffer.from(bytes.buffer, bytes.byteOffset, MAGIC_BYTES);
    if (head.equals(APPEND_MAGIC)) return { kind: 'append' };
    if (head.equals(SNAPSHOT_MAGIC)) return { kind: 'snapshot' };
    return { kind: 'bad' };
  }
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return head.equals(APPEND_MAGIC.subarray(0, bytes.length)) ? { kind: 'partial' } : { kind: 'bad' };
}

/** A record found in a segment, with the offset of its frame. */
export interface ScannedRecord {
  readonly record: LogRecord;
  readonly offset: number;
}

/**
 * Where decoding stopped before the end of a segment. `tail` means the damage may be a torn
 * write (see {@link scanSegmentBody}); `corrupt` means it cannot be.
 */
export interface ScanFailure {
  readonly offset: number;
  readonly class: 'tail' | 'corrupt';
  readonly reason: string;
}

/** Records of one segment body, up to the first frame that does not decode. */
export interface SegmentBodyScan {
  readonly records: ScannedRecord[];
  /** Offset just past the last complete record. */
  readonly validEnd: number;
  readonly failure?: ScanFailure;
}

/**
 * Decodes frames from `start` until the end of `bytes` or the first frame that fails.
 *
 * Torn versus corrupt: a failed frame is classed `tail` (a write cut by a crash) when
 * - its bytes run out (the header is cut, or fewer payload bytes remain than declared), or
 * - its length is impossible or its checksum fails,
 * and in either case no complete, checksummed frame starts anywhere after it. A crash during an
 * unsynced write can leave the final frame short, zero-filled (the size reached disk before the
 * data) or with pages persisted out of order, and all of those look like this. Such a frame was
 * never acknowledged as durable, because its fdatasync never returned.
 *
 * It is classed `corrupt` when a valid frame follows the damage (a record we acknowledged would
 * be thrown away with the tail), or when the checksum matches but the JSON is not a record (the
 * bytes are what a writer wrote, so no crash explains them). The one case this cannot tell
 * apart is media damage confined to the very last frame of the log, which it treats as torn:
 * that record is indistinguishable from one whose write was cut, and refusing to open after
 * every ordinary crash would be the worse failure.
 */
export function scanSegmentBody(bytes: Uint8Array, start: number): SegmentBodyScan {
  const records: ScannedRecord[] = [];
  let offset = start;
  while (offset < bytes.length) {
    const res = decodeRecord(bytes, offset);
    if (res.kind === 'complete') {
      records.push({ record: res.record, offset });
      offset = res.end;
      continue;
    }
    if (res.kind === 'corrupt' && res.crcValid) {
      return { records, validEnd: offset, failure: { offset, class: 'corrupt', reason: `${res.reason}: ${res.detail}` } };
    }
    const reason = res.kind === 'torn' ? `torn record: ${res.reason}` : `${res.reason}: ${res.detail}`;
    const next = findNextRecord(bytes, offset + 1);
    if (next >= 0) {
      return {
        records,
        validEnd: offset,
        failure: { offset, class: 'corrupt', reason: `${reason}, and a valid record follows at offset ${next}` },
      };
    }
    return { records, validEnd: offset, failure: { offset, class: 'tail', reason } };
  }
  return { records, validEnd: offset };
}
