import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { fsyncDir, isErrno } from './durable-io.js';
import { currentBootId, isPidAlive, processStartTicks } from './process-identity.js';

/** Name of the lock file inside a log directory. */
export const LOCK_FILE_NAME = 'LOCK';

/** What a lock file says about its owner. */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** ms since epoch. */
  readonly startedAt: number;
  /** Linux boot id, when known: tells a lock left over from before a reboot. */
  readonly bootId?: string;
  /** Linux process start time in ticks, when known: tells a reused pid. */
  readonly procStart?: string;
}

/** A held directory lock. */
export interface DirLock {
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock file if it is still ours, and forgets the directory. Idempotent. */
  release(): Promise<void>;
}

// Shared through the global symbol registry so two copies of the package in one process still
// see each other's directories: the LOCK file alone cannot tell them apart (same pid).
const REGISTRY_KEY = Symbol.for('txcoord.openLogDirs');
function openDirs(): Set<string> {
  const g = globalThis as unknown as Record<symbol, Set<string> | undefined>;
  return (g[REGISTRY_KEY] ??= new Set<string>());
}

/**
 * Takes the lock of log directory `dir` (an absolute, resolved path) for this process. Throws
 * TXC_LOG_LOCKED when this process already has the directory open, or when the lock names a
 * live process (or one on another host, whose liveness cannot be checked from here). A lock
 * whose owner is dead, or that is unreadable, is taken over with a warning.
 */
export async function acquireDirLock(dir: string, logger: Logger): Promise<DirLock> {
  const path = join(dir, LOCK_FILE_NAME);
  const registry = openDirs();
  if (registry.has(dir)) {
    throw new TxcError('TXC_LOG_LOCKED', `this process (pid ${process.pid}) already has the decision log ${dir} open`, {
      details: { dir, pid: process.pid },
    });
  }
  registry.add(dir);
  try {
    const owner: LockOwner = {
      pid: process.pid,
      host: hostname(),
      startedAt: Date.now(),
      ...optional('bootId', await currentBootId()),
      ...optional('procStart', await processStartTicks(process.pid)),
    };
    await createLockFile(dir, path, owner, logger);
    return {
      path,
      owner,
      release: once(async () => {
        try {
          await releaseLockFile(dir, path, owner, logger);
        } finally {
          registry.delete(dir);
        }
      }),
    };
  } catch (err) {
    registry.delete(dir);
    throw err;
  }
}

async function createLockFile(dir: string, path: string, owner: LockOwner, logger: Logger): Promise<void> {
  const content = `${JSON.stringify(owner)}\n`;
  // Written under a private name, then linked into place: link(2) fails with EEXIST atomically
  // like O_EXCL, but the LOCK file never exists half-written, so a reader seeing garbage knows
  // it is a leftover and not a competitor caught between open and write.
  const tmp = join(dir, `${LOCK_FILE_NAME}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await writeFile(tmp, content, { flag: 'wx', flush: true });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, path);
        await fsyncDir(dir);
        return;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw ioError(`cannot create the lock file ${path}`, err, path);
      }
      if (attempt >= 5) {
        throw new TxcError('TXC_LOG_LOCKED', `the lock file ${path} keeps reappearing: another process is starting on this log`, {
          details: { file: path },
        });
      }
      await judgeExistingLock(path, logger);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Throws if the existing lock must be respected; removes it if it may be taken over. */
async function judgeExistingLock(path: string, logger: Logger): Promise<void> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return; // released meanwhile: just try again
    throw ioError(`cannot read the lock file ${path}`, err, path);
  }
  const holder = parseOwner(raw);
  if (!holder) {
    logger.warn({ file: path }, 'decision log lock file is unreadable; taking it over');
  } else {
    const stale = await staleReason(holder);
    if (!stale) {
      throw new TxcError(
        'TXC_LOG_LOCKED',
        `the decision log lock ${path} is held by pid ${holder.pid} on host ${holder.host} (since ${new Date(holder.startedAt).toISOString()})`,
        { details: { file: path, pid: holder.pid, host: holder.host } },
      );
    }
    logger.warn({ file: path, pid: holder.pid, host: holder.host, why: stale }, 'taking over a stale decision log lock');
  }
  // Re-read just before removing: if the file changed, someone else got there first, and the
  // next link attempt will judge the new owner instead of deleting its lock.
  const again = await readFile(path, 'utf8').catch(() => undefined);
  if (again !== raw) return;
  await unlink(path).catch((err: unknown) => {
    if (!isErrno(err, 'ENOENT')) throw ioError(`cannot remove the stale lock file ${path}`, err, path);
  });
}

/** Why the lock's owner is certainly gone, or undefined if it may be alive. */
async function staleReason(holder: LockOwner): Promise<string | undefined> {
  // On another host we cannot check the pid; respecting the lock is the only safe answer.
  if (holder.host !== hostname()) return undefined;
  const bootId = await currentBootId();
  if (holder.bootId && bootId && holder.bootId !== bootId) return 'written before the last reboot';
  if (holder.pid === process.pid) {
    // This very process does not have the directory open (the registry said so), so the lock was
    // left by an earlier process that had the same pid.
    return 'written by an earlier process with this pid';
  }
  if (!isPidAlive(holder.pid)) return `pid ${holder.pid} is not running`;
  if (holder.procStart !== undefined) {
    const now = await processStartTicks(holder.pid);
    if (now !== undefined && now !== holder.procStart) return `pid ${holder.pid} now belongs to another process`;
  }
  return undefined;
}

async function releaseLockFile(dir: string, path: string, owner: LockOwner, logger: Logger): Promise<void> {
  const raw = await readFile(path, 'utf8').catch(() => undefined);
  const holder = raw === undefined ? undefined : parseOwner(raw);
  if (!holder || holder.pid !== owner.pid || holder.startedAt !== owner.startedAt || holder.host !== owner.host) {
    logger.warn({ file: path }, 'decision log lock file no longer names this process; leaving it alone');
    return;
  }
  try {
    await unlink(path);
    await fsyncDir(dir);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw ioError(`cannot remove the lock file ${path}`, err, path);
  }
}

function parseOwner(raw: string): LockOwner | undefined {
  try {
    const v = JSON.parse(raw) as Record<string, unknown>;
    if (typeof v !== 'object' || v === null) return undefined;
    const { pid, host, startedAt, bootId, procStart } = v;
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
    if (typeof host !== 'string' || typeof startedAt !== 'number') return undefined;
    return {
      pid,
      host,
      startedAt,
      ...optional('bootId', typeof bootId === 'string' ? bootId : undefined),
      ...optional('procStart', typeof procStart === 'string' ? procStart : undefined),
    };
  } catch {
    return undefined;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

function ioError(fact: string, cause: unknown, file: string): TxcError {
  return new TxcError('TXC_LOG_IO', fact, { cause, details: { file } });
}
