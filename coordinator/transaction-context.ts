import type { Branch, Participant, QueryResult } from '../participants/participant.js';
import { participantKind } from '../participants/participant.js';
import { TxcError } from './errors.js';
import type { Runtime } from './runtime.js';
import type { Compensation, QueryOptions, TransactionModeOption, Tx } from './types.js';
import { branchXid, type Xid } from './xid.js';

/** Where a branch stands in the protocol; abort uses it to pick the right cleanup. */
export type BranchState = 'active' | 'preparing' | 'prepared' | 'finished';

/** One participant's branch inside a running transaction. */
export interface BranchEntry {
  readonly name: string;
  readonly participant: Participant;
  readonly xid: Xid;
  readonly branch: Branch;
  /** The participant can prepare (false: it commits in one phase, as last resource or saga step). */
  readonly twoPhase: boolean;
  /** Compensations of this branch's statements, in statement order (participants that cannot prepare). */
  readonly compensations: Compensation[];
  state: BranchState;
  localTxId?: string;
}

/**
 * The participants a transaction has joined. A participant joins on its first query (so one
 * never queried is never touched); concurrent first queries share one `begin`. It also enforces
 * the transaction's mode as statements arrive, so a missing compensation fails at once.
 */
export class TransactionContext {
  private readonly joins = new Map<string, Promise<BranchEntry>>();
  private readonly ops = new Set<Promise<unknown>>();
  /** Participants that cannot prepare, in join order. */
  private readonly oneFirst: string[] = [];
  private nextBranch = 0;
  private closed = false;

  /** The handle given to the user's callback. */
  readonly tx: Tx;

  constructor(
    private readonly rt: Runtime,
    readonly gtrid: string,
    private readonly mode: TransactionModeOption,
    /** Participant named in every branch qualifier as the possible holder of the commit marker. */
    private readonly markerHint: string | undefined,
  ) {
    this.tx = { id: gtrid, query: (participant, sql, params, options) => this.query(participant, sql, params, options) };
  }

  private query(name: string, sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult> {
    if (this.closed) {
      return Promise.reject(new TxcError('TXC_TRANSACTION_CLOSED', `tx.query('${name}') was called after transaction ${this.gtrid} stopped accepting work`));
    }
    const participant = this.rt.participants.get(name);
    if (!participant) {
      const known = [...this.rt.participants.keys()].join(', ');
      return Promise.reject(new TxcError('TXC_PARTICIPANT_UNKNOWN', `tx.query('${name}'): known participants are ${known}`, { details: { participant: name } }));
    }
    try {
      this.admit(name, participant, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const op = this.join(name, participant).then(async (entry) => {
      const result = await entry.branch.query(sql, params);
      this.record(entry, options);
      return result;
    });
    this.ops.add(op);
    const forget = () => this.ops.delete(op);
    op.then(forget, forget);
    return op;
  }

  /** Checks, before anything runs, that this statement fits the transaction's mode. */
  private admit(name: string, participant: Participant, options: QueryOptions | undefined): void {
    const kind = participantKind(participant.capabilities);
    if (kind === 'two-phase') return;
    if (kind === 'compensation-only') {
      throw new TxcError('TXC_UNSUPPORTED', `Participant ${name} is a service (${participant.driver}) and takes no statements: call it from a saga step (coord.saga / coord.defineSaga)`, {
        details: { participant: name },
      });
    }
    if (this.mode === '2pc') {
      throw new TxcError('TXC_TWO_PHASE_UNSUPPORTED', `Participant ${name} (${participant.driver}) cannot prepare, and this transaction runs with mode '2pc'`, {
        details: { participant: name },
      });
    }
    if (!this.oneFirst.includes(name)) this.oneFirst.push(name);
    if (options?.compensate === undefined) this.uncompensated.add(name);
    // A saga is needed in saga mode, or in auto mode once two participants cannot prepare
    // (only one of them can be the last resource): from then on every statement on them must
    // say how to undo it, and so must the statements already run.
    if (this.mode !== 'saga' && this.oneFirst.length < 2) return;
    const missing = this.uncompensated.has(name) ? name : this.oneFirst.find((n) => this.uncompensated.has(n));
    if (missing === undefined) return;
    const fact =
      missing === name
        ? `tx.query('${name}') has no compensation, and ${name} cannot prepare, so this transaction must run as a saga`
        : `An earlier tx.query('${missing}') had no compensation, but ${name} cannot prepare either, so this transaction must run as a saga`;
    throw new TxcError('TXC_COMPENSATION_REQUIRED', fact, { details: { participant: missing } });
  }

  /** Participants (that cannot prepare) that ran a statement without a compensation. */
  private readonly uncompensated = new Set<string>();

  /** Keeps the compensation of a statement that succeeded. */
  private record(entry: BranchEntry, options: QueryOptions | undefined): void {
    const c = options?.compensate;
    if (!entry.twoPhase && c) entry.compensations.push(c);
  }

  private join(name: string, participant: Participant): Promise<BranchEntry> {
    let entry = this.joins.get(name);
    if (!entry) {
      const xid = branchXid(this.gtrid, this.nextBranch++, this.markerHint);
      const twoPhase = participant.capabilities.twoPhase;
      entry = participant
        .begin(xid)
        .then((branch) => ({ name, participant, xid, branch, twoPhase, compensations: [], state: 'active' as BranchState }));
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
   * forgot an `await` must not race the prepare), then returns the joined branches. Throws
   * TXC_COMPENSATION_REQUIRED when a saga became necessary after an uncompensated statement ran.
   */
  async close(): Promise<BranchEntry[]> {
    this.closed = true;
    while (this.ops.size > 0) await Promise.allSettled([...this.ops]);
    const settled = await Promise.allSettled([...this.joins.values()]);
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }
}
