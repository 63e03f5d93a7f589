import { TxcError } from '../coordinator/errors.js';
import type { DecisionCallOptions } from './txcoord-client-options.js';
import type { AbortAnswer, TransactionView } from './wire-types.js';

/** The calls {@link settleCommit} makes. */
export interface SettleCalls {
  getTransaction(id: string): Promise<TransactionView>;
  abort(id: string, options?: DecisionCallOptions): Promise<AbortAnswer>;
}

/**
 * What became of a transaction whose commit call failed. A commit that got no answer (network,
 * timeout, 5xx) may have been decided, so the state is read: committing or committed is a
 * success (the server answers a repeated commit the same way), aborted is a failure, and an
 * active one is aborted here so the outcome is settled now rather than at its deadline.
 * Resolves with `phaseTwoPending` on success; throws otherwise, TXC_OUTCOME_UNKNOWN when the
 * server cannot say.
 */
export async function settleCommit(calls: SettleCalls, id: string, failure: unknown): Promise<{ readonly phaseTwoPending: boolean }> {
  const refused = isRefusal(failure);
  let view: TransactionView;
  try {
    view = await calls.getTransaction(id);
  } catch (err) {
    if (refused) throw failure;
    throw outcomeUnknown(id, failure);
  }
  if (view.state === 'committed' || view.state === 'committing') return { phaseTwoPending: view.state === 'committing' };
  if (view.state === 'aborted') throw refused ? failure : rolledBack(id, view.reason, failure);
  try {
    await calls.abort(id, { retry: true });
  } catch (err) {
    if (refused) throw failure;
    // The commit got in first after all (a slow request): the state says how it ended.
    if (TxcError.is(err, 'TXC_TRANSACTION_CLOSED')) {
      const again = await calls.getTransaction(id).catch(() => undefined);
      if (again?.state === 'committed' || again?.state === 'committing') return { phaseTwoPending: again.state === 'committing' };
      if (again?.state === 'aborted') throw rolledBack(id, again.reason, failure);
    }
    throw outcomeUnknown(id, failure);
  }
  throw refused ? failure : rolledBack(id, 'the commit did not reach the server, so it was aborted', failure);
}

/**
 * A 4xx answer to the first and only attempt: the server looked at the commit and said no, so it
 * decided nothing. After a retry, even a 404 may follow a commit that was decided (the server
 * restarted, or forgot the transaction).
 */
function isRefusal(err: unknown): boolean {
  if (!TxcError.is(err)) return false;
  const status = err.details['httpStatus'];
  const attempts = err.details['attempts'];
  return typeof status === 'number' && status >= 400 && status <= 499 && status !== 408 && status !== 429 && (attempts === undefined || attempts === 1);
}

function rolledBack(id: string, reason: string | undefined, cause: unknown): TxcError {
  return new TxcError('TXC_PREPARE_FAILED', `Transaction ${id} was rolled back (${reason ?? 'no reason given'}); the commit call itself had failed (see cause)`, {
    cause,
    details: { id, state: 'aborted', reason: reason ?? null },
  });
}

function outcomeUnknown(id: string, cause: unknown): TxcError {
  return new TxcError(
    'TXC_OUTCOME_UNKNOWN',
    `The commit of client-driven transaction ${id} got no answer and the server could not say how it ended: ` +
      `client.getTransaction(id) tells while the server remembers it, \`txcoord in-doubt\` after that`,
    { cause, details: { id } },
  );
}
