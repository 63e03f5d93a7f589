import type { Branch, Participant, QueryResult } from '../participants/participant.js';
import { TxcError } from './errors.js';
import type { Runtime } from './runtime.js';
import type { Tx } from './types.js';
import { branchXid, type Xid } from './xid.js';

/** Where a branch stands in the protocol; abort uses it to pick the right cleanup. */
export type BranchState = 'active' | 'preparing' | 'prepared' | 'finished';

/** One participant's branch inside a running transaction. */
export interface BranchEntry {
  readonly name: string;
  readonly participant: Participant;
  readonly xid: Xid;
  readonly branch: Branch;
  state: BranchState;
  localTxId?: string;
}

/**
 * The participants a transaction has joined. A participant joins on its first query (so one
 * never queried is never touched); concurrent first queries share one `begin`.
 */
export class TransactionContext {
  private readonly joins = new Map<string, Promise<BranchEntry>>();
  private readonly ops = new Set<Promise<unknown>>();
  private nextBranch = 0;
  private closed = false;

  /** The handle given to the user's callback. */
  readonly tx: Tx;

  constructor(
    private readonly rt: Runtime,
    readonly gtrid: string,
  ) {
    this.tx = { id: gtrid, query: (participant, sql, params) => this.query(participant, sql, params) };
  }

  private query(name: string, sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    if (this.closed) {
      return Promise.reject(new TxcError('TXC_TRANSACTION_CLOSED', `tx.query('${name}') was called after transaction ${this.gtrid} stopped accepting work`));
    }
    const participant = this.rt.participants.get(name);
    if (!participant) {
      const known = [...this.rt.participants.keys()].join(', ');
      return Promise.reject(new TxcError('TXC_PARTICIPANT_UNKNOWN', `tx.query('${name}'): known participants are ${known}`, { details: { participant: name } }));
    }
    const op = this.join(name, participant).then((entry) => entry.branch.query(sql, params));
    this.ops.add(op);
    const forget = () => this.ops.delete(op);
    op.then(forget, forget);
    return op;
  }

  private join(name: string, participant: Participant): Promise<BranchEntry> {
    let entry = this.joins.get(name);
    if (!entry) {
      const xid = branchXid(this.gtrid, this.nextBranch++);
      entry = participant.begin(xid).then((branch) => ({ name, participant, xid, branch, state: 'active' as BranchState }));
      this.joins.set(name, entry);
      // A failed begin leaves nothing to clean up; a later query may try to join again.
      const failed = entry;
      entry.catch(() => {
        if (this.joins.get(name) === failed) this.joins.delete(name);
      });
    }
    return entry;
  }

  /**
   * Stops accepting queries and waits for every one already issued to settle (a callback that
   * forgot an `await` must not race the prepare), then returns the joined branches.
   */
  async close(): Promise<BranchEntry[]> {
    this.closed = true;
    while (this.ops.size > 0) await Promise.allSettled([...this.ops]);
    const settled = await Promise.allSettled([...this.joins.values()]);
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }
}
