import type { Logger } from 'pino';
import type { BackgroundWork } from './background-work.js';
import { backoffDelay } from './backoff.js';
import { sleep } from './clock.js';
import type { Runtime } from './runtime.js';
import type { BranchEntry } from './transaction-context.js';

/**
 * Rolls back, from fresh connections, a branch that is or may become prepared (a prepare we
 * stopped waiting for may still land; a rollback may have failed), a few times with backoff;
 * anything still prepared after that is found by the recovery timer (no commit record).
 */
async function rollBackStraggler(rt: Runtime, e: BranchEntry, signal: AbortSignal, log: Logger): Promise<void> {
  for (let attempt = 0; attempt < 5 && !signal.aborted; attempt++) {
    try {
      if ((await e.participant.rollbackPrepared(e.xid)) === 'done') return;
    } catch (err) {
      log.debug({ participant: e.name, err }, 'rollback of a timed-out prepare failed; retrying');
    }
    await sleep(rt.clock, backoffDelay(attempt + 3, rt.backoff, rt.random), signal);
  }
}

/**
 * Rolls back every branch. Failures are logged, not thrown: with presumed abort, any branch left
 * prepared has no commit record, so recovery rolls it back.
 */
export async function abortBranches(rt: Runtime, background: BackgroundWork, entries: readonly BranchEntry[], log: Logger): Promise<void> {
  await Promise.all(
    entries.map(async (e) => {
      if (e.state === 'finished') return;
      try {
        if (e.state === 'preparing') {
          // Still preparing after the deadline: drop the connection (MariaDB detaches the branch
          // only then) and roll back from fresh ones, now and if the prepare lands late.
          e.branch.release(true);
          background.track(rollBackStraggler(rt, e, background.signal, log));
        } else {
          await e.branch.rollback();
        }
      } catch (err) {
        e.branch.release(true);
        // A prepared branch keeps its locks until someone rolls it back: retry soon rather than
        // leave it to the next recovery pass (an unprepared one ended with its connection).
        if (e.state === 'prepared') background.track(rollBackStraggler(rt, e, background.signal, log));
        log.warn({ participant: e.name, err }, 'rollback failed; retrying in the background (recovery would also roll it back)');
      }
      e.state = 'finished';
    }),
  );
}

/** Commits a read-only branch to release its locks; what it read needs no outcome. */
export async function finishReader(e: BranchEntry, log: Logger): Promise<void> {
  try {
    await e.branch.commitOnePhase();
  } catch (err) {
    e.branch.release(true);
    log.debug({ participant: e.name, err }, 'read-only branch did not end cleanly (harmless: it wrote nothing)');
  }
  e.state = 'finished';
}
