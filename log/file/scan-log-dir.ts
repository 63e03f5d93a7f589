import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogRecord } from '../log-record.js';
import { findNextRecord } from './record-framing.js';
import {
  MAGIC_BYTES,
  isTmpSegmentFileName,
  parseSegmentFileName,
  readSegmentHeader,
  scanSegmentBody,
  type SegmentKind,
} from './segment-file.js';

/** One segment as found by {@link scanLogDir}. */
export interface SegmentSummary {
  /** Full path. */
  readonly file: string;
  readonly number: number;
  /** From the header: `partial` is a header cut by a crash, `bad` is not a segment header. */
  readonly kind: SegmentKind | 'partial' | 'bad';
  readonly bytes: number;
  /** Complete records read from it (0 when it was not read). */
  readonly records: number;
  /** Below the newest snapshot segment: replay ignores it and opening deletes it. */
  readonly superseded: boolean;
}

/** A place in the log. */
export interface LogPosition {
  readonly file: string;
  readonly offset: number;
}

/** Everything {@link scanLogDir} learned about a log directory. */
export interface LogDirScan {
  readonly segments: SegmentSummary[];
  /** Leftover `seg-*.tmp` files of interrupted compactions (full paths). */
  readonly strayTmp: string[];
  /** A crash-cut end of the last segment: harmless, opening truncates it. */
  readonly tornTail?: LogPosition & { readonly reason: string; readonly bytes: number; readonly header: boolean };
  /** The first damage that no crash explains. In strict mode nothing after it was read. */
  readonly corruption?: LogPosition & { readonly reason: string };
  /** In salvage mode, every damaged byte range that was skipped. */
  readonly gaps: Array<LogPosition & { readonly bytes: number; readonly reason: string }>;
}

/** Options of {@link scanLogDir}. */
export interface ScanOptions {
  /** Keep going after damage by skipping to the next valid frame (inspection). Default: stop. */
  readonly salvage?: boolean;
  /** Also read superseded segments; their records are visited with `superseded` true. */
  readonly readSuperseded?: boolean;
}

/** Receives each record in log order. */
export type RecordVisitor = (record: LogRecord, file: string, offset: number, superseded: boolean) => void;

/**
 * Reads a log directory without changing it: lists segments, finds the newest snapshot (which
 * supersedes every lower-numbered segment), and visits the records from there on in order.
 * Only the last segment, and only an append segment, may end in a torn tail. Propagates
 * filesystem errors (ENOENT for a missing directory) to the caller.
 */
export async function scanLogDir(dir: string, visit: RecordVisitor, options: ScanOptions = {}): Promise<LogDirScan> {
  const names = await readdir(dir);
  const strayTmp = names.filter(isTmpSegmentFileName).map((n) => join(dir, n));
  const numbered = names
    .map((name) => ({ name, number: parseSegmentFileName(name) }))
    .filter((s): s is { name: string; number: number } => s.number !== undefined)
    .sort((a, b) => a.number - b.number);

  const heads = await Promise.all(numbered.map((s) => readHead(join(dir, s.name))));
  let snapshotIndex = -1;
  heads.forEach((h, i) => {
    if (readSegmentHeader(h.head).kind === 'snapshot') snapshotIndex = i;
  });

  const segments: SegmentSummary[] = [];
  const gaps: Array<LogPosition & { bytes: number; reason: string }> = [];
  let tornTail: LogDirScan['tornTail'];
  let corruption: LogDirScan['corruption'];

  for (let i = 0; i < numbered.length; i++) {
    const file = join(dir, numbered[i]!.name);
    const number = numbered[i]!.number;
    const superseded = i < snapshotIndex;
    const isLast = i === numbered.length - 1;
    const kind = readSegmentHeader(heads[i]!.head).kind;
    if (superseded && !options.readSuperseded) {
      segments.push({ file, number, kind, bytes: heads[i]!.size, records: 0, superseded });
      continue;
    }
    const bytes = await readFile(file);
    let records = 0;
    const damage = (offset: number, reason: string, end: number): boolean => {
      // Damage in superseded segments does not matter to replay; only salvage reads them.
      if (!superseded) corruption ??= { file, offset, reason };
      gaps.push({ file, offset, bytes: end - offset, reason });
      return options.salvage === true || superseded;
    };

    let offset = MAGIC_BYTES;
    if (kind === 'partial') {
      if (isLast && !superseded) {
        tornTail = { file, offset: 0, reason: 'segment header cut short', bytes: bytes.length, header: true };
      } else if (!damage(0, 'segment shorter than its header', bytes.length)) {
        segments.push({ file, number, kind, bytes: bytes.length, records, superseded });
        break;
      }
      offset = bytes.length;
    } else if (kind === 'bad') {
      const next = findNextRecord(bytes, 0);
      const end = next < 0 ? bytes.length : next;
      if (!damage(0, 'segment does not start with a txcoord log header', end)) {
        segments.push({ file, number, kind, bytes: bytes.length, records, superseded });
        break;
      }
      offset = end;
    }

    let stop = false;
    while (offset < bytes.length) {
      const body = scanSegmentBody(bytes, offset);
      for (const r of body.records) visit(r.record, file, r.offset, superseded);
      records += body.records.length;
      const failure = body.failure;
      if (!failure) break;
      if (failure.class === 'tail' && isLast && kind === 'append' && !superseded) {
        tornTail = { file, offset: failure.offset, reason: failure.reason, bytes: bytes.length - failure.offset, header: false };
        break;
      }
      const reason =
        failure.class === 'tail' ? `${failure.reason} (in a segment where a torn write cannot happen)` : failure.reason;
      const next = findNextRecord(bytes, failure.offset + 1);
      const end = next < 0 ? bytes.length : next;
      if (!damage(failure.offset, reason, end)) {
        stop = true;
        break;
      }
      offset = end;
    }
    segments.push({ file, number, kind, bytes: bytes.length, records, superseded });
    if (stop) break;
  }

  return {
    segments,
    strayTmp,
    gaps,
    ...(tornTail ? { tornTail } : {}),
    ...(corruption ? { corruption } : {}),
  };
}

async function readHead(file: string): Promise<{ head: Buffer; size: number }> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(MAGIC_BYTES);
    const { bytesRead } = await fh.read(head, 0, MAGIC_BYTES, 0);
    const { size } = await fh.stat();
    return { head: head.subarray(0, bytesRead), size };
  } finally {
    await fh.close();
  }
}
