import type { Logger } from 'pino';
import { abortBranches } from '../coordinator/abort-branches.js';
import type { BackgroundWork } from '../coordinator/background-work.js';
import { TxcError } from '../coordinator/errors.js';
import { commitDecided } from '../coordinator/phase-two.js';
import type { Runtime } from '../coordinator/runtime.js';
import type { BranchEntry } from '../coordinator/transaction-context.js';
import type { AuditFields, CommitRecord, JsonValue, SagaOperation, SagaRecord } from '../log/log-record.js';
import { barrierCompensation, compensateStep } from './compensate-step.js';

function toJsonParams(params: readonly unknown[] | undefined): JsonValue[] | undefined {
  if (params === undefined) return undefined;
  // Stored in the log, so they must survive JSON (a Date becomes its ISO string, as drivers accept).
  return JSON.parse(JSON.stringify(params)) as JsonValue[];
}

/** What a saga-mode transaction's commit did. */
export interface SagaCommit {
  /** Some phase-two commit goes on in the background. */
  readonly phaseTwoPending: boolean;
}

/**
 * Commits a transaction some of whose written participants cannot prepare, as a saga:
 *  1. the branches that can prepare are prepared (the caller did that) and stay invisible;
 *  2. the saga record, with every compensation, is forced to the log;
 *  3. each one-phase branch commits locally, with its barrier row in the same transaction;
 *  4. all committed: the prepared branches commit as in 2PC (forced decision, then phase two);
 *     any failed: the prepared branches roll back and every one-phase branch is compensated
 *     (the barrier turns the compensation of a branch that never committed into a no-op).
 * Readers of a one-phase database see its changes from step 3, and see them undone if the
 * saga compensates; readers of the 2PC databases never see an undone change.
 */
export async function commitAsSaga(
  rt: Runtime,
  background: BackgroundWork,
  audit: AuditFields & { readonly gtrid: string },
  writers: readonly BranchEntry[],
  log: Logger,
): Promise<SagaCommit> {
  const { gtrid } = audit;
  const prepared = writers.filter((w) => w.twoPhase);
  const locals = writers.filter((w) => !w.twoPhase);
  const record: SagaRecord = {
    ...audit,
    type: 'saga',
    kind: 'transaction',
    steps: locals.map((e) => ({
      name: e.name,
      participant: e.name,
      compensate: e.compensations.map((c): SagaOperation => {
        const params = toJsonParams(c.params);
        return params === undefined ? { sql: c.sql } : { sql: c.sql, params };
      }),
    })),
  };
  try {
    await rt.log.append(record, true);
  } catch (err) {
    await abortBranches(rt, background, writers, log);
    throw err;
  }

  const results = await Promise.allSettled(
    locals.map(async (e) => {
      await rt.point('saga-before-action', { gtrid, step: e.name });
      const found = await e.branch.insertBarrier!({ gid: gtrid, step: e.name, op: 'action', origin: 'action' });
      if (found !== 'inserted') throw new TxcError('TXC_COMMIT_FAILED', `Transaction ${gtrid} was already being compensated on ${e.name}`);
      e.state = 'preparing';
      await e.branch.commitOnePhase();
      e.state = 'finished';
      await rt.point('saga-after-action', { gtrid, step: e.name });
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) {
    if (prepared.length === 0) {
      await rt.log.append({ type: 'end', gtrid, at: rt.clock.now(), status: 'committed' }, true);
      return { phaseTwoPending: false };
    }
    const decision: CommitRecord = {
      ...audit,
      type: 'commit',
      protocol: '2pc',
      saga: true,
      branches: prepared.map((w) => ({ participant: w.name, bqual: w.xid.bqual, ...(w.localTxId !== undefined ? { localTxId: w.localTxId } : {}) })),
      decidedAt: rt.clock.now(),
    };
    // Without this record, recovery compensates: a failure here undoes the saga like any other.
    try {
      await rt.log.append(decision, true);
      await rt.point('after-decision', { gtrid });
      return { phaseTwoPending: await commitDecided(rt, background, decision, prepared, log) };
    } catch (err) {
      return await undo(rt, background, record, writers, err, log);
    }
  }
  return undo(rt, background, record, writers, failed.reason, log);
}

/**
 * Undoes the one-phase branches of a saga-mode transaction, last first, each one's statements
 * in reverse order behind the barrier (a branch that never committed gets a null compensation),
 * skipping the ones already compensated; then forces the end record. The same for the failed
 * commit and for recovery, which reads the steps from the saga record.
 */
export async function compensateTransactionSteps(
  rt: Runtime,
  record: SagaRecord,
  alreadyDone: ReadonlySet<string>,
  signal: AbortSignal,
  log: Logger,
): Promise<'compensated' | 'failed'> {
  let failed = false;
  for (const step of [...(record.steps ?? [])].reverse()) {
    if (alreadyDone.has(step.name)) continue;
    const ops = Array.isArray(step.compensate) ? step.compensate : step.compensate ? [step.compensate] : [];
    const work = async (query: (sql: string, params?: readonly unknown[]) => Promise<unknown>) => {
      for (const op of [...ops].reverse()) if ('sql' in op) await query(op.sql, op.params);
    };
    const target = { gtrid: record.gtrid, step: step.name, participant: step.participant, signal, log };
    if ((await compensateStep(rt, target, barrierCompensation(rt, step.participant, record.gtrid, step.name, work))) === 'failed') failed = true;
  }
  const status = failed ? 'failed' : 'compensated';
  await rt.log.append({ type: 'end', gtrid: record.gtrid, at: rt.clock.now(), status }, true);
  return status;
}

async function undo(rt: Runtime, background: BackgroundWork, record: SagaRecord, writers: readonly BranchEntry[], cause: unknown, log: Logger): Promise<never> {
  for (const e of writers) if (!e.twoPhase && e.state !== 'finished') e.branch.release(true);
  await abortBranches(rt, background, writers.filter((w) => w.twoPhase), log);
  log.warn({ err: cause }, 'saga-mode transaction failed to commit everywhere; compensating');
  const failed = (await compensateTransactionSteps(rt, record, new Set(), background.signal, log)) === 'failed';
  throw new TxcError(failed ? 'TXC_COMPENSATION_FAILED' : 'TXC_COMMIT_FAILED', `Saga-mode transaction ${record.gtrid} could not commit on every participant and was ${failed ? 'only partly compensated' : 'compensated'}`, {
    cause,
    details: { compensated: !failed },
  });
}
