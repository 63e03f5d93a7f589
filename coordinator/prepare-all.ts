import { TxcError } from './errors.js';
import type { Runtime } from './runtime.js';
import type { BranchEntry } from './transaction-context.js';
import { settleAll, withTimeout } from './with-timeout.js';

async function prepareOne(rt: Runtime, gtrid: string, e: BranchEntry): Promise<void> {
  e.state = 'preparing';
  try {
    const r = await e.branch.prepare();
    // A branch the database found read-only at prepare is already over (Oracle): nothing to commit.
    e.state = r.readOnly ? 'finished' : 'prepared';
    if (r.localTxId !== undefined) e.localTxId = r.localTxId;
  } catch (err) {
    // A refused prepare is rolled back by the adapter; anything else may or may not have prepared.
    if (TxcError.is(err, 'TXC_PREPARE_FAILED')) e.state = 'finished';
    throw err;
  }
  await rt.point('after-prepare', { gtrid, participant: e.name });
}

/** Wraps a prepare-phase failure as TXC_PREPARE_FAILED unless it already says what happened. */
export function asPrepareFailure(err: unknown, gtrid: string): TxcError {
  if (TxcError.is(err) && (err.code === 'TXC_PREPARE_FAILED' || err.code === 'TXC_PREPARE_TIMEOUT')) return err;
  return new TxcError('TXC_PREPARE_FAILED', `Transaction ${gtrid} could not be prepared`, { cause: err, retryable: TxcError.is(err) && err.retryable });
}

/**
 * Phase one: prepares every branch in parallel under one deadline. Rejects (with every prepare
 * settled or abandoned past the deadline) with TXC_PREPARE_FAILED / TXC_PREPARE_TIMEOUT.
 */
export async function prepareAll(rt: Runtime, gtrid: string, branches: readonly BranchEntry[], timeoutMs: number): Promise<void> {
  try {
    await withTimeout(rt.clock, settleAll(branches.map((w) => prepareOne(rt, gtrid, w))), timeoutMs, () =>
      new TxcError('TXC_PREPARE_TIMEOUT', `Transaction ${gtrid} did not prepare within ${timeoutMs} ms`, {
        details: { participants: branches.filter((w) => w.state === 'preparing').map((w) => w.name).join(',') },
        retryable: true,
      }),
    );
  } catch (err) {
    throw asPrepareFailure(err, gtrid);
  }
}
