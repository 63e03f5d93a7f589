import { unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { LiveSet } from '../live-set.js';
import { fsyncDir, isErrno, type SyncFn } from './durable-io.js';
import { scanLogDir } from './scan-log-dir.js';
import { createAppendSegment, openAppendSegment, truncateSegment } from './segment-io.js';
import { MAGIC_BYTES, segmentFileName } from './segment-file.js';

/** A log directory replayed and repaired, ready for appends. */
export interface RecoveredLogDir {
  /** Live records replayed from the segments. */
  live: LiveSet;
  active: ActiveSegment;
  /** Numbers of the segment files now on disk, ascending. */
  segments: number[];
}

/** The segment appends go to. */
export interface ActiveSegment {
  fh: FileHandle;
  number: number;
  path: string;
  bytes: number;
}

/**
 * Replays the log in `dir` (whose lock the caller holds) and repairs what a crash leaves behind:
 * cuts a torn tail, deletes leftover .tmp files and superseded segments, and opens (or creates)
 * the segment appends go to. Throws TXC_LOG_CORRUPT for damage no crash explains, with the file
 * and offset, and TXC_LOG_IO when the directory cannot be read or written.
 */
export async function recoverLogDir(dir: string, sync: SyncFn, logger: Logger): Promise<RecoveredLogDir> {
  const live = new LiveSet();
  let replayed = 0;
  const scan = await ioStep(`cannot read the decision log in ${dir}`, dir, () =>
    scanLogDir(dir, (record) => {
      live.apply(record);
      replayed++;
    }),
  );
  if (scan.corruption) {
    const { file, offset, reason } = scan.corruption;
    throw new TxcError('TXC_LOG_CORRUPT', `decision log segment ${file} is damaged at offset ${offset}: ${reason}`, {
      details: { file, offset, reason },
    });
  }

  let dirChanged = false;
  for (const tmp of scan.strayTmp) {
    await ioStep(`cannot remove the leftover compaction file ${tmp}`, tmp, () => unlink(tmp));
    logger.warn({ file: tmp }, 'removed a leftover file of an interrupted decision log compaction');
    dirChanged = true;
  }
  if (scan.tornTail) {
    const { file, offset, bytes, reason } = scan.tornTail;
    await ioStep(`cannot truncate the torn tail of ${file}`, file, () => truncateSegment(file, offset, sync));
    logger.warn(
      { file, offset, bytes, reason },
      'cut a torn record off the end of the decision log (a write interrupted by a crash; it was never acknowledged)',
    );
  }
  // Everything below the newest snapshot was already folded into it; deleting it finishes the
  // compaction that a crash interrupted. Safe only now that the snapshot has been read whole.
  for (const seg of scan.segments.filter((s) => s.superseded)) {
    await ioStep(`cannot remove the superseded segment ${seg.file}`, seg.file, () => unlinkIfPresent(seg.file));
    logger.info({ file: seg.file }, 'removed a decision log segment superseded by a compaction snapshot');
    dirChanged = true;
  }

  const current = scan.segments.filter((s) => !s.superseded);
  const last = current[current.length - 1];
  let active: ActiveSegment;
  if (last && (last.kind === 'append' || last.kind === 'partial')) {
    const fh = await ioStep(`cannot open ${last.file} for appending`, last.file, () => openAppendSegment(last.file));
    const { size } = await fh.stat();
    active = { fh, number: last.number, path: last.file, bytes: size };
  } else {
    const number = last ? last.number + 1 : 1;
    const path = join(dir, segmentFileName(number));
    const fh = await ioStep(`cannot create the segment ${path}`, path, () => createAppendSegment(path, sync));
    active = { fh, number, path, bytes: MAGIC_BYTES };
    dirChanged = true;
  }
  if (dirChanged) {
    await ioStep(`cannot fsync the decision log directory ${dir}`, dir, () => fsyncDir(dir)).catch(async (err: unknown) => {
      await active.fh.close().catch(() => undefined);
      throw err;
    });
  }
  logger.debug({ dir, replayed, live: live.transactions, segments: current.length }, 'decision log opened');
  const segments = current.map((s) => s.number);
  if (!segments.includes(active.number)) segments.push(active.number);
  return { live, active, segments };
}

/** Deletes `file`; a file that is already gone is fine. */
export async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

/** Runs `fn`, turning a filesystem error into TXC_LOG_IO with `fact` (TxcErrors pass through). */
export async function ioStep<T>(fact: string, file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    if (TxcError.is(cause)) throw cause;
    throw new TxcError('TXC_LOG_IO', fact, { cause, details: { file } });
  }
}
