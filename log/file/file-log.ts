import { mkdir, realpath, rename, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { createDefaultLogger } from '../../coordinator/logger.js';
import type { DecisionLog, FileLogConfig } from '../decision-log.js';
import type { LiveSet } from '../live-set.js';
import type { LogRecord } from '../log-record.js';
import { AckReleaser } from './ack-releaser.js';
import { fdatasyncFd, fsyncDir, writeFullySync, type SyncFn } from './durable-io.js';
import { acquireDirLock, type DirLock } from './lock-file.js';
import { frameJson, maxFrameBytes, recordJson } from './record-framing.js';
import { recoverLogDir, unlinkIfPresent, type ActiveSegment, type RecoveredLogDir } from './recover-log-dir.js';
import { createAppendSegment, writeSnapshotSegment } from './segment-io.js';
import { MAGIC_BYTES, segmentFileName, tmpSegmentFileName } from './segment-file.js';

/** Default {@link FileLogConfig.segmentBytes}: 16 MiB. */
export const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;

/** Points inside a compaction, in order; see {@link FileLogOptions.onCompactionStep}. */
export type CompactionStep = 'rolled' | 'snapshot-synced' | 'snapshot-renamed' | 'segment-deleted' | 'done';

/** Options of {@link openFileLog}. */
export interface FileLogOptions {
  /** Receives warnings (torn tail cut, stale lock taken over) and errors. Default: pino to stderr. */
  readonly logger?: Logger;
  /**
   * Internal, for tests: replaces `fdatasync` of segment files, to count flushes or to simulate
   * EIO/ENOSPC. Directory fsyncs are not routed through it.
   */
  readonly fsync?: SyncFn;
  /**
   * Internal, for tests: awaited at each compaction step, e.g. to copy the directory and so
   * model a crash at that point.
   */
  readonly onCompactionStep?: (step: CompactionStep) => void | Promise<void>;
}

/** Counters of a file log, for tests, benchmarks and metrics. */
export interface FileLogStats {
  /** Records written since open. */
  readonly appends: number;
  /** Writes issued (each holding one or more records). */
  readonly batches: number;
  /** fdatasync calls on the active segment. */
  readonly fsyncs: number;
  /** Compactions completed since open. */
  readonly compactions: number;
  /** Path of the segment appends go to. */
  readonly activeSegment: string;
  readonly activeBytes: number;
  /** Segment files in the directory. */
  readonly segments: number;
  readonly liveTransactions: number;
}

/** The file-backed decision log. */
export interface FileDecisionLog extends DecisionLog {
  /** The log directory, resolved to a real path. */
  readonly dir: string;
  /** A snapshot of the log's counters. */
  stats(): FileLogStats;
}

/**
 * What a TXC_LOG_IO from an append says about its record (`details.durability`): `not-written`
 * means it is certainly not in the log; `unknown` means it may be, and reopening the log tells.
 */
export type Durability = 'not-written' | 'unknown';

/**
 * Opens (creating if needed) the decision log in `config.dir`: takes the directory lock,
 * replays the segments into the live set, cuts a torn tail off the last segment (with a
 * warning), finishes an interrupted compaction, and returns the log ready for appends.
 *
 * Throws TXC_LOG_LOCKED if another live process (or this one) has the directory open,
 * TXC_LOG_CORRUPT (with `details.file` and `details.offset`) for damage a crash cannot explain,
 * TXC_LOG_IO when the directory cannot be read or written, and TXC_CONFIG_INVALID for a bad config.
 */
export async function openFileLog(config: FileLogConfig, opts: FileLogOptions = {}): Promise<FileDecisionLog> {
  if (typeof config.dir !== 'string' || config.dir === '') {
    throw new TxcError('TXC_CONFIG_INVALID', 'log.dir must be a non-empty directory path', { details: { field: 'log.dir' } });
  }
  const segmentBytes = config.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  if (!Number.isSafeInteger(segmentBytes) || segmentBytes <= 0) {
    throw new TxcError('TXC_CONFIG_INVALID', `log.segmentBytes must be a positive integer, not ${String(segmentBytes)}`, {
      details: { field: 'log.segmentBytes' },
    });
  }
  const logger = opts.logger ?? createDefaultLogger();
  const sync = opts.fsync ?? fdatasyncFd;

  let dir: string;
  try {
    await mkdir(resolve(config.dir), { recursive: true });
    dir = await realpath(resolve(config.dir));
  } catch (cause) {
    throw new TxcError('TXC_LOG_IO', `cannot create the decision log directory ${config.dir}`, {
      cause,
      details: { dir: config.dir },
    });
  }

  const lock = await acquireDirLock(dir, logger);
  try {
    const opened = await recoverLogDir(dir, sync, logger);
    return new FileLog({ dir, segmentBytes, logger, sync, lock, ...opened, onStep: opts.onCompactionStep });
  } catch (err) {
    await lock.release().catch(() => undefined);
    throw err;
  }
}

/**
 * Forced appenders acknowledged per turn of the event loop once their batch is durable (see
 * AckReleaser): above the concurrency of most callers, so they are all released at once, and
 * small enough that a few hundred waiters overlap their work with the next batch's fdatasync.
 */
const ACK_SLICE = 64;

/** Size of the reused staging buffer; one grown past STAGING_KEEP_BYTES is dropped after its batch. */
const STAGING_INITIAL_BYTES = 64 * 1024;
const STAGING_KEEP_BYTES = 4 * 1024 * 1024;

/** A queued append; its frame is already in the staging buffer, in queue order. */
interface PendingAppend {
  readonly record: LogRecord;
  readonly force: boolean;
  resolve(): void;
  reject(err: unknown): void;
}

interface Roll {
  /** The live records as of the roll: exactly the live part of every segment below the new one. */
  readonly snapshot: readonly LogRecord[];
  readonly snapshotNumber: number;
}

interface RollRequest {
  resolve(roll: Roll): void;
  reject(err: unknown): void;
}

interface Poison {
  readonly cause: unknown;
  readonly what: string;
  readonly file: string;
}

interface FileLogParts extends RecoveredLogDir {
  dir: string;
  segmentBytes: number;
  logger: Logger;
  sync: SyncFn;
  lock: DirLock;
  onStep: ((step: CompactionStep) => void | Promise<void>) | undefined;
}

/**
 * One writer loop owns the active segment. Appends queue; each turn of the loop takes the whole
 * queue, writes it with one write and, if any of it is forced, one fdatasync, then settles it:
 * group commit. Segment rolls run inside the same loop, between batches, so a roll sees a
 * segment boundary that no batch straddles.
 */
class FileLog implements FileDecisionLog {
  readonly dir: string;
  private readonly segmentBytes: number;
  private readonly logger: Logger;
  private readonly sync: SyncFn;
  private readonly lock: DirLock;
  private readonly liveSet: LiveSet;
  private readonly onStep: FileLogParts['onStep'];
  private active: ActiveSegment;
  /** Numbers of the segment files on disk, ascending. */
  private segments: number[];

  private queue: PendingAppend[] = [];
  private rollRequest: RollRequest | undefined;
  private writing = false;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  /** Written since the last fdatasync of the active segment. */
  private dirty = false;
  private poisoned: Poison | undefined;
  private closing = false;
  private closePromise: Promise<void> | undefined;

  private compactionTail: Promise<void> = Promise.resolve();
  private joinableCompaction: Promise<void> | undefined;
  private compactionsInFlight = 0;

  private counters = { appends: 0, batches: 0, fsyncs: 0, compactions: 0 };
  /**
   * The frames of the queued appends, back to back: each append frames its record here at once,
   * so its JSON string dies young and a batch is one write of this buffer's filled part. Reused:
   * the batch write is synchronous, so it is free again as soon as writeBatch has it on disk.
   */
  private staging: Buffer = Buffer.allocUnsafe(STAGING_INITIAL_BYTES);
  private stagedBytes = 0;
  private readonly acks = new AckReleaser(ACK_SLICE);

  constructor(parts: FileLogParts) {
    this.dir = parts.dir;
    this.segmentBytes = parts.segmentBytes;
    this.logger = parts.logger;
    this.sync = parts.sync;
    this.lock = parts.lock;
    this.liveSet = parts.live;
    this.active = parts.active;
    this.segments = parts.segments;
    this.onStep = parts.onStep;
  }

  append(record: LogRecord, force: boolean): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError());
    if (this.poisoned) return Promise.reject(this.poisonedError());
    try {
      const json = recordJson(record);
      const room = this.stagedBytes + maxFrameBytes(json);
      if (this.staging.length < room) {
        const grown = Buffer.allocUnsafe(Math.max(room, this.staging.length * 2));
        this.staging.copy(grown, 0, 0, this.stagedBytes);
        this.staging = grown;
      }
      this.stagedBytes = frameJson(this.staging, this.stagedBytes, json);
    } catch (cause) {
      return Promise.reject(
        new TxcError('TXC_LOG_IO', `the record for gtrid ${record.gtrid} cannot be encoded`, {
          cause,
          details: { gtrid: record.gtrid },
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ record, force, resolve, reject });
      this.kick();
    });
  }

  live(): readonly LogRecord[] {
    // After a failed write or fsync the in-memory view may hold records that are not durable;
    // only a reopen (which replays what really reached disk) can say what the log holds.
    if (this.poisoned) throw this.poisonedError('its in-memory view may hold records that never reached disk');
    return this.liveSet.records();
  }

  compact(): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError());
    if (this.poisoned) return Promise.reject(this.poisonedError());
    // A compaction that has not started yet will see everything this caller has appended.
    if (this.joinableCompaction) return this.joinableCompaction;
    this.compactionsInFlight++;
    const run: Promise<void> = this.compactionTail
      .then(() => {
        if (this.joinableCompaction === run) this.joinableCompaction = undefined;
        return this.runCompaction();
      })
      .finally(() => {
        this.compactionsInFlight--;
      });
    this.joinableCompaction = run;
    this.compactionTail = run.catch(() => undefined);
    return run;
  }

  close(): Promise<void> {
    return (this.closePromise ??= this.doClose());
  }

  stats(): FileLogStats {
    return {
      ...this.counters,
      activeSegment: this.active.path,
      activeBytes: this.active.bytes,
      segments: this.segments.length,
      liveTransactions: this.liveSet.transactions,
    };
  }

  // ---- writer loop -------------------------------------------------------------------------

  private kick(): void {
    if (this.writing || this.scheduled) return;
    this.scheduled = true;
    // Deferred to a microtask so that appends issued in the same tick join the first batch.
    queueMicrotask(() => {
      this.scheduled = false;
      void this.runWriter();
    });
  }

  private async runWriter(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (!this.poisoned) {
        const roll = this.rollRequest;
        if (roll) {
          this.rollRequest = undefined;
          await this.performRoll(roll);
          continue;
        }
        if (this.queue.length === 0) break;
        await this.writeBatch();
      }
      if (this.poisoned) {
        const err = this.poisonedError();
        this.stagedBytes = 0;
        for (const p of this.queue.splice(0)) p.reject(err);
        this.rollRequest?.reject(err);
        this.rollRequest = undefined;
      }
    } finally {
      this.writing = false;
    }
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Writes the whole queue, whose frames are the staged bytes, as one batch. */
  private async writeBatch(): Promise<void> {
    const batch = this.queue.splice(0);
    const length = this.stagedBytes;
    // The write below is synchronous, so no append can stage anything before it has the bytes.
    this.stagedBytes = 0;
    const start = this.active.bytes;
    this.counters.batches++;
    try {
      // Synchronous (see writeFullySync), so the staging buffer is free again right after; only
      // the fdatasync below waits for the device.
      writeFullySync(this.active.fh.fd, this.staging.subarray(0, length));
    } catch (cause) {
      // A short or failed write may have left part of a frame at the end of the segment; any
      // later frame would sit behind it and read back as corruption, so nothing more is written.
      const err = this.poison(cause, 'write', await this.undoBatch(start));
      for (const p of batch) p.reject(err);
      return;
    }
    this.active.bytes += length;
    this.dirty = true;
    // A burst of large records should not pin its buffer for the life of the log.
    if (this.staging.length > STAGING_KEEP_BYTES) this.staging = Buffer.allocUnsafe(STAGING_INITIAL_BYTES);
    for (const p of batch) this.liveSet.apply(p.record);
    this.counters.appends += batch.length;

    let forced = false;
    for (const p of batch) {
      if (p.force) forced = true;
      else p.resolve();
    }
    if (forced) {
      try {
        await this.syncActive();
      } catch (cause) {
        const err = this.poison(cause, 'fdatasync', await this.undoBatch(start));
        for (const p of batch) if (p.force) p.reject(err);
        return;
      }
      // Released after this returns, so the writer first starts the next batch (see AckReleaser).
      const durable: Array<() => void> = [];
      for (const p of batch) if (p.force) durable.push(p.resolve);
      this.acks.release(durable);
    }
    if (this.active.bytes > this.segmentBytes) this.autoCompact();
  }

  /**
   * After a failed write or fdatasync, the batch's bytes may or may not be on disk, and a commit
   * record that is there after all would be found by recovery although its append was rejected.
   * Cutting the batch off again (and syncing that) turns "unknown" into "certainly not in the
   * log", so the caller may act on the rejection; if that fails too, it stays unknown.
   */
  private async undoBatch(start: number): Promise<Durability> {
    try {
      await this.active.fh.truncate(start);
      await this.sync(this.active.fh.fd);
      return 'not-written';
    } catch (err) {
      this.logger.error({ err, file: this.active.path }, 'could not cut a failed batch off the decision log');
      return 'unknown';
    }
  }

  private async syncActive(): Promise<void> {
    this.counters.fsyncs++;
    await this.sync(this.active.fh.fd);
    this.dirty = false;
  }

  /**
   * Makes the active segment durable and switches appends to a new segment two numbers up,
   * leaving the number in between for the snapshot. Runs inside the writer loop.
   */
  private async performRoll(req: RollRequest): Promise<void> {
    const old = this.active;
    const number = old.number + 2;
    const path = join(this.dir, segmentFileName(number));
    try {
      if (this.dirty) await this.syncActive();
      const fh = await createAppendSegment(path, this.sync);
      this.active = { fh, number, path, bytes: MAGIC_BYTES };
      this.segments.push(number);
      await fsyncDir(this.dir);
    } catch (cause) {
      // Either the old segment's fsync failed (fsync failure poisons, see poison()) or the new
      // segment may not be durably named; appending to either would be a guess.
      if (this.active !== old) await old.fh.close().catch(() => undefined);
      req.reject(this.poison(cause, 'segment roll', 'unknown', path));
      return;
    }
    await old.fh.close().catch((err: unknown) => this.logger.warn({ err, file: old.path }, 'closing a rolled segment failed'));
    req.resolve({ snapshot: this.liveSet.records(), snapshotNumber: old.number + 1 });
  }

  private requestRoll(): Promise<Roll> {
    return new Promise<Roll>((resolve, reject) => {
      this.rollRequest = { resolve, reject };
      this.kick();
    });
  }

  private autoCompact(): void {
    if (this.closing || this.poisoned || this.compactionsInFlight > 0) return;
    this.compact().catch((err: unknown) =>
      this.logger.error({ err, dir: this.dir }, 'automatic compaction of the decision log failed'),
    );
  }

  /**
   * Crash safety, step by step (N = the segment active when the compaction starts):
   * 1. roll: N is synced, appends move to N+2 (created, synced, directory synced);
   * 2. the live set as of the roll is written to `seg-(N+1).tmp` and synced: a crash leaves a
   *    .tmp that opening deletes, and segments <= N plus N+2 replay to the same live set;
   * 3. rename to `seg-(N+1).log` and sync the directory: from here the snapshot supersedes every
   *    lower segment on replay (they are skipped, not merged, so nothing is counted twice);
   * 4. delete the segments below N+1: a crash part-way leaves superseded files that replay skips
   *    and opening deletes.
   */
  private async runCompaction(): Promise<void> {
    if (this.poisoned) throw this.poisonedError();
    const roll = await this.requestRoll();
    await this.onStep?.('rolled');

    const tmp = join(this.dir, tmpSegmentFileName(roll.snapshotNumber));
    const target = join(this.dir, segmentFileName(roll.snapshotNumber));
    try {
      await writeSnapshotSegment(tmp, roll.snapshot, this.sync);
      await this.onStep?.('snapshot-synced');
      await rename(tmp, target);
    } catch (cause) {
      await unlink(tmp).catch(() => undefined);
      throw new TxcError('TXC_LOG_IO', `cannot write the compaction snapshot ${target}; the log is unchanged`, {
        cause,
        details: { file: target },
      });
    }
    this.segments = [...this.segments, roll.snapshotNumber].sort((a, b) => a - b);
    try {
      await fsyncDir(this.dir);
    } catch (cause) {
      // Whether the rename is durable is unknown; both outcomes replay correctly, but deleting
      // the older segments is only safe once it is.
      throw new TxcError('TXC_LOG_IO', `cannot fsync ${this.dir} after writing the snapshot; older segments kept`, {
        cause,
        details: { dir: this.dir },
      });
    }
    await this.onStep?.('snapshot-renamed');

    for (const n of this.segments.filter((s) => s < roll.snapshotNumber)) {
      const file = join(this.dir, segmentFileName(n));
      try {
        await unlinkIfPresent(file);
      } catch (err) {
        // Harmless for correctness (replay skips superseded segments); retried next time.
        this.logger.warn({ err, file }, 'could not delete a superseded decision log segment');
        continue;
      }
      this.segments = this.segments.filter((s) => s !== n);
      await this.onStep?.('segment-deleted');
    }
    await fsyncDir(this.dir).catch((err: unknown) =>
      this.logger.warn({ err, dir: this.dir }, 'fsync of the log directory after deleting old segments failed'),
    );
    this.counters.compactions++;
    this.logger.debug({ dir: this.dir, live: roll.snapshot.length }, 'decision log compacted');
    await this.onStep?.('done');
  }

  // ---- closing and failure -----------------------------------------------------------------

  private whenIdle(): Promise<void> {
    if (!this.writing && !this.scheduled && this.queue.length === 0 && !this.rollRequest) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    await this.compactionTail;
    await this.whenIdle();
    // Every append that reached disk is acknowledged before close resolves.
    await this.acks.drained();
    let failure: unknown;
    if (!this.poisoned && this.dirty) {
      try {
        await this.syncActive();
      } catch (cause) {
        failure = this.poison(cause, 'fdatasync');
      }
    }
    try {
      await this.active.fh.close();
    } catch (cause) {
      failure ??= new TxcError('TXC_LOG_IO', `cannot close ${this.active.path}`, { cause, details: { file: this.active.path } });
    }
    try {
      await this.lock.release();
    } catch (err) {
      failure ??= err;
    }
    if (failure) throw failure;
  }

  /**
   * Marks the log unusable and returns the error for the operation that failed. After a failed
   * fdatasync Linux may have dropped the dirty pages and cleared the error, so a retry could
   * "succeed" without the data ever reaching disk; the only honest state is to refuse every
   * later append until the log is reopened and replayed from what really is on disk.
   * `details.durability` tells whether the failed batch may still be in the log.
   */
  private poison(cause: unknown, what: string, durability: Durability = 'unknown', file = this.active.path): TxcError {
    if (!this.poisoned) {
      this.poisoned = { cause, what, file };
      this.logger.error({ err: cause, file, what }, 'decision log write failed; the log refuses further appends until reopened');
    }
    const fate =
      durability === 'not-written'
        ? 'the records were cut off again and are certainly not in the log'
        : 'the records may or may not be in the log; reopen it to find out';
    return new TxcError('TXC_LOG_IO', `${what} of decision log segment ${file} failed; ${fate}`, {
      cause,
      details: { file, operation: what, durability },
    });
  }

  private poisonedError(consequence = 'this record was not written'): TxcError {
    const p = this.poisoned!;
    return new TxcError(
      'TXC_LOG_IO',
      `an earlier ${p.what} of ${p.file} failed, so the decision log must be closed and reopened (${consequence})`,
      { cause: p.cause, details: { file: p.file, operation: p.what, durability: 'not-written' } },
    );
  }

  private closedError(): TxcError {
    return new TxcError('TXC_LOG_CLOSED', `the decision log in ${this.dir} was closed`, { details: { dir: this.dir } });
  }
}
