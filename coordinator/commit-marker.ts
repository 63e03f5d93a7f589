import type { Logger } from 'pino';
import type { MarkerOutcome, Participant } from '../participants/participant.js';
import { backoffDelay } from './backoff.js';
import { sleep } from './clock.js';
import { TxcError } from './errors.js';
import type { Runtime } from './runtime.js';
import type { BranchEntry } from './transaction-context.js';
import { branchXid } from './xid.js';

/** What the marker commit of a last-resource transaction achieved. */
export type MarkerCommit = 'committed' | 'aborted' | 'unknown';

function noMarkers(p: Participant): TxcError {
  return new TxcError('TXC_UNSUPPORTED', `Participant ${p.name} (${p.driver}) cannot hold commit markers`, { details: { participant: p.name } });
}

/**
 * Makes the fate of `gtrid`'s marker in `participant` final and returns it: inserts an abort
 * marker unless a row exists. The insert waits for a marker insert still in flight (the unique
 * key's lock), so an ambiguous marker commit is resolved by the database, never by guessing;
 * once the abort marker is committed, a late commit-marker insert can only fail.
 */
export async function settleMarker(rt: Runtime, participant: string, gtrid: string): Promise<MarkerOutcome> {
  const p = rt.finishing.get(participant);
  if (!p) throw new TxcError('TXC_PARTICIPANT_UNKNOWN', `Transaction ${gtrid} keeps its commit marker in '${participant}', which is not configured`, { details: { participant } });
  if (!p.beginLocal) throw noMarkers(p);
  const branch = await p.beginLocal(branchXid(gtrid, 9999));
  try {
    if (!branch.insertMarker) throw noMarkers(p);
    const found = await branch.insertMarker(gtrid, 'abort');
    if (found !== 'inserted') {
      await branch.rollback();
      return found;
    }
    await branch.commitOnePhase();
    return 'abort';
  } catch (err) {
    branch.release(true);
    throw err;
  }
}

/** {@link settleMarker} with a few retries (the participant just failed once). */
async function settleWithRetries(rt: Runtime, participant: string, gtrid: string, log: Logger): Promise<MarkerOutcome | undefined> {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return await settleMarker(rt, participant, gtrid);
    } catch (err) {
      log.warn({ participant, err, attempt }, 'could not read the commit marker yet');
      await sleep(rt.clock, backoffDelay(attempt, rt.backoff, rt.random));
    }
  }
  return undefined;
}

/**
 * Sends the commit marker's INSERT in the last resource's transaction, uncommitted: it can travel
 * while the other branches prepare (it becomes the decision only when committed), so the commit
 * point costs one round trip after phase one instead of two.
 */
export function stageMarker(e: BranchEntry, gtrid: string): Promise<'inserted' | MarkerOutcome> {
  const insert = e.branch.insertMarker;
  if (!insert) return Promise.reject(noMarkers(e.participant));
  return insert.call(e.branch, gtrid, 'commit');
}

/**
 * The commit point of a last-resource transaction: commits the local transaction holding the
 * staged commit marker (see {@link stageMarker}). A refused commit means aborted; a lost
 * connection is settled by reading (and if need be blocking) the marker; 'unknown' only when
 * even that fails, and then recovery settles it the same way.
 */
export async function commitWithMarker(rt: Runtime, e: BranchEntry, gtrid: string, log: Logger, staged: Promise<'inserted' | MarkerOutcome>): Promise<{ outcome: MarkerCommit; error?: unknown }> {
  e.state = 'preparing';
  try {
    const found = await staged;
    // Recovery already settled this transaction as aborted (it thought us dead): obey it.
    if (found !== 'inserted') {
      await e.branch.rollback().catch(() => e.branch.release(true));
      e.state = 'finished';
      return found === 'commit' ? { outcome: 'committed' } : { outcome: 'aborted', error: new TxcError('TXC_COMMIT_FAILED', `Recovery had already settled ${gtrid} as aborted`) };
    }
    await e.branch.commitOnePhase();
    e.state = 'finished';
    return { outcome: 'committed' };
  } catch (err) {
    e.state = 'finished';
    e.branch.release(true);
    if (!TxcError.is(err, 'TXC_OUTCOME_UNKNOWN')) {
      log.warn({ participant: e.name, err }, 'the last resource did not commit; rolling back');
      return { outcome: 'aborted', error: err };
    }
    log.warn({ participant: e.name, err }, 'marker commit outcome unknown; settling it from the marker table');
    const settled = await settleWithRetries(rt, e.name, gtrid, log);
    return { outcome: settled === undefined ? 'unknown' : settled === 'commit' ? 'committed' : 'aborted', error: err };
  }
}
