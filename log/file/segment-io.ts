import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { LogRecord } from '../log-record.js';
import { writeFully, type SyncFn } from './durable-io.js';
import { encodeRecord } from './record-framing.js';
import { APPEND_MAGIC, SNAPSHOT_MAGIC } from './segment-file.js';

/**
 * Creates a new append segment at `path` (which must not exist), writes and syncs its header,
 * and returns it open for appending. The caller fsyncs the directory.
 */
export async function createAppendSegment(path: string, sync: SyncFn): Promise<FileHandle> {
  const fh = await open(path, 'ax');
  try {
    await writeFully(fh, APPEND_MAGIC);
    await sync(fh.fd);
    return fh;
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** Opens an existing append segment for appending at its end. */
export function openAppendSegment(path: string): Promise<FileHandle> {
  return open(path, 'a');
}

/**
 * Writes a complete snapshot segment holding `records` to `path` and syncs it. It is meant to
 * be a temporary name: only after this resolves may it be renamed to a `.log` name, which is
 * what makes a snapshot that exists under a `.log` name always complete.
 */
export async function writeSnapshotSegment(path: string, records: readonly LogRecord[], sync: SyncFn): Promise<void> {
  const buf = Buffer.concat([SNAPSHOT_MAGIC, ...records.map(encodeRecord)]);
  const fh = await open(path, 'w');
  try {
    await writeFully(fh, buf);
    await sync(fh.fd);
  } finally {
    await fh.close();
  }
}

/**
 * Cuts a torn tail off the segment at `path` so that it ends at `length`, then syncs. A cut
 * header (`length` 0) is rewritten as a fresh empty segment instead.
 */
export async function truncateSegment(path: string, length: number, sync: SyncFn): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    if (length === 0) {
      await fh.truncate(0);
      await fh.write(APPEND_MAGIC, 0, APPEND_MAGIC.length, 0);
    } else {
      await fh.truncate(length);
    }
    await sync(fh.fd);
  } finally {
    await fh.close();
  }
}
