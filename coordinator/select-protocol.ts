import type { BranchEntry } from './transaction-context.js';
import type { TransactionModeOption } from './types.js';

/** The commit protocol chosen for a transaction's written branches. */
export type Protocol =
  | { readonly kind: 'one-phase'; readonly writer: BranchEntry }
  | { readonly kind: '2pc' }
  | { readonly kind: 'last-resource'; readonly last: BranchEntry; readonly prepared: readonly BranchEntry[] }
  | { readonly kind: 'saga' };

/**
 * The strongest guarantee the written branches allow (the table in the README):
 * one writer commits alone; every writer can prepare → 2PC (with the decision as a marker in
 * `decisionIn` when that participant wrote); exactly one cannot → it is the last resource;
 * more than one cannot (or the caller asked for a saga) → saga.
 */
export function selectProtocol(writers: readonly BranchEntry[], mode: TransactionModeOption, decisionIn: string | undefined): Protocol {
  const locals = writers.filter((w) => !w.twoPhase);
  if (writers.length === 1 && (mode !== 'saga' || locals.length === 0)) return { kind: 'one-phase', writer: writers[0] as BranchEntry };
  if (locals.length === 0) {
    const holder = decisionIn === undefined ? undefined : writers.find((w) => w.name === decisionIn && w.branch.insertMarker !== undefined);
    return holder ? { kind: 'last-resource', last: holder, prepared: writers.filter((w) => w !== holder) } : { kind: '2pc' };
  }
  if (locals.length === 1 && mode !== 'saga') {
    const last = locals[0] as BranchEntry;
    return { kind: 'last-resource', last, prepared: writers.filter((w) => w !== last) };
  }
  return { kind: 'saga' };
}
