import type { Logger } from 'pino';
import type { BranchRecord, CommitRecord } from '../log/log-record.js';
import { backoffDelay } from './backoff.js';
import { sleep } from './clock.js';
import { TxcError } from './errors.js';
import { retryPhaseTwo, endCommitted } from './phase-two.js';
import { TxStateMachine } from './protocol.js';
import type { Runtime } from './runtime.js';
import { TransactionContext, type BranchEntry } from './transaction-context.js';
import type { HeuristicReport, TransactionOptions, TransactionResult, Tx } from './types.js';
import { newGtrid } from './xid.js';

/** Background phase-two work the coordinator waits for on close. */
export interface BackgroundWork {
  readonly signal: AbortSignal;
  track(p: Promise<void>): void;
}

function withTimeout<T>(rt: Runtime, p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = rt.clock.setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => (cancel(), resolve(v)),
      (e: unknown) => (cancel(), reject(e)),
    );
  });
}

/** Like Promise.all, but rejects only after every promise settled (no prepare left running on abort). */
async function settleAll(promises: readonly Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function asPrepareFailure(err: unknown, gtrid: string): TxcError {
  if (TxcError.is(err) && (err.code === 'TXC_PREPARE_FAILED' || err.code === 'TXC_PREPARE_TIMEOUT')) return err;
  return new TxcError('TXC_PREPARE_FAILED', `Transaction ${gtrid} could not be prepared`, { cause: err, retryable: TxcError.is(err) && err.retryable });
}

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
async function abortBranches(rt: Runtime, background: BackgroundWork, entries: readonly BranchEntry[], log: Logger): Promise<void> {
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
async function finishReader(e: BranchEntry, log: Logger): Promise<void> {
  try {
    await e.branch.commitOnePhase();
  } catch (err) {
    e.branch.release(true);
    log.debug({ participant: e.name, err }, 'read-only branch did not end cleanly (harmless: it wrote nothing)');
  }
  e.state = 'finished';
}

async function prepareOne(rt: Runtime, gtrid: string, e: BranchEntry): Promise<void> {
  e.state = 'preparing';
  try {
    const r = await e.branch.prepare();
    e.state = 'prepared';
    if (r.localTxId !== undefined) e.localTxId = r.localTxId;
  } catch (err) {
    // A refused prepare is rolled back by the adapter; anything else may or may not have prepared.
    if (TxcError.is(err, 'TXC_PREPARE_FAILED')) e.state = 'finished';
    throw err;
  }
  await rt.point('after-prepare', { gtrid, participant: e.name });
}

/**
 * Runs one global transaction: the user's callback, then the cheapest correct commit protocol
 * (nothing for read-only, one local commit for a single writer, presumed-abort 2PC otherwise).
 */
export async function runTransaction<T>(
  rt: Runtime,
  background: BackgroundWork,
  fn: (tx: Tx) => Promise<T>,
  options: TransactionOptions = {},
): Promise<TransactionResult<T>> {
  const gtrid = newGtrid(rt.id, rt.uuid);
  const startedAt = rt.clock.now();
  const log = rt.logger.child({ txid: gtrid });
  const sm = new TxStateMachine();
  const ctx = new TransactionContext(rt, gtrid);
  rt.inFlight.add(gtrid);
  let handedToBackground = false;
  const done = (mode: TransactionResult<T>['mode'], value: T, writers: readonly BranchEntry[], phaseTwoPending = false): TransactionResult<T> => {
    rt.stats.committed[mode]++;
    log.info({ mode, participants: writers.map((w) => w.name), ms: rt.clock.now() - startedAt, phaseTwoPending }, 'transaction committed');
    return { id: gtrid, outcome: 'committed', mode, value, participants: writers.map((w) => w.name), phaseTwoPending };
  };
  const fail = async (entries: readonly BranchEntry[], err: unknown): Promise<never> => {
    sm.to('aborting');
    await abortBranches(rt, background, entries, log);
    sm.to('aborted');
    rt.stats.rolledBack++;
    log.warn({ err, ms: rt.clock.now() - startedAt }, 'transaction rolled back');
    throw err;
  };

  try {
    let value: T;
    try {
      value = await fn(ctx.tx);
    } catch (err) {
      return await fail(await ctx.close(), err);
    }
    const entries = await ctx.close();

    let written: boolean[];
    try {
      await rt.point('before-prepare', { gtrid });
      written = await Promise.all(entries.map((e) => e.branch.hasWritten()));
    } catch (err) {
      return await fail(entries, asPrepareFailure(err, gtrid));
    }
    const writers = entries.filter((_, i) => written[i]);
    const readers = entries.filter((_, i) => !written[i]);

    if (writers.length === 0) {
      await Promise.all(readers.map((r) => finishReader(r, log)));
      sm.to('committed');
      return done('read-only', value, writers);
    }

    if (writers.length === 1) {
      const writer = writers[0] as BranchEntry;
      await Promise.all(readers.map((r) => finishReader(r, log)));
      sm.to('one-phase');
      try {
        await writer.branch.commitOnePhase();
        writer.state = 'finished';
      } catch (err) {
        writer.state = 'finished';
        const unknown = TxcError.is(err, 'TXC_OUTCOME_UNKNOWN');
        sm.to(unknown ? 'unknown' : 'aborted');
        if (unknown) rt.stats.outcomeUnknown++;
        else rt.stats.rolledBack++;
        log.warn({ err }, 'one-phase commit failed');
        throw err;
      }
      sm.to('committed');
      return done('one-phase', value, writers);
    }

    sm.to('preparing');
    const timeoutMs = options.prepareTimeoutMs ?? rt.prepareTimeoutMs;
    const [prepared] = await Promise.allSettled([
      withTimeout(rt, settleAll(writers.map((w) => prepareOne(rt, gtrid, w))), timeoutMs, () =>
        new TxcError('TXC_PREPARE_TIMEOUT', `Transaction ${gtrid} did not prepare within ${timeoutMs} ms`, {
          details: { participants: writers.filter((w) => w.state === 'preparing').map((w) => w.name).join(',') },
          retryable: true,
        }),
      ),
      Promise.all(readers.map((r) => finishReader(r, log))),
    ]);
    if (prepared.status === 'rejected') return await fail(writers, asPrepareFailure(prepared.reason, gtrid));

    sm.to('deciding');
    const branches: BranchRecord[] = writers.map((w) => ({
      participant: w.name,
      bqual: w.xid.bqual,
      ...(w.localTxId !== undefined ? { localTxId: w.localTxId } : {}),
    }));
    const record: CommitRecord = {
      type: 'commit',
      gtrid,
      branches,
      coordinatorId: rt.id,
      host: rt.host,
      pid: rt.pid,
      startedAt,
      decidedAt: rt.clock.now(),
      ...(options.meta ? { meta: options.meta } : {}),
    };
    try {
      await rt.log.append(record, true);
    } catch (err) {
      if (!(TxcError.is(err) && err.details['durability'] === 'unknown')) return await fail(writers, err);
      // The record may be on disk after all: a rollback now could contradict a decision that
      // recovery later reads. Leave the branches prepared; recovery with the reopened log decides.
      sm.to('unknown');
      rt.stats.outcomeUnknown++;
      for (const w of writers) w.branch.release(true);
      log.error({ err }, 'commit record may or may not be durable; branches left prepared for recovery');
      throw new TxcError('TXC_OUTCOME_UNKNOWN', `The decision log failed while recording the commit of ${gtrid}, so it may or may not be durable; restart the coordinator (or run \`txcoord recover\`) once the log's disk is fixed`, { cause: err });
    }
    await rt.point('after-decision', { gtrid });

    sm.to('committing');
    // The outcome is already decided: a database that stops answering must not hold the caller.
    // A commit not acknowledged in time goes to the background retry like a failed one.
    const outcomes = await Promise.allSettled(
      writers.map((w) =>
        withTimeout(
          rt,
          w.branch.commitPrepared().then(async (r) => {
            await rt.point('after-commit', { gtrid, participant: w.name });
            return r;
          }),
          rt.phaseTwoTimeoutMs,
          () => new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `${w.name} did not acknowledge the commit of ${gtrid} within ${rt.phaseTwoTimeoutMs} ms`, { retryable: true }),
        ),
      ),
    );
    const heuristics: HeuristicReport[] = [];
    const remaining: BranchRecord[] = [];
    outcomes.forEach((o, i) => {
      const b = branches[i] as BranchRecord;
      if (o.status === 'fulfilled' && o.value === 'done') return;
      if (o.status === 'fulfilled' && o.value === 'rolled-back') {
        heuristics.push({ gtrid, participant: b.participant, bqual: b.bqual, expected: 'commit', actual: 'rolled-back' });
        return;
      }
      (writers[i] as BranchEntry).branch.release(true);
      remaining.push(b);
    });
    sm.to('committed');
    if (remaining.length === 0) {
      await endCommitted(rt, record, heuristics, { awaitEnd: false });
      return done('2pc', value, writers);
    }
    handedToBackground = true;
    log.warn({ branches: remaining.map((b) => b.participant) }, 'phase-two commit not acknowledged; retrying in the background (the transaction is committed)');
    background.track(
      retryPhaseTwo(rt, record, remaining, heuristics, background.signal)
        .catch((err: unknown) => log.error({ err }, 'phase-two retry stopped; recovery will finish the transaction'))
        .finally(() => rt.inFlight.delete(gtrid)),
    );
    return done('2pc', value, writers, true);
  } finally {
    if (!handedToBackground) rt.inFlight.delete(gtrid);
  }
}
