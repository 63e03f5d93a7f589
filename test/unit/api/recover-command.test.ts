import { createStatsCounters, snapshotStats } from '../../../coordinator/stats.js';
import { describe, expect, it } from 'vitest';
import { recoverWith } from '../../../api/commands/recover.js';
import { EXIT } from '../../../api/exit-codes.js';
import type { Coordinator, RecoverOptions, RecoveryReport } from '../../../coordinator/types.js';
import { captureIO } from './capture-io.js';

/** A coordinator whose recovery pass "resolves" `branches` branches, reporting progress for each. */
function fakeCoordinator(branches: number, report: Partial<RecoveryReport> = {}): Coordinator & { calls: RecoverOptions[] } {
  const calls: RecoverOptions[] = [];
  return {
    id: 'me',
    calls,
    async recover(options: RecoverOptions = {}) {
      calls.push(options);
      for (let i = 1; i <= branches; i++) options.onProgress?.(i, branches);
      return { committed: branches, rolledBack: 0, ended: branches, heuristic: [], remaining: [], failures: [], sagas: { resumed: 0, committed: 0, compensated: 0, failed: 0, remaining: [] }, markersRemoved: 0, barrierRowsRemoved: 0, ...report };
    },
    transaction: () => Promise.reject(new Error('not used')),
    saga: () => Promise.reject(new Error('not used')),
    runSaga: () => Promise.reject(new Error('not used')),
    defineSaga: () => undefined,
    submitSaga: () => Promise.reject(new Error('not used')),
    sagaStatus: () => Promise.resolve(undefined),
    resolve: () => Promise.reject(new Error('not used')),
    external: {
      begin: () => Promise.reject(new Error('not used')),
      addBranch: () => Promise.reject(new Error('not used')),
      commit: () => Promise.reject(new Error('not used')),
      abort: () => Promise.reject(new Error('not used')),
      get: () => undefined,
    },
    inDoubt: () => Promise.resolve([]),
    stats: () => snapshotStats(createStatsCounters(), 0),
    close: () => Promise.resolve(),
  };
}

describe('recover command', () => {
  it('draws a progress line on a terminal for a long pass, then erases it before the report', async () => {
    const io = captureIO({ isTTY: true });
    expect(await recoverWith(fakeCoordinator(25), {}, io)).toBe(EXIT.OK);
    const out = io.stdout.join('');
    expect(out).toContain('\rResolving in-doubt branches: 1/25');
    expect(out).toContain('\rResolving in-doubt branches: 25/25');
    expect(out.indexOf('\r\x1b[K')).toBeLessThan(out.indexOf('Recovery pass'));
  });

  it('draws none for a short pass, when piped, or with --json', async () => {
    for (const [branches, isTTY, json] of [
      [3, true, false],
      [25, false, false],
      [25, true, true],
    ] as const) {
      const io = captureIO({ isTTY });
      await recoverWith(fakeCoordinator(branches), { json }, io);
      expect(io.stdout.join('')).not.toContain('Resolving');
    }
    const piped = fakeCoordinator(25);
    await recoverWith(piped, {}, captureIO());
    expect(piped.calls[0]?.onProgress).toBeUndefined();
  });

  it('passes --dry-run through and prints valid JSON', async () => {
    const coord = fakeCoordinator(0);
    const io = captureIO();
    expect(await recoverWith(coord, { dryRun: true, json: true }, io)).toBe(EXIT.OK);
    expect(coord.calls[0]?.dryRun).toBe(true);
    expect(JSON.parse(io.stdout.join(''))).toMatchObject({ coordinatorId: 'me', dryRun: true, remaining: [] });
  });

  it('exits 1 when a participant could not be checked', async () => {
    const coord = fakeCoordinator(0, { failures: [{ participant: 'a', code: 'TXC_PARTICIPANT_UNAVAILABLE', message: 'down' }] });
    expect(await recoverWith(coord, {}, captureIO())).toBe(EXIT.ATTENTION);
  });
});
