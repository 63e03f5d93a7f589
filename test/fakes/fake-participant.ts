import type { BarrierRange, BarrierRow, Branch, LocalTxStatus, MarkerOutcome, MarkerRow, Participant, QueryResult, ResolveResult } from '../../participants/participant.js';
import { TxcError } from '../../coordinator/errors.js';
import { xidKey, type Xid } from '../../coordinator/xid.js';

type Op = 'begin' | 'query' | 'prepare' | 'commitPrepared' | 'commitOnePhase' | 'rollback' | 'listInDoubt' | 'resolveCommit' | 'resolveRollback';

interface Prepared {
  readonly xid: Xid;
  readonly writes: Map<string, number>;
  readonly localTxId: string;
  /** Set while the preparing "session" is attached (MariaDB refuses other sessions then). */
  attached: boolean;
}

/**
 * An in-memory key/value database with real 2PC semantics: it outlives any coordinator (like a
 * database server outlives a crashed process), so crash tests can recover against it. Statements:
 * `set <key>` with params [value], `get <key>`, `fail` (a failing statement).
 */
export class FakeDatabase {
  readonly data = new Map<string, number>();
  readonly prepared = new Map<string, Prepared>();
  readonly fates = new Map<string, LocalTxStatus>();
  readonly calls: string[] = [];
  /** Committed `txcoord_markers` rows. */
  readonly markers = new Map<string, { outcome: MarkerOutcome; createdAt: number }>();
  /** Committed `txcoord_barrier` rows by `gid|step|op`, with their origin. */
  readonly barrier = new Map<string, BarrierRow['origin']>();
  /** Highest number of prepares running at once (to observe parallel prepares). */
  maxConcurrentPrepares = 0;
  private runningPrepares = 0;
  private nextLocal = 1;
  private readonly faults = new Map<Op, Array<() => Promise<void>>>();
  /** Like MariaDB: a prepared branch can only be committed by its own session while that session lives. */
  sessionBound = false;
  /** The next N one-phase commits apply, then report the connection lost (TXC_OUTCOME_UNKNOWN). */
  lostAfterCommit = 0;
  /** Whether dropping the preparing connection detaches its branch at once (false: the server notices later). */
  detachOnDestroy = true;

  /** The next `op` throws `err`. */
  failNext(op: Op, err: unknown = new TxcError('TXC_PARTICIPANT_UNAVAILABLE', 'injected', { retryable: true })): void {
    this.push(op, async () => {
      throw err;
    });
  }

  /** The next `op` never finishes. */
  hangNext(op: Op): void {
    this.push(op, () => new Promise<void>(() => undefined));
  }

  /** The next `op` waits for `gate` first. */
  delayNext(op: Op, gate: Promise<void>): void {
    this.push(op, () => gate);
  }

  private push(op: Op, f: () => Promise<void>): void {
    const list = this.faults.get(op) ?? [];
    list.push(f);
    this.faults.set(op, list);
  }

  /** Runs an injected fault for `op`, if any. A dead owner (crashed coordinator) hangs forever. */
  async fault(op: Op, owner?: { dead: boolean }): Promise<void> {
    if (owner?.dead) await new Promise<void>(() => undefined);
    this.calls.push(op);
    const f = this.faults.get(op)?.shift();
    if (f) await f();
  }

  /** Rolls a prepared branch back behind the coordinator's back (a DBA's heuristic decision). */
  rollbackByHand(xid: Xid): void {
    const p = this.prepared.get(xidKey(xid));
    if (!p) throw new Error('not prepared');
    this.prepared.delete(xidKey(xid));
    this.fates.set(p.localTxId, 'aborted');
  }

  newLocalId(): string {
    return String(this.nextLocal++);
  }

  enterPrepare(): void {
    this.runningPrepares++;
    this.maxConcurrentPrepares = Math.max(this.maxConcurrentPrepares, this.runningPrepares);
  }

  leavePrepare(): void {
    this.runningPrepares--;
  }

  /** Detaches every session (the preparing process died). */
  detachAll(): void {
    for (const p of this.prepared.values()) p.attached = false;
  }
}

class FakeBranch implements Branch {
  private readonly writes = new Map<string, number>();
  private readonly newMarkers = new Map<string, MarkerOutcome>();
  private readonly newBarrier = new Map<string, BarrierRow['origin']>();
  private failed = false;
  private state: 'active' | 'prepared' | 'done' = 'active';
  private readonly localTxId: string;

  constructor(
    private readonly db: FakeDatabase,
    readonly xid: Xid,
    private readonly owner: { dead: boolean },
    private readonly local = false,
  ) {
    this.localTxId = db.newLocalId();
    db.fates.set(this.localTxId, 'in-progress');
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    await this.db.fault('query', this.owner);
    const [verb, key = ''] = sql.split(' ');
    if (verb === 'fail') {
      this.failed = true;
      throw new TxcError('TXC_QUERY_FAILED', 'injected statement failure');
    }
    if (verb === 'set') {
      this.writes.set(key, Number(params[0]));
      return { rows: [], rowCount: 1 };
    }
    const v = this.writes.get(key) ?? this.db.data.get(key);
    return { rows: v === undefined ? [] : [{ value: v }], rowCount: v === undefined ? 0 : 1 };
  }

  async hasWritten(): Promise<boolean> {
    return this.writes.size > 0 || this.newMarkers.size > 0 || this.newBarrier.size > 0;
  }

  // One transaction at a time touches a key in these tests, so no lock wait is simulated here
  // (the real adapters' waiting is tested against the real databases).
  async insertMarker(gtrid: string, outcome: MarkerOutcome): Promise<'inserted' | MarkerOutcome> {
    await this.db.fault('query', this.owner);
    const found = this.newMarkers.get(gtrid) ?? this.db.markers.get(gtrid)?.outcome;
    if (found) return found;
    this.newMarkers.set(gtrid, outcome);
    return 'inserted';
  }

  async insertBarrier(row: BarrierRow): Promise<'inserted' | BarrierRow['origin']> {
    await this.db.fault('query', this.owner);
    const key = `${row.gid}|${row.step}|${row.op}`;
    const found = this.newBarrier.get(key) ?? this.db.barrier.get(key);
    if (found) return found;
    this.newBarrier.set(key, row.origin);
    return 'inserted';
  }

  async prepare(): Promise<{ localTxId: string }> {
    if (this.local) throw new TxcError('TXC_UNSUPPORTED', 'local-only branch');
    this.db.enterPrepare();
    try {
      await this.db.fault('prepare', this.owner);
    } finally {
      this.db.leavePrepare();
    }
    if (this.failed) {
      this.finish('aborted');
      throw new TxcError('TXC_PREPARE_FAILED', 'an earlier statement failed');
    }
    this.db.prepared.set(xidKey(this.xid), { xid: this.xid, writes: this.writes, localTxId: this.localTxId, attached: true });
    this.state = 'prepared';
    return { localTxId: this.localTxId };
  }

  async commitPrepared(): Promise<ResolveResult> {
    await this.db.fault('commitPrepared', this.owner);
    const p = this.db.prepared.get(xidKey(this.xid));
    if (!p) return 'unknown';
    applyCommit(this.db, p);
    this.state = 'done';
    return 'done';
  }

  async commitOnePhase(): Promise<void> {
    await this.db.fault('commitOnePhase', this.owner);
    if (this.failed) {
      this.finish('aborted');
      throw new TxcError('TXC_COMMIT_FAILED', 'an earlier statement failed');
    }
    for (const [k, v] of this.writes) this.db.data.set(k, v);
    for (const [k, v] of this.newMarkers) this.db.markers.set(k, { outcome: v, createdAt: Date.now() });
    for (const [k, v] of this.newBarrier) this.db.barrier.set(k, v);
    this.finish('committed');
    if (this.db.lostAfterCommit > 0) {
      this.db.lostAfterCommit--;
      throw new TxcError('TXC_OUTCOME_UNKNOWN', 'injected: connection lost after COMMIT was applied');
    }
  }

  async rollback(): Promise<void> {
    await this.db.fault('rollback', this.owner);
    if (this.state === 'prepared') this.db.prepared.delete(xidKey(this.xid));
    this.finish('aborted');
  }

  release(destroy?: boolean): void {
    if (destroy && this.db.detachOnDestroy) {
      const p = this.db.prepared.get(xidKey(this.xid));
      if (p) p.attached = false;
    }
  }

  private finish(fate: LocalTxStatus): void {
    this.state = 'done';
    this.db.fates.set(this.localTxId, fate);
  }
}

function applyCommit(db: FakeDatabase, p: Prepared): void {
  for (const [k, v] of p.writes) db.data.set(k, v);
  db.prepared.delete(xidKey(p.xid));
  db.fates.set(p.localTxId, 'committed');
}

/** A Participant over a {@link FakeDatabase}. */
export class FakeParticipant implements Participant {
  readonly driver = 'fake';
  readonly capabilities: { twoPhase: boolean; localTransactions: boolean };
  /** Set when the coordinator using this adapter "crashed": nothing it started goes further. */
  dead = false;

  constructor(
    readonly name: string,
    readonly db: FakeDatabase,
    /** Like a SQL Server: local transactions only. */
    private readonly localOnly = false,
  ) {
    this.capabilities = { twoPhase: !localOnly, localTransactions: true };
  }

  async preflight(): Promise<void> {}

  async begin(xid: Xid): Promise<Branch> {
    await this.db.fault('begin', this);
    return new FakeBranch(this.db, xid, this, this.localOnly);
  }

  async beginLocal(xid: Xid): Promise<Branch> {
    await this.db.fault('begin', this);
    return new FakeBranch(this.db, xid, this, true);
  }

  async ensureBookkeeping(): Promise<void> {}

  async listMarkers(prefix: string, limit: number): Promise<MarkerRow[]> {
    return [...this.db.markers]
      .filter(([g]) => g.startsWith(prefix))
      .slice(0, limit)
      .map(([gtrid, m]) => ({ gtrid, outcome: m.outcome, createdAt: m.createdAt }));
  }

  async deleteMarkers(gtrids: readonly string[]): Promise<void> {
    for (const g of gtrids) this.db.markers.delete(g);
  }

  async deleteBarriers(range: BarrierRange): Promise<number> {
    let n = 0;
    for (const key of [...this.db.barrier.keys()]) {
      const gid = key.split('|')[0] ?? '';
      if (gid >= range.from && gid < range.before && this.db.barrier.delete(key)) n++;
    }
    return n;
  }

  async listInDoubt(): Promise<Xid[]> {
    await this.db.fault('listInDoubt', this);
    return [...this.db.prepared.values()].map((p) => p.xid);
  }

  async commitPrepared(xid: Xid): Promise<ResolveResult> {
    await this.db.fault('resolveCommit', this);
    const p = this.db.prepared.get(xidKey(xid));
    if (!p || (this.db.sessionBound && p.attached)) return 'unknown';
    applyCommit(this.db, p);
    return 'done';
  }

  async rollbackPrepared(xid: Xid): Promise<ResolveResult> {
    await this.db.fault('resolveRollback', this);
    const p = this.db.prepared.get(xidKey(xid));
    if (!p) return 'unknown';
    this.db.prepared.delete(xidKey(xid));
    this.db.fates.set(p.localTxId, 'aborted');
    return 'done';
  }

  async localStatus(localTxId: string): Promise<LocalTxStatus> {
    return this.db.fates.get(localTxId) ?? 'unknown';
  }

  async close(): Promise<void> {}
}
