/**
 * The full-disk part of the log-damage scenario: a coordinator whose decision log lives on a
 * 64 KiB tmpfs that is then filled up. Kept apart from log-damage.test.ts because it needs root,
 * `mount` and both database servers, and skips (with a notice) when any is missing.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { TxcError } from '../../coordinator/errors.js';
import { requireDbOrSkip } from '../integration/db-env.js';
import { assertInvariants, coordinatorConfig, createBank, transfer } from './bank.js';

const TAG = '[faults/log-damage]';
const COORD_ID = 'fdisk';

/** Mounts a 64 KiB tmpfs on a fresh directory under `root`; undefined (with a notice) when that is not possible here. */
function mountSmallTmpfs(root: string): string | undefined {
  if (process.getuid?.() !== 0) {
    console.log(`${TAG} SKIP full disk: not root, cannot mount a tmpfs`);
    return undefined;
  }
  const dir = join(root, 'tmpfs');
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
    return dir;
  } catch (err) {
    console.log(`${TAG} SKIP full disk: mount -t tmpfs failed (${String((err as { stderr?: Buffer }).stderr ?? err).trim()})`);
    return undefined;
  }
}

/** Writes 1 KiB chunks to `file` until the filesystem refuses (ENOSPC). Returns bytes written. */
function fillUp(file: string): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(1024, 0x5a);
  let n = 0;
  try {
    for (;;) n += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return n;
}

/**
 * Runs the full-disk scenario: transfers until the log's disk is full, checks that the failing
 * ones are TXC_LOG_IO and rolled back (or TXC_OUTCOME_UNKNOWN with branches left for recovery),
 * frees the space, restarts the coordinator (recovery on start) and checks the bank invariants.
 */
export async function fullDiskScenario(root: string): Promise<void> {
  const t0 = Date.now();
  if (!((await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql')))) return;
  const mnt = mountSmallTmpfs(mkdtempSync(join(root, 'fdisk-')));
  if (!mnt) return;
  const bank = await createBank({ name: 'txc_fdisk', accounts: 4 });
  const logDir = join(mnt, 'txlog');
  const filler = join(mnt, 'filler');
  const acknowledged = new Set<string>();
  const refused = new Set<string>();
  let unknown = 0;
  let coord = await createCoordinator(coordinatorConfig({ id: COORD_ID, logDir }));
  try {
    // Leave the disk full: only the slack of the segment's last tmpfs page is still writable, so
    // a few decisions still fit and then the writes start failing.
    const filled = fillUp(filler);
    let firstFailure: TxcError | undefined;
    for (let i = 0; i < 200 && !firstFailure; i++) {
      const id = `fd-${i}`;
      try {
        await transfer(coord, bank, id, i % 4, (i + 1) % 4, 1 + (i % 7));
        acknowledged.add(id);
      } catch (err) {
        expect(TxcError.is(err), String(err)).toBe(true);
        firstFailure = err as TxcError;
        if (TxcError.is(err, 'TXC_OUTCOME_UNKNOWN')) unknown++;
        else {
          expect((err as TxcError).code).toBe('TXC_LOG_IO');
          refused.add(id);
        }
      }
    }
    expect(firstFailure, 'the log never ran out of space').toBeDefined();
    // A rejected decision rolls back at once: nothing of it stays prepared (unless its durability is unknown).
    if (unknown === 0) expect(await bank.listPrepared(COORD_ID)).toEqual([]);
    // The log is poisoned now: concurrent transfers are all refused, none half-done.
    const more = await Promise.allSettled(Array.from({ length: 8 }, (_v, k) => transfer(coord, bank, `fd-after-${k}`, k % 4, (k + 2) % 4, 3)));
    more.forEach((r, k) => {
      expect(r.status, `fd-after-${k}`).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as unknown;
      if (TxcError.is(err, 'TXC_OUTCOME_UNKNOWN')) unknown++;
      else {
        expect(TxcError.is(err, 'TXC_LOG_IO'), String(err)).toBe(true);
        refused.add(`fd-after-${k}`);
      }
    });
    await coord.close({ timeoutMs: 5_000 }).catch(() => undefined);
    // Free the space and restart: recovery on start resolves whatever is in doubt.
    unlinkSync(filler);
    coord = await createCoordinator(coordinatorConfig({ id: COORD_ID, logDir }));
    const report = await coord.recover();
    expect(report.failures).toEqual([]);
    // The restarted coordinator writes decisions again.
    await transfer(coord, bank, 'fd-final', 0, 1, 5);
    acknowledged.add('fd-final');
    const inv = await bank.checkInvariants({ coordinatorId: COORD_ID, acknowledged, refused });
    assertInvariants(inv);
    console.log(
      `${TAG} full disk: filled ${filled} bytes of a 64 KiB tmpfs; ${acknowledged.size - 1} transfers acknowledged before the disk was full, ${refused.size} refused with TXC_LOG_IO, ${unknown} TXC_OUTCOME_UNKNOWN; after freeing space and restarting: ${inv.transfers.both} transfers on both sides, invariants hold (${Date.now() - t0} ms)`,
    );
  } finally {
    await coord.close({ timeoutMs: 5_000 }).catch(() => undefined);
    await bank.rollbackPrepared(COORD_ID).catch(() => 0);
    await bank.drop().catch(() => undefined);
    try {
      execFileSync('umount', [mnt], { stdio: 'pipe' });
      rmSync(mnt, { recursive: true, force: true });
    } catch (err) {
      console.log(`${TAG} could not unmount ${mnt}: ${String(err)}`);
    }
  }
}
