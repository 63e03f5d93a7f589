import type { Logger } from 'pino';
import type { BranchRecord, CommitRecord } from '../log/log-record.js';
import type { Branch } from '../participants/participant.js';
import type { BackgroundWork } from './background-work.js';
import { backoffDelay } from './backoff.js';
import { withTimeout } from './with-timeout.js';
import { stillOwned } from './ownership.js';
import { sleep } from './clock.js';
import { TxcError } from './errors.js';
import type { Runtime } from './runtime.js';
import type { HeuristicReport } from './types.js';
import { TXC_FORMAT_ID, xidKey, type Xid } from './xid.js';

/** What committing one branch of a decided transaction found. */
export type BranchCommitOutcome =
  | { readonly kind: 'committed' }
  | { readonly kind: 'retry'; readonly error?: unknown }
  | { readonly kind: 'heuristic'; readonly report: HeuristicReport };

function heuristic(gtrid: string, b: BranchRecord, actual: HeuristicReport['actual']): BranchCommitOutcome {
  return { kind: 'heuristic', report: { gtrid, participant: b.participant, bqual: b.bqual, expected: 'commit', actual } };
}

/**
 * Commits one branch of a committed transaction from a fresh connection. An "unknown xid" answer
 * is never taken as done on its own: the branch must be absent from the in-doubt list, and where
 * the database can report the local transaction's fate, that fate must not be "aborted".
 */
export async function commitBranch(rt: Runtime, record: CommitRecord, b: BranchRecord): Promise<BranchCommitOutcome> {
  const participant = rt.participants.get(b.participant);
  if (!participant) {
    return { kind: 'retry', error: new TxcError('TXC_PARTICIPANT_UNKNOWN', `Committed transaction ${record.gtrid} has a branch on '${b.participant}', which is not configured`) };
  }
  const xid: Xid = { formatId: TXC_FORMAT_ID, gtrid: record.gtrid, bqual: b.bqual };
  try {
    const result = await participant.commitPrepared(xid);
    if (result === 'done') return { kind: 'committed' };
    if (result === 'rolled-back') return heuristic(record.gtrid, b, 'rolled-back');
    const inDoubt = await participant.listInDoubt();
    if (inDoubt.some((x) => xidKey(x) === xidKey(xid))) return { kind: 'retry' };
    return confirmFinished(rt, record, b);
  } catch (error) {
    return { kind: 'retry', error };
  }
}

/** For a branch no longer prepared: was it committed (fine) or rolled back by someone (heuristic)? */
export async function confirmFinished(rt: Runtime, record: CommitRecord, b: BranchRecord): Promise<BranchCommitOutcome> {
  const participant = rt.participants.get(b.participant);
  if (!b.localTxId || !participant?.localStatus) return { kind: 'committed' };
  const status = await participant.localStatus(b.localTxId);
  if (status === 'aborted') return heuristic(record.gtrid, b, 'rolled-back');
  if (status === 'in-progress') return { kind: 'retry' };
  return { kind: 'committed' };
}

/**
 * Records heuristic outcomes (forced: an audit fact, never hidden) and the end record of a
 * finished transaction. The end record is not forced, and with `awaitEnd: false` not even
 * waited for: losing it only makes recovery check the transaction once more, while waiting for
 * it would put the next group-commit flush on every transaction's response time.
 */
export async function endCommitted(
  rt: Runtime,
  record: CommitRecord,
  heuristics: readonly HeuristicReport[],
  { awaitEnd = true }: { awaitEnd?: boolean } = {},
): Promise<void> {
  for (const h of heuristics) {
    rt.stats.heuristic++;
    rt.logger.error({ txid: h.gtrid, participant: h.participant, bqual: h.bqual, expected: h.expected, actual: h.actual }, 'heuristic outcome: a branch did not reach the logged decision');
    await rt.log.append({ type: 'heuristic', ...h, at: rt.clock.now() }, true);
  }
  await rt.point('before-end', { gtrid: record.gtrid });
  const end = rt.log.append({ type: 'end', gtrid: record.gtrid, at: rt.clock.now(), ...(record.saga ? { status: 'committed' as const } : {}) }, false);
  // Every branch acknowledged: the marker that decided the transaction is no longer needed.
  if (record.markerIn) rt.markers.collect(record.markerIn, record.gtrid);
  if (awaitEnd) await end;
  else end.catch((err: unknown) => rt.logger.warn({ txid: record.gtrid, err }, 'end record not written; recovery will end the transaction'));
}

/** A decided transaction's branch, prepared on a pinned connection. */
export interface DecidedBranch {
  readonly name: string;
  readonly branch: Branch;
}

/**
 * Phase two of a decided transaction: commits every prepared branch on its pinned connection in
 * parallel. The caller waits at most `phaseTwoTimeoutMs`; a commit not acknowledged by then (or
 * failed) goes on in the background with backoff, and the result says so. Returns true when
 * work was handed to the background, which then removes the gtrid from `inFlight` itself.
 */
export async function commitDecided(
  rt: Runtime,
  background: BackgroundWork,
  record: CommitRecord,
  writers: readonly DecidedBranch[],
  log: Logger,
): Promise<boolean> {
  const gtrid = record.gtrid;
  const outcomes = await Promise.allSettled(
    writers.map((w) =>
      withTimeout(
        rt.clock,
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
    const b = record.branches.find((x) => x.participant === writers[i]?.name) as BranchRecord;
    if (o.status === 'fulfilled' && o.value === 'done') return;
    if (o.status === 'fulfilled' && o.value === 'rolled-back') {
      heuristics.push({ gtrid, participant: b.participant, bqual: b.bqual, expected: 'commit', actual: 'rolled-back' });
      return;
    }
    writers[i]?.branch.release(true);
    remaining.push(b);
  });
  if (remaining.length === 0) {
    await endCommitted(rt, record, heuristics, { awaitEnd: false });
    return false;
  }
  log.warn({ branches: remaining.map((b) => b.participant) }, 'phase-two commit not acknowledged; retrying in the background (the transaction is committed)');
  background.track(
    retryPhaseTwo(rt, record, remaining, heuristics, background.signal)
      .catch((err: unknown) => log.error({ err }, 'phase-two retry stopped; recovery will finish the transaction'))
      .finally(() => rt.inFlight.delete(gtrid)),
  );
  return true;
}

/**
 * Keeps committing the `remaining` branches with backoff until all are done or the coordinator
 * closes (then the live commit record hands the work to the next recovery). The gtrid stays in
 * `inFlight` meanwhile so recovery does not drive the same transaction twice.
 */
export async function retryPhaseTwo(
  rt: Runtime,
  record: CommitRecord,
  remaining: readonly BranchRecord[],
  heuristics: HeuristicReport[],
  signal: AbortSignal,
): Promise<void> {
  const log = rt.logger.child({ txid: record.gtrid });
  let left = [...remaining];
  for (let attempt = 0; left.length > 0; attempt++) {
    if (signal.aborted) {
      log.warn({ branches: left.map((b) => b.participant) }, 'coordinator closing with phase two unfinished; recovery will finish it');
      return;
    }
    if (!stillOwned(rt, record.gtrid)) {
      log.warn('another coordinator process took this transaction over; it finishes phase two');
      return;
    }
    await sleep(rt.clock, backoffDelay(attempt, rt.backoff, rt.random), signal);
    if (signal.aborted) continue;
    rt.stats.phaseTwoRetries += left.length;
    const outcomes = await Promise.all(left.map((b) => commitBranch(rt, record, b)));
    const next: BranchRecord[] = [];
    outcomes.forEach((o, i) => {
      const b = left[i] as BranchRecord;
      if (o.kind === 'retry') {
        next.push(b);
        log.warn({ participant: b.participant, attempt, err: o.error }, 'phase-two commit not acknowledged yet; retrying');
      } else if (o.kind === 'heuristic') heuristics.push(o.report);
    });
    left = next;
  }
  await endCommitted(rt, record, heuristics);
  log.info('phase two finished after retries');
}
