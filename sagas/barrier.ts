import { TxcError } from '../coordinator/errors.js';
import { branchXid } from '../coordinator/xid.js';
import type { Branch, Participant, QueryResult } from '../participants/participant.js';

/** What a barrier-guarded action did. */
export type BarrierActionOutcome<T> =
  | { readonly kind: 'applied'; readonly value: T }
  /** The same action had already been applied (a duplicate delivery): nothing done. */
  | { readonly kind: 'duplicate' }
  /** Its compensation ran first (a null compensation): the late action must do nothing. */
  | { readonly kind: 'hanging' };

/** What a barrier-guarded compensation did. */
export type BarrierCompensationOutcome =
  | 'applied'
  /** Already compensated (a duplicate delivery). */
  | 'duplicate'
  /** The action never happened: nothing to undo, and it is now barred from happening. */
  | 'null';

function unsupported(p: Participant): TxcError {
  return new TxcError('TXC_UNSUPPORTED', `Participant ${p.name} (${p.driver}) has no local transactions, so a saga step cannot run on it exactly once`, {
    details: { participant: p.name },
  });
}

async function inLocalTransaction<T>(p: Participant, gid: string, work: (b: Branch) => Promise<{ commit: boolean; value: T }>): Promise<T> {
  if (!p.beginLocal) throw unsupported(p);
  const branch = await p.beginLocal(branchXid(gid, 9998));
  try {
    if (!branch.insertBarrier) throw unsupported(p);
    const { commit, value } = await work(branch);
    if (commit) await branch.commitOnePhase();
    else await branch.rollback();
    return value;
  } catch (err) {
    // Closing the connection rolls the local transaction back.
    branch.release(true);
    throw err;
  }
}

/**
 * Runs a saga action on a database exactly once: the barrier row (gid, step, 'action') is
 * written in the same local transaction as the action's statements, so a repeat finds it and
 * does nothing, and a compensation that got there first (its placeholder row) bars it.
 */
export function runAction<T>(p: Participant, gid: string, step: string, work: (query: (sql: string, params?: readonly unknown[]) => Promise<QueryResult>) => Promise<T>): Promise<BarrierActionOutcome<T>> {
  return inLocalTransaction<BarrierActionOutcome<T>>(p, gid, async (b) => {
    const found = await b.insertBarrier!({ gid, step, op: 'action', origin: 'action' });
    if (found === 'action') return { commit: false, value: { kind: 'duplicate' } };
    if (found === 'compensate') return { commit: false, value: { kind: 'hanging' } };
    const value = await work((sql, params) => b.query(sql, params));
    return { commit: true, value: { kind: 'applied', value } };
  });
}

/**
 * Runs a saga compensation on a database at most once, and only if its action happened: the
 * (gid, step, 'compensate') row makes a repeat a no-op; inserting the action's row as a
 * placeholder tells whether the action ran (the row existed) or not (a null compensation,
 * which also stops a late action from ever applying).
 */
export function runCompensation(p: Participant, gid: string, step: string, work: (query: (sql: string, params?: readonly unknown[]) => Promise<QueryResult>) => Promise<void>): Promise<BarrierCompensationOutcome> {
  return inLocalTransaction<BarrierCompensationOutcome>(p, gid, async (b) => {
    const again = await b.insertBarrier!({ gid, step, op: 'compensate', origin: 'compensate' });
    if (again !== 'inserted') return { commit: false, value: 'duplicate' };
    const action = await b.insertBarrier!({ gid, step, op: 'action', origin: 'compensate' });
    if (action === 'inserted') return { commit: true, value: 'null' };
    await work((sql, params) => b.query(sql, params));
    return { commit: true, value: 'applied' };
  });
}
