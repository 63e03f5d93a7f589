import type { Logger } from 'pino';
import type { AbortAnswer, CommitAnswer, TransactionView, WireBranch } from '../client/wire-types.js';
import type { BranchRecord, CommitRecord } from '../log/log-record.js';
import type { BackgroundWork } from './background-work.js';
import { TxcError } from './errors.js';
import { commitBranch, endCommitted, retryPhaseTwo } from './phase-two.js';
import type { Runtime } from './runtime.js';
import type { ExternalBeginOptions, ExternalTransactions, HeuristicReport } from './types.js';
import { branchXid, coordinatorOf, newGtrid, toMysqlXid, toPgGid, xidKey, type Xid } from './xid.js';

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_TIMEOUT_MS = 3_600_000;
/** Decided transactions stay visible to GET for this long. */
const KEEP_DECIDED_MS = 10 * 60_000;

interface Entry {
  view: TransactionView;
  readonly xids: Map<string, Xid>;
  readonly meta: ExternalBeginOptions['meta'];
  readonly startedAt: number;
  cancelDeadline: () => void;
  /** Serializes commit/abort/addBranch of one transaction. */
  busy: Promise<unknown>;
}

/**
 * Client-driven two-phase commit. The application runs each branch on its own connection with
 * the xid handed out here and prepares it; `commit` checks that every registered branch is
 * prepared, forces the decision, and commits them from the coordinator's connections (phase
 * two retried in the background like any 2PC). Anything short of that is rolled back (presumed
 * abort: a branch the client prepares after the abort is rolled back by recovery).
 */
export class ExternalTransactionManager implements ExternalTransactions {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly rt: Runtime,
    private readonly background: BackgroundWork,
    private readonly log: Logger,
  ) {}

  async begin(options: ExternalBeginOptions = {}): Promise<TransactionView> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      throw new TxcError('TXC_BAD_REQUEST', `timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS}`, { details: { field: 'timeoutMs' } });
    }
    const id = newGtrid(this.rt.id, this.rt.uuid);
    const now = this.rt.clock.now();
    const entry: Entry = {
      view: { id, state: 'active', deadlineAt: now + timeoutMs, branches: [] },
      xids: new Map(),
      meta: options.meta,
      startedAt: now,
      cancelDeadline: () => undefined,
      busy: Promise.resolve(),
    };
    // Recovery must not roll back a branch the client has prepared while we wait for its commit.
    this.rt.inFlight.add(id);
    this.entries.set(id, entry);
    entry.cancelDeadline = this.rt.clock.setTimeout(() => {
      void this.abort(id, 'deadline passed before commit').catch((err: unknown) => this.log.warn({ txid: id, err }, 'abort at deadline failed'));
    }, timeoutMs);
    for (const p of options.participants ?? []) await this.addBranchNow(entry, p);
    return entry.view;
  }

  async addBranch(id: string, participant: string): Promise<WireBranch> {
    const entry = this.active(id);
    return this.serial(entry, () => this.addBranchNow(this.active(id), participant));
  }

  async commit(id: string): Promise<CommitAnswer> {
    const entry = this.known(id);
    return this.serial(entry, async () => {
      if (entry.view.state === 'committed' || entry.view.state === 'committing') return { id, outcome: 'committed', phaseTwoPending: entry.view.state === 'committing' };
      if (entry.view.state === 'aborted') throw new TxcError('TXC_TRANSACTION_CLOSED', `Transaction ${id} was aborted (${entry.view.reason ?? 'by request'})`, { details: { state: 'aborted' } });
      return this.commitNow(entry);
    });
  }

  async abort(id: string, reason = 'aborted by request'): Promise<AbortAnswer> {
    const entry = this.known(id);
    return this.serial(entry, async () => {
      if (entry.view.state === 'aborted') return { id, outcome: 'aborted' };
      if (entry.view.state !== 'active') throw new TxcError('TXC_TRANSACTION_CLOSED', `Transaction ${id} is already ${entry.view.state}`, { details: { state: entry.view.state } });
      await this.rollBackAll(entry, reason);
      return { id, outcome: 'aborted' };
    });
  }

  get(id: string): TransactionView | undefined {
    const e = this.entries.get(id);
    if (!e) this.refuseOtherInstance(id);
    return e?.view;
  }

  private async addBranchNow(entry: Entry, participant: string): Promise<WireBranch> {
    const p = this.rt.participants.get(participant);
    if (!p) throw new TxcError('TXC_PARTICIPANT_UNKNOWN', `Participant '${participant}' is not configured`, { details: { participant } });
    if (!p.capabilities.twoPhase) {
      throw new TxcError('TXC_TWO_PHASE_UNSUPPORTED', `Participant ${participant} (${p.driver}) cannot prepare, so it cannot take part in a client-driven transaction`, { details: { participant } });
    }
    const existing = entry.view.branches.find((b) => b.participant === participant);
    if (existing) return existing;
    const xid = branchXid(entry.view.id, entry.xids.size);
    entry.xids.set(participant, xid);
    const wire: WireBranch = {
      participant,
      driver: p.driver,
      formatId: xid.formatId,
      gtrid: xid.gtrid,
      bqual: xid.bqual,
      ...(p.driver === 'postgres' || p.driver === 'pglite' ? { gid: toPgGid(xid) } : {}),
      ...(p.driver === 'mysql' ? { xa: toMysqlXid(xid) } : {}),
    };
    entry.view = { ...entry.view, branches: [...entry.view.branches, wire] };
    return wire;
  }

  private async commitNow(entry: Entry): Promise<CommitAnswer> {
    const id = entry.view.id;
    const branches = [...entry.xids];
    // Every branch must be prepared now; the client prepared them on its own sessions.
    const missing: string[] = [];
    for (const [name, xid] of branches) {
      const prepared = await this.rt.participants.get(name)?.listInDoubt();
      if (!prepared?.some((x) => xidKey(x) === xidKey(xid))) missing.push(name);
    }
    if (missing.length > 0) {
      await this.rollBackAll(entry, `not prepared on ${missing.join(', ')}`);
      throw new TxcError('TXC_PREPARE_FAILED', `Transaction ${id} was not prepared on ${missing.join(', ')}, so it was rolled back everywhere`, { details: { participants: missing.join(',') } });
    }
    const record: CommitRecord = {
      type: 'commit',
      protocol: '2pc',
      gtrid: id,
      branches: branches.map(([participant, xid]): BranchRecord => ({ participant, bqual: xid.bqual })),
      coordinatorId: this.rt.id,
      host: this.rt.host,
      pid: this.rt.pid,
      startedAt: entry.startedAt,
      decidedAt: this.rt.clock.now(),
      ...(entry.meta ? { meta: entry.meta } : {}),
    };
    // The deadline must not abort it while the decision is being written.
    entry.cancelDeadline();
    try {
      await this.rt.log.append(record, true);
    } catch (err) {
      if (TxcError.is(err) && err.details['durability'] === 'unknown') {
        // Neither outcome can be promised: recovery decides once the log can say (it stays in flight until then).
        this.rt.inFlight.delete(id);
        throw new TxcError('TXC_OUTCOME_UNKNOWN', `The decision log failed while recording the commit of ${id}; recovery will finish it`, { cause: err });
      }
      await this.rollBackAll(entry, 'the decision could not be logged');
      throw err;
    }
    // Only a durable decision may be reported as committing (GET, a repeated commit).
    entry.view = { ...entry.view, state: 'committing' };
    const heuristics: HeuristicReport[] = [];
    const remaining: BranchRecord[] = [];
    for (const b of record.branches) {
      const outcome = await commitBranch(this.rt, record, b);
      if (outcome.kind === 'heuristic') heuristics.push(outcome.report);
      else if (outcome.kind === 'retry') remaining.push(b);
    }
    if (remaining.length === 0) {
      await endCommitted(this.rt, record, heuristics, { awaitEnd: false });
      this.finish(entry, 'committed');
      return { id, outcome: 'committed', phaseTwoPending: false };
    }
    this.log.warn({ txid: id, branches: remaining.map((b) => b.participant) }, 'client-driven commit not acknowledged yet; retrying in the background (the transaction is committed)');
    this.background.track(
      retryPhaseTwo(this.rt, record, remaining, heuristics, this.background.signal)
        .catch((err: unknown) => this.log.error({ txid: id, err }, 'phase-two retry stopped; recovery will finish the transaction'))
        .finally(() => this.finish(entry, 'committed')),
    );
    return { id, outcome: 'committed', phaseTwoPending: true };
  }

  private async rollBackAll(entry: Entry, reason: string): Promise<void> {
    entry.cancelDeadline();
    entry.view = { ...entry.view, state: 'aborted', reason };
    await Promise.all(
      [...entry.xids].map(async ([name, xid]) => {
        try {
          await this.rt.participants.get(name)?.rollbackPrepared(xid);
        } catch (err) {
          // No commit record exists: recovery rolls it back later.
          this.log.warn({ txid: entry.view.id, participant: name, err }, 'rollback of a client branch failed; recovery will roll it back');
        }
      }),
    );
    this.finish(entry, 'aborted');
  }

  private finish(entry: Entry, state: 'committed' | 'aborted'): void {
    // Called exactly once per transaction, when its outcome is final.
    if (state === 'committed') this.rt.stats.committed['2pc']++;
    else this.rt.stats.rolledBack++;
    entry.view = { ...entry.view, state };
    this.rt.inFlight.delete(entry.view.id);
    this.rt.clock.setTimeout(() => this.entries.delete(entry.view.id), KEEP_DECIDED_MS);
  }

  private known(id: string): Entry {
    const e = this.entries.get(id);
    if (e) return e;
    this.refuseOtherInstance(id);
    throw new TxcError('TXC_NOT_FOUND', `No client-driven transaction ${id} is known here`, { details: { id } });
  }

  /**
   * Client-driven transactions live in the memory of the instance that began them; behind a load
   * balancer, a request for another's gets TXC_WRONG_INSTANCE naming it rather than "not found".
   */
  private refuseOtherInstance(id: string): void {
    const owner = coordinatorOf(id);
    if (owner !== undefined && owner !== this.rt.id) {
      throw new TxcError('TXC_WRONG_INSTANCE', `Transaction ${id} was begun by coordinator ${owner}, not by this instance (${this.rt.id})`, {
        details: { id, coordinatorId: owner },
      });
    }
  }

  private active(id: string): Entry {
    const e = this.known(id);
    if (e.view.state !== 'active') throw new TxcError('TXC_TRANSACTION_CLOSED', `Transaction ${id} is ${e.view.state}`, { details: { state: e.view.state } });
    return e;
  }

  private serial<T>(entry: Entry, fn: () => Promise<T>): Promise<T> {
    const run = entry.busy.then(fn);
    entry.busy = run.catch(() => undefined);
    return run;
  }
}
