import type {
  OracleConnection,
  OracleExecuteOptions,
  OracleExecuteResult,
  OraclePool,
  OracleXid,
} from '../../participants/oracle/driver.js';
import {
  BOOKKEEPING_EXISTS,
  CREATE_BARRIER,
  CREATE_MARKERS,
  BARRIER_EXISTS,
  DELETE_BARRIERS,
  INSERT_BARRIER,
  INSERT_MARKER,
  LIST_MARKERS,
  PREFLIGHT,
  SELECT_BARRIER,
  SELECT_MARKER,
} from '../../participants/oracle/sql.js';

/** An error shaped like node-oracledb's for a server error: `errorNum` and `code` ORA-nnnnn. */
export function oraError(errorNum: number): Error {
  const code = `ORA-${String(errorNum).padStart(5, '0')}`;
  return Object.assign(new Error(`${code}: fake`), { errorNum, code });
}

/** An error shaped like node-oracledb's own (NJS-nnn, no errorNum). */
export function njsError(n: number): Error {
  const code = `NJS-${String(n).padStart(3, '0')}`;
  return Object.assign(new Error(`${code}: fake`), { code });
}

/** The error Thin raises for a lost connection. */
export const connectionLost = (): Error => njsError(500);

/** Every method of the fake connection a fault can target. */
export type FakeMethod =
  | 'execute'
  | 'commit'
  | 'rollback'
  | 'tpcBegin'
  | 'tpcEnd'
  | 'tpcPrepare'
  | 'tpcCommit'
  | 'tpcRollback'
  | 'tpcRecover'
  | 'close';

interface Fault {
  readonly method: FakeMethod;
  readonly error: Error;
  /** Apply the call's effect on the server first, then fail (the answer was lost). */
  readonly landed: boolean;
  /** Only calls whose first argument (SQL text or xid) passes. */
  readonly when: ((arg: unknown) => boolean) | undefined;
}

/** Pending changes of one transaction (a TPC branch or a local transaction). */
class Txn {
  readonly rows = new Map<number, string>();
  readonly markers = new Map<string, string>();
  readonly barriers = new Map<string, string>();
  private ended!: () => void;
  /** Resolves when the transaction commits or rolls back (what a unique-key waiter waits for). */
  readonly done = new Promise<void>((resolve) => (this.ended = resolve));
  get empty(): boolean {
    return this.rows.size + this.markers.size + this.barriers.size === 0;
  }
  end(): void {
    this.ended();
  }
}

interface FakeBranch {
  readonly key: string;
  readonly xid: OracleXid;
  readonly txn: Txn;
  state: 'active' | 'idle' | 'prepared';
  attachedTo: FakeOracleConnection | undefined;
  /** Set by a test: the ORA number a tpcCommit/tpcRollback of this branch answers (24764, 24765, 24766). */
  heuristic?: number;
}

const keyOf = (x: OracleXid) => `${x.formatId}|${String(x.globalTransactionId)}|${String(x.branchQualifier)}`;

/**
 * A database with Oracle's TPC semantics as this adapter relies on them (see docs/oracle.md):
 * branches attached to a session until tpcEnd, read-only prepare ends the branch, prepared
 * branches finishable from any session, ORA-24756 for an unknown xid, ORA-02089 for DDL or
 * COMMIT inside a branch, unique keys that wait for an uncommitted conflicting insert, and
 * close() rolling back whatever a session leaves open. Table `t (id, v)` is the user data.
 */
export class FakeOracleServer {
  /** Committed rows of table t. */
  readonly rows = new Map<number, string>();
  readonly markers = new Map<string, { outcome: string; createdAt: number }>();
  readonly barriers = new Map<string, string>();
  readonly tables = new Set<string>();
  readonly branches = new Map<string, FakeBranch>();
  /** Extra rows tpcRecover returns (another application's XA branches). */
  readonly foreign: OracleXid[] = [];
  readonly privileges = { forceAny: true, selectPending: true, createTable: true };
  /** `c<n>.<method> <detail>` for every call, in order. */
  readonly calls: string[] = [];
  /** The timestamp the next committed marker gets. */
  clock = Date.UTC(2026, 0, 1);
  private readonly faults: Fault[] = [];

  /** The next matching call of `method` fails with `error` (after taking effect when `landed`). */
  failNext(method: FakeMethod, error: Error, options: { landed?: boolean; when?: (arg: unknown) => boolean } = {}): void {
    this.faults.push({ method, error, landed: options.landed ?? false, when: options.when });
  }

  /** Makes a tpcCommit/tpcRollback of this xid answer a heuristic error (a DBA forced it). */
  forceHeuristic(xid: OracleXid, errorNum: number): void {
    const b = this.branches.get(keyOf(xid));
    if (!b) throw new Error('no such branch');
    b.heuristic = errorNum;
  }

  /** Prepared branches (what DBA_PENDING_TRANSACTIONS would list). */
  prepared(): OracleXid[] {
    return [...this.branches.values()].filter((b) => b.state === 'prepared').map((b) => b.xid);
  }

  /** @internal The fault for this call, if any (removed once taken). */
  takeFault(method: FakeMethod, arg: unknown): Fault | undefined {
    const i = this.faults.findIndex((f) => f.method === method && (!f.when || f.when(arg)));
    return i < 0 ? undefined : this.faults.splice(i, 1)[0];
  }

  /** @internal */
  branch(xid: OracleXid): FakeBranch | undefined {
    return this.branches.get(keyOf(xid));
  }

  /** @internal */
  newBranch(xid: OracleXid, conn: FakeOracleConnection): FakeBranch {
    const b: FakeBranch = { key: keyOf(xid), xid, txn: new Txn(), state: 'active', attachedTo: conn };
    this.branches.set(b.key, b);
    return b;
  }

  /** @internal */
  newTxn(): Txn {
    return new Txn();
  }

  /** @internal Applies and ends a transaction. */
  commitTxn(txn: Txn): void {
    for (const [id, v] of txn.rows) this.rows.set(id, v);
    for (const [g, outcome] of txn.markers) this.markers.set(g, { outcome, createdAt: this.clock++ });
    for (const [k, origin] of txn.barriers) this.barriers.set(k, origin);
    txn.end();
  }

  /** @internal Discards and ends a transaction. */
  rollbackTxn(txn: Txn): void {
    txn.end();
  }

  /** @internal Transactions other than `own` holding a pending marker / barrier key. */
  holder(kind: 'markers' | 'barriers', key: string, own: Txn): Txn | undefined {
    const all = [...[...this.branches.values()].map((b) => b.txn), ...this.openLocal];
    return all.find((t) => t !== own && t[kind].has(key));
  }

  /** @internal Open local transactions (for unique-key waits). */
  readonly openLocal = new Set<Txn>();
}

/** A pooled connection. */
export class FakeOracleConnection implements OracleConnection {
  callTimeout = 0;
  broken = false;
  closed: { drop: boolean } | undefined;
  attached: FakeBranch | undefined;
  /** The options of every execute, in order. */
  readonly executeOptions: OracleExecuteOptions[] = [];
  private local: Txn | undefined;

  constructor(
    readonly server: FakeOracleServer,
    readonly id: number,
  ) {}

  async execute(sql: string, binds: unknown[], options: OracleExecuteOptions): Promise<OracleExecuteResult> {
    this.executeOptions.push(options);
    return this.call('execute', sql, sql.replace(/\s+/g, ' ').slice(0, 60), async () => {
      const result = await this.run(sql, binds);
      if (options.autoCommit && this.local) this.endLocal(true);
      return result;
    });
  }

  async commit(): Promise<void> {
    return this.call('commit', undefined, '', async () => {
      if (this.attached) throw oraError(2089);
      if (this.local) this.endLocal(true);
    });
  }

  async rollback(): Promise<void> {
    return this.call('rollback', undefined, '', async () => {
      if (this.local) this.endLocal(false);
    });
  }

  async tpcBegin(xid: OracleXid, flag: number, timeout: number): Promise<void> {
    return this.call('tpcBegin', xid, `${String(xid.branchQualifier)} flag=${flag} timeout=${timeout}`, async () => {
      if (this.attached || this.local) throw oraError(24776);
      if (this.server.branch(xid)) throw oraError(24757);
      this.attached = this.server.newBranch(xid, this);
    });
  }

  async tpcEnd(xid: OracleXid, flag: number): Promise<void> {
    return this.call('tpcEnd', xid, `${String(xid.branchQualifier)} flag=${flag}`, async () => {
      const b = this.server.branch(xid);
      if (!b || b.attachedTo !== this) throw oraError(24758);
      b.state = 'idle';
      b.attachedTo = undefined;
      this.attached = undefined;
    });
  }

  async tpcPrepare(xid: OracleXid): Promise<boolean> {
    return this.call('tpcPrepare', xid, String(xid.branchQualifier), async () => {
      const b = this.server.branch(xid);
      if (!b || b.state === 'prepared' || (b.attachedTo && b.attachedTo !== this)) throw oraError(24756);
      this.detach(b);
      if (b.txn.empty) {
        // Read-only: the server forgets the branch at once.
        this.server.branches.delete(b.key);
        this.server.rollbackTxn(b.txn);
        return false;
      }
      b.state = 'prepared';
      return true;
    });
  }

  async tpcCommit(xid: OracleXid, onePhase: boolean): Promise<void> {
    return this.call('tpcCommit', xid, `${String(xid.branchQualifier)} onePhase=${onePhase}`, async () => {
      const b = this.server.branch(xid);
      if (!b) throw oraError(24756);
      if (b.heuristic) throw oraError(b.heuristic);
      if (onePhase === (b.state === 'prepared')) throw oraError(onePhase ? 2053 : 24756);
      this.detach(b);
      this.server.branches.delete(b.key);
      this.server.commitTxn(b.txn);
    });
  }

  async tpcRollback(xid: OracleXid): Promise<void> {
    return this.call('tpcRollback', xid, String(xid.branchQualifier), async () => {
      const b = this.server.branch(xid);
      if (!b) throw oraError(24756);
      if (b.heuristic) throw oraError(b.heuristic);
      this.detach(b);
      this.server.branches.delete(b.key);
      this.server.rollbackTxn(b.txn);
    });
  }

  async tpcRecover(asString: boolean): Promise<OracleXid[]> {
    return this.call('tpcRecover', undefined, '', async () => {
      if (!this.server.privileges.selectPending) throw oraError(942);
      return [...this.server.prepared(), ...this.server.foreign].map((x) => ({
        formatId: x.formatId,
        globalTransactionId: asString ? String(x.globalTransactionId) : Buffer.from(String(x.globalTransactionId), 'latin1'),
        branchQualifier: asString ? String(x.branchQualifier) : Buffer.from(String(x.branchQualifier), 'latin1'),
      }));
    });
  }

  /** Like Thin: rolls back what the session leaves open (attached branch, local transaction); `drop` is recorded only. */
  async close(options?: { drop?: boolean }): Promise<void> {
    this.server.calls.push(`c${this.id}.close${options?.drop ? ' drop' : ''}`);
    if (this.closed) throw njsError(3);
    this.closed = { drop: options?.drop === true };
    const b = this.attached;
    if (b) {
      this.detach(b);
      this.server.branches.delete(b.key);
      this.server.rollbackTxn(b.txn);
    }
    if (this.local) this.endLocal(false);
  }

  private detach(b: FakeBranch): void {
    if (b.attachedTo) b.attachedTo.attached = undefined;
    b.attachedTo = undefined;
    if (b.state === 'active') b.state = 'idle';
  }

  private endLocal(commit: boolean): void {
    const txn = this.local;
    if (!txn) return;
    this.local = undefined;
    this.server.openLocal.delete(txn);
    if (commit) this.server.commitTxn(txn);
    else this.server.rollbackTxn(txn);
  }

  /** The transaction a write joins: the attached branch's, or a local one started now. */
  private txn(): Txn {
    if (this.attached) return this.attached.txn;
    if (!this.local) {
      this.local = this.server.newTxn();
      this.server.openLocal.add(this.local);
    }
    return this.local;
  }

  private async call<T>(method: FakeMethod, arg: unknown, detail: string, effect: () => Promise<T>): Promise<T> {
    this.server.calls.push(`c${this.id}.${method}${detail ? ` ${detail}` : ''}`);
    if (this.closed) throw njsError(3);
    if (this.broken) throw connectionLost();
    const fault = this.server.takeFault(method, arg);
    if (fault) {
      if (fault.landed) await effect().catch(() => undefined);
      if ((fault.error as { code?: string }).code === 'NJS-500') this.breakSession();
      throw fault.error;
    }
    return effect();
  }

  /** A lost session: the server rolls back what it had attached. */
  private breakSession(): void {
    this.broken = true;
    const b = this.attached;
    if (b) {
      this.detach(b);
      this.server.branches.delete(b.key);
      this.server.rollbackTxn(b.txn);
    }
    if (this.local) this.endLocal(false);
  }

  private async run(sql: string, binds: unknown[]): Promise<OracleExecuteResult> {
    const s = this.server;
    const ddl = /^\s*(create|drop|alter|truncate)\b/i.test(sql);
    if ((ddl || /^\s*commit\b/i.test(sql)) && this.attached) throw oraError(2089);
    if (sql === PREFLIGHT) return { rows: [{ SESSION_USER: 'TXC', FORCE_ANY: s.privileges.forceAny ? 1 : 0 }] };
    if (sql === BOOKKEEPING_EXISTS) return { rows: [{ N: s.tables.size }] };
    if (sql === CREATE_MARKERS || sql === CREATE_BARRIER) {
      const table = sql === CREATE_MARKERS ? 'txcoord_markers' : 'txcoord_barrier';
      if (!s.privileges.createTable) throw oraError(1031);
      if (s.tables.has(table)) throw oraError(955);
      s.tables.add(table);
      return { rowsAffected: 0 };
    }
    if (sql === INSERT_MARKER) return this.insertUnique('markers', String(binds[0]), String(binds[1]));
    if (sql === INSERT_BARRIER) return this.insertUnique('barriers', binds.slice(0, 3).join('|'), String(binds[3]));
    if (sql === SELECT_MARKER) {
      const found = s.markers.get(String(binds[0]));
      return { rows: found ? [{ OUTCOME: found.outcome }] : [] };
    }
    if (sql === SELECT_BARRIER) {
      const found = s.barriers.get(binds.slice(0, 3).join('|'));
      return { rows: found ? [{ ORIGIN: found }] : [] };
    }
    if (sql === LIST_MARKERS) {
      const prefix = String(binds[0]).replace(/%$/, '').replace(/!(.)/g, '$1');
      const rows = [...s.markers]
        .filter(([g]) => g.startsWith(prefix))
        .sort((a, b) => a[1].createdAt - b[1].createdAt || a[0].localeCompare(b[0]))
        .slice(0, Number(binds[1]))
        .map(([g, m]) => ({ GTRID: g, OUTCOME: m.outcome, CREATED_AT: new Date(m.createdAt).toISOString() }));
      return { rows };
    }
    if (sql === BARRIER_EXISTS) return { rows: [{ N: s.tables.has('txcoord_barrier') ? 1 : 0 }] };
    if (sql === DELETE_BARRIERS) {
      let n = 0;
      for (const key of [...s.barriers.keys()]) {
        const gid = key.split('|')[0] ?? '';
        if (gid >= String(binds[0]) && gid < String(binds[1]) && s.barriers.delete(key)) n++;
      }
      return { rowsAffected: n };
    }
    if (/^delete from txcoord_markers where gtrid in/.test(sql)) {
      let n = 0;
      for (const g of binds) if (s.markers.delete(String(g))) n++;
      return { rowsAffected: n };
    }
    const insert = /^\s*insert into t \(id, v\) values \(:1, :2\)/i.exec(sql);
    if (insert) {
      const id = Number(binds[0]);
      const txn = this.txn();
      if (s.rows.has(id) || txn.rows.has(id)) throw oraError(1);
      txn.rows.set(id, String(binds[1]));
      return { rowsAffected: 1 };
    }
    if (/^\s*update t\b/i.test(sql)) {
      // `update t set v = :1 where id = :2`
      const id = Number(binds[1]);
      if (!s.rows.has(id)) return { rowsAffected: 0 };
      this.txn().rows.set(id, String(binds[0]));
      return { rowsAffected: 1 };
    }
    if (/^\s*(begin|declare|call)\b/i.test(sql)) return {};
    if (/^\s*(select|with)\b/i.test(sql)) {
      if (/\bfrom t\b/i.test(sql)) return { rows: [...s.rows].map(([id, v]) => ({ ID: id, V: v })) };
      return { rows: [] };
    }
    return { rowsAffected: 0 };
  }

  /** Oracle's unique key: waits for a conflicting uncommitted insert, then ORA-00001 if it committed. */
  private async insertUnique(kind: 'markers' | 'barriers', key: string, value: string): Promise<OracleExecuteResult> {
    const s = this.server;
    const table = kind === 'markers' ? 'txcoord_markers' : 'txcoord_barrier';
    if (!s.tables.has(table)) throw oraError(942);
    const own = this.txn();
    for (;;) {
      if ((kind === 'markers' ? s.markers.has(key) : s.barriers.has(key)) || own[kind].has(key)) throw oraError(1);
      const other = s.holder(kind, key, own);
      if (!other) break;
      await other.done;
    }
    own[kind].set(key, value);
    return { rowsAffected: 1 };
  }
}

/** The pool: a new connection per checkout, all of them kept for inspection. */
export class FakeOraclePool implements OraclePool {
  readonly conns: FakeOracleConnection[] = [];
  /** getConnection() rejects with this when set. */
  connectError: Error | undefined;
  /** getConnection() waits for this when set (a saturated pool). */
  gate: Promise<void> | undefined;
  closedWith: number | undefined;

  constructor(readonly server = new FakeOracleServer()) {}

  async getConnection(): Promise<FakeOracleConnection> {
    if (this.connectError) throw this.connectError;
    if (this.gate) await this.gate;
    const c = new FakeOracleConnection(this.server, this.conns.length + 1);
    this.conns.push(c);
    return c;
  }

  async close(drainTime: number): Promise<void> {
    this.closedWith = drainTime;
  }
}
