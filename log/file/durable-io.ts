import { fdatasync, promises as fsp, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Flushes a file's data to stable storage; injectable so tests can count flushes or fail them. */
export type SyncFn = (fd: number) => Promise<void>;

/**
 * `fdatasync(2)`: flushes data and the metadata needed to read it back (the size), skipping
 * timestamps, which is all an append-only log needs.
 */
export const fdatasyncFd: SyncFn = (fd) =>
  new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));

/**
 * Fsyncs a directory so that entries created, renamed or removed in it survive a crash; without
 * it a fully synced file can vanish after power loss because its name never reached disk.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `buf` (at the end, for a handle opened in append mode), looping on short writes. */
export async function writeFully(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done);
    if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten} with ${buf.length - done} bytes left`);
    done += bytesWritten;
  }
}

/** Whether `err` is a Node system error with code `code`. */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

/**
 * Appends all of `buf` to the file open as `fd` with write(2) on the calling thread, looping on
 * short writes. For the decision log's batches: a write into the page cache is a copy that costs
 * the thread less than handing it to the thread pool and back, and the batch's fdatasync, the
 * part that waits for the device, stays asynchronous. Throws what write(2) reports.
 */
export function writeFullySync(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) {
    const written = writeSync(fd, buf, done, buf.length - done);
    if (written <= 0) throw new Error(`write returned ${written} with ${buf.length - done} bytes left`);
    done += written;
  }
}
