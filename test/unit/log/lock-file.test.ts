import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { openFileLog } from '../../../log/file/file-log.js';
import { processStartTicks } from '../../../log/file/process-identity.js';
import { captureLogger, commit, listFiles, silent, tempDir } from './log-test-helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
const children: ChildProcess[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('txclog-lock-'));
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await cleanup();
});

function sleeper(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  children.push(child);
  return child;
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

const lockPath = (): string => join(dir, 'LOCK');
const writeLock = (content: unknown): Promise<void> =>
  writeFile(lockPath(), typeof content === 'string' ? content : JSON.stringify(content));

async function rejection(p: Promise<unknown>): Promise<TxcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(TxcError.is(err)).toBe(true);
  return err as TxcError;
}

describe('directory lock', () => {
  it('writes {pid, host, startedAt} and removes the lock on close', async () => {
    const log = await openFileLog({ type: 'file', dir }, { logger: silent });
    const owner = JSON.parse(await readFile(lockPath(), 'utf8')) as Record<string, unknown>;
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    expect(typeof owner['startedAt']).toBe('number');
    expect((await listFiles(dir)).filter((f) => f.startsWith('LOCK'))).toEqual(['LOCK']);
    await log.close();
    expect(await listFiles(dir)).not.toContain('LOCK');
  });

  it('refuses a lock held by a live process, naming its pid', async () => {
    const child = sleeper();
    await writeLock({ pid: child.pid, host: hostname(), startedAt: Date.now() });
    const err = await rejection(openFileLog({ type: 'file', dir }, { logger: silent }));
    expect(err.code).toBe('TXC_LOG_LOCKED');
    expect(err.message).toContain(`pid ${child.pid}`);
    expect(err.details).toMatchObject({ pid: child.pid });
    expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toMatchObject({ pid: child.pid });
  });

  it('takes over a lock whose owner is dead, with a warning', async () => {
    const pid = await deadPid();
    await writeLock({ pid, host: hostname(), startedAt: 1 });
    const { logger, lines } = captureLogger();
    const log = await openFileLog({ type: 'file', dir }, { logger });
    expect(lines.some((l) => l['level'] === 40 && l['pid'] === pid && /stale/.test(String(l['msg'])))).toBe(true);
    expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toMatchObject({ pid: process.pid });
    await log.append(commit('a'), true);
    await log.close();
  });

  it.skipIf(process.platform !== 'linux')('takes over a lock whose pid now belongs to a different process', async () => {
    const child = sleeper();
    await new Promise((r) => setTimeout(r, 50));
    expect(await processStartTicks(child.pid!)).toBeDefined();
    await writeLock({ pid: child.pid, host: hostname(), startedAt: 1, procStart: '1' });
    const log = await openFileLog({ type: 'file', dir }, { logger: silent });
    await log.close();
  });

  it('takes over an unreadable lock file', async () => {
    await writeLock('{"pid": 12');
    const { logger, lines } = captureLogger();
    const log = await openFileLog({ type: 'file', dir }, { logger });
    expect(lines.some((l) => l['level'] === 40 && /unreadable/.test(String(l['msg'])))).toBe(true);
    await log.close();
  });

  it('respects a lock from another host, whose pid cannot be checked', async () => {
    await writeLock({ pid: await deadPid(), host: `not-${hostname()}`, startedAt: 1 });
    const err = await rejection(openFileLog({ type: 'file', dir }, { logger: silent }));
    expect(err.code).toBe('TXC_LOG_LOCKED');
  });

  it('refuses to open the same directory twice in one process, also via another path', async () => {
    const log = await openFileLog({ type: 'file', dir }, { logger: silent });
    const alias = `${dir}-alias`;
    await symlink(dir, alias);
    const err = await rejection(openFileLog({ type: 'file', dir: alias }, { logger: silent })).finally(() => rm(alias));
    expect(err.code).toBe('TXC_LOG_LOCKED');
    expect(err.message).toContain('this process');
    await log.close();
    const again = await openFileLog({ type: 'file', dir }, { logger: silent });
    await again.close();
  });

  it('treats a lock naming this pid but not held by this process as left over from pid reuse', async () => {
    await writeLock({ pid: process.pid, host: hostname(), startedAt: 1 });
    const log = await openFileLog({ type: 'file', dir }, { logger: silent });
    await log.close();
  });
});
