import type { Participant } from '../participants/participant.js';
import type { InDoubtBranch } from './types.js';
import { markerParticipantOf, type Xid } from './xid.js';

/** Participants that can be a commit-marked last resource: one-phase, with local transactions. */
export function lastResourcesOf(participants: Iterable<Participant>): string[] {
  return [...participants].filter((p) => !p.capabilities.twoPhase && p.capabilities.localTransactions).map((p) => p.name);
}

/**
 * Participants that may hold commit markers of a coordinator's transactions: every possible
 * last resource, and `decisionIn`.
 */
export function markerHoldersOf(participants: Iterable<Participant>, decisionIn: string | undefined): string[] {
  return [...new Set([...lastResourcesOf(participants), ...(decisionIn !== undefined ? [decisionIn] : [])])];
}

/** Participants whose commit marker could decide `xid`: the one its qualifier names first, then every holder. */
export function markerCandidatesOf(xid: Pick<Xid, 'bqual'>, holders: readonly string[]): string[] {
  const named = markerParticipantOf(xid);
  return [...new Set([...(named !== undefined ? [named] : []), ...holders])];
}

/**
 * What the log says of a branch found prepared, the same for recovery and `txcoord status`:
 * commit when a commit record exists; unknown when another coordinator owns it; else the commit
 * markers decide when any participant may hold one; else rollback (presumed abort).
 */
export function inDoubtDecision(
  xid: Pick<Xid, 'bqual'>,
  facts: { readonly committed: boolean; readonly ours: boolean; readonly markerHolders: readonly string[] },
): Pick<InDoubtBranch, 'decision' | 'markerIn'> {
  if (facts.committed) return { decision: 'commit' };
  if (!facts.ours) return { decision: 'unknown' };
  const markerIn = markerCandidatesOf(xid, facts.markerHolders);
  return markerIn.length > 0 ? { decision: 'marker', markerIn } : { decision: 'rollback' };
}
