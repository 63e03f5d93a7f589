import { EventEmitter } from 'node:events';
import type {
  TediousConnection,
  TediousConnectionConfig,
  TediousDataType,
  TediousDriver,
  TediousParameterOptions,
  TediousRequest,
  TediousRequestCallback,
  TediousTransactionCallback,
  TediousTypes,
} from '../../participants/mssql/driver.js';
import {
  BOOKKEEPING_PERMISSIONS,
  ENSURE_BARRIER,
  ENSURE_MARKERS,
  BARRIER_EXISTS,
  DELETE_BARRIERS,
  INSERT_BARRIER,
  INSERT_MARKER,
  LIST_MARKERS,
  TRANCOUNT,
  WHO_AM_I,
  WRITE_CHECK,
} from '../../participants/mssql/sql.js';

/*
 * A fake of the slice of tedious the SQL Server adapter uses (participants/mssql/driver.ts):
 * connections, requests and transaction-manager calls shaped like tedious's, against an
 * in-memory server that understands the adapter's own bookkeeping statements (with key locks:
 * an insert of a key that another open transaction holds waits for that transaction to end, as
 * SQL Server's locking read does), answers everything else from scripted handlers, and fails on
 * request (server errors, lost sockets mid-commit, timeouts, refused connects).
 */

/** Data types as plain tags (the adapter only passes them back to addParameter). */
export const FAKE_TYPES: TediousTypes = {
  Bit: { name: 'Bit' },
  Int: { name: 'Int' },
  BigInt: { name: 'BigInt' },
  Float: { name: 'Float' },
  NVarChar: { name: 'NVarChar' },
  VarChar: { name: 'VarChar' },
  DateTime2: { name: 'DateTime2' },
  VarBinary: { name: 'VarBinary' },
};

/** A server error as tedious reports it (RequestError, code EREQUEST, with number and severity). */
export function serverError(number: number, severity = 16): Error {
  return Object.assign(new Error(`SQL Server error ${number}`), { name: 'RequestError', code: 'EREQUEST', number, class: severity, state: 1 });
}

/** An error carrying one of tedious's codes (ETIMEOUT, ECLOSE, EINVALIDSTATE, ESOCKET, ELOGIN…). */
export function tediousError(code: string, name = 'RequestError', extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`tedious ${code}`), { name, code, ...extra });
}

/** The raw Node socket error tedious passes to the request that was running when the socket died. */
export function socketError(code = 'ECONNRESET'): Error {
  return Object.assign(new Error(`read ${code}`), { code, errno: -104, syscall: 'read' });
}

/** What a handler (or the built-in statements) answers. */
export interface FakeResult {
  readonly rows?: readonly Record<string, unknown>[];
  /** Defaults to the number of rows. */
  readonly rowCount?: number;
}

/** One bound parameter as the adapter passed it. */
export interface FakeParam {
  readonly name: string;
  readonly type: TediousDataType;
  readonly value: unknown;
  readonly options?: Readonly<TediousParameterOptions>;
}

/** Context of a statement, for handlers. */
export interface FakeStatement {
  readonly sql: string;
  /** Parameter values in order (@p1 first). */
  readonly values: readonly unknown[];
  readonly params: readonly FakeParam[];
  readonly kind: 'rpc' | 'batch';
  readonly connection: FakeConnection;
}

/** A scripted answer; undefined falls through to the next handler and then the built-ins. */
export type FakeHandler = (statement: FakeStatement) => FakeResult | Error | Promise<FakeResult | Error> | undefined;

/** Operations faults can target. */
export type FakeOp = 'connect' | 'begin' | 'query' | 'commit' | 'rollback';

/** An injected failure. */
export type Fault =
  /** The operation fails with `error`; the connection stays up (or, for connect, never comes up). */
  | { readonly kind: 'error'; readonly error: Error }
  /** The socket dies while the operation runs; with `applied` the server completed it first. */
  | { readonly kind: 'lose'; readonly applied?: boolean; readonly code?: string }
  /** No answer within the request timeout: tedious cancels and reports ETIMEOUT. */
  | { readonly kind: 'timeout' }
  /** The operation waits for `until` before running. */
  | { readonly kind: 'delay'; readonly until: Promise<void> };

/** One local transaction on a fake connection. */
export class FakeTx {
  /** @@TRANCOUNT. */
  level = 1;
  done = false;
  readonly markers = new Map<string, string>();
  readonly barriers = new Map<string, string>();
  readonly locks = new Set<string>();
  /** Rows written by scripted statements (for the write check). */
  wroteLogRecords = false;
  private resolveEnded: () => void = () => undefined;
  readonly ended = new Promise<void>((resolve) => {
    this.resolveEnded = resolve;
  });

  finish(): void {
    this.done = true;
    this.resolveEnded();
  }
}

/** The fake database server, shared by every connection the driver makes. */
export class FakeTediousServer {
  /** Committed `txcoord_markers` rows. */
  readonly markers = new Map<string, { outcome: string; createdAt: Date }>();
  /** Committed `txcoord_barrier` rows: `gid|step|op` → origin. */
  readonly barriers = new Map<string, string>();
  /** BEGIN / COMMIT / ROLLBACK and every statement text, in order. */
  readonly log: string[] = [];
  /** Every statement with its parameters. */
  readonly statements: FakeStatement[] = [];
  readonly connections: FakeConnection[] = [];
  readonly configs: TediousConnectionConfig[] = [];
  readonly handlers: FakeHandler[] = [];
  readonly tables = { markers: false, barrier: false };
  /** Error that creating a missing bookkeeping table raises (e.g. serverError(262)). */
  createError: Error | undefined;
  /** HAS_PERMS_BY_NAME answers, by `markers_select`, `barrier_delete`… (default 1). */
  readonly grants = new Map<string, number | null>();
  user = 'app';
  defaultSchema = 'dbo';
  /** Answer of the write check: 1, 0, or null (no VIEW SERVER STATE). Default: whether the transaction wrote. */
  writeCheck: (tx: FakeTx | undefined) => number | null = (tx) => (tx?.wroteLogRecords || (tx?.markers.size ?? 0) > 0 ? 1 : 0);
  /** How many times a statement waited for another transaction's key lock. */
  lockWaits = 0;
  private readonly locks = new Map<string, FakeTx>();
  private readonly faults: Array<{ readonly op: FakeOp; readonly fault: Fault; readonly match?: (sql: string) => boolean }> = [];
  private tick = 0;

  /** The driver the adapter uses. */
  driver(): TediousDriver {
    return {
      createConnection: (config) => {
        const connection = new FakeConnection(this, config);
        this.connections.push(connection);
        this.configs.push(config);
        return connection;
      },
      createRequest: (sql, callback) => new FakeRequest(sql, callback),
      types: FAKE_TYPES,
    };
  }

  /** Adds a scripted answer for statements matching `match` (tried before the built-ins). */
  on(match: RegExp | string, answer: FakeResult | Error | ((s: FakeStatement) => FakeResult | Error | undefined)): void {
    this.handlers.push((s) => {
      if (typeof match === 'string' ? s.sql !== match : !match.test(s.sql)) return undefined;
      return typeof answer === 'function' ? answer(s) : answer;
    });
  }

  /** The next `op` (the next statement matching `match`, for 'query') suffers `fault`. */
  failNext(op: FakeOp, fault: Fault, match?: RegExp | string): void {
    const test = match === undefined ? undefined : (sql: string) => (typeof match === 'string' ? sql === match : match.test(sql));
    this.faults.push({ op, fault, ...(test ? { match: test } : {}) });
  }

  /** Whether some transaction holds the key lock of marker `gtrid`. */
  markerLocked(gtrid: string): boolean {
    return this.locks.has(`m:${gtrid}`);
  }

  /** @internal */
  takeFault(op: FakeOp, sql?: string): Fault | undefined {
    const i = this.faults.findIndex((f) => f.op === op && (!f.match || (sql !== undefined && f.match(sql))));
    if (i < 0) return undefined;
    const [taken] = this.faults.splice(i, 1);
    return taken?.fault;
  }

  /** @internal Applies a transaction's writes and ends it. */
  commit(tx: FakeTx): void {
    for (const [gtrid, outcome] of tx.markers) this.markers.set(gtrid, { outcome, createdAt: this.now() });
    for (const [key, origin] of tx.barriers) this.barriers.set(key, origin);
    this.end(tx);
  }

  /** @internal Discards a transaction's writes and ends it. */
  end(tx: FakeTx): void {
    for (const key of tx.locks) if (this.locks.get(key) === tx) this.locks.delete(key);
    tx.finish();
  }

  /** @internal Runs one statement. */
  async run(statement: FakeStatement): Promise<FakeResult> {
    this.log.push(statement.sql);
    this.statements.push(statement);
    for (const h of this.handlers) {
      const answer = await h(statement);
      if (answer instanceof Error) throw answer;
      if (answer !== undefined) return answer;
    }
    const { sql, values, connection } = statement;
    const tx = connection.tx;
    switch (sql) {
      case INSERT_MARKER:
        return this.insertUnlessExists(tx, `m:${String(values[0])}`, String(values[1]), tx?.markers, this.markers, values[0] as string);
      case INSERT_BARRIER: {
        const key = `${String(values[0])}|${String(values[1])}|${String(values[2])}`;
        return this.insertUnlessExists(tx, `b:${key}`, String(values[3]), tx?.barriers, this.barriers, key);
      }
      case ENSURE_MARKERS:
      case ENSURE_BARRIER: {
        const table = sql === ENSURE_MARKERS ? 'markers' : 'barrier';
        if (!this.tables[table]) {
          if (this.createError) throw this.createError;
          this.tables[table] = true;
        }
        return { rowCount: 0 };
      }
      case BOOKKEEPING_PERMISSIONS: {
        const row: Record<string, unknown> = { db_user: this.user, default_schema: this.defaultSchema, markers_schema: 'dbo', barrier_schema: 'dbo' };
        for (const t of ['markers', 'barrier']) for (const p of ['select', 'insert', 'delete']) row[`${t}_${p}`] = this.grants.get(`${t}_${p}`) ?? 1;
        return { rows: [row] };
      }
      case WHO_AM_I:
        return { rows: [{ db_user: this.user, default_schema: this.defaultSchema }] };
      case WRITE_CHECK:
        return { rows: [{ wrote: this.writeCheck(tx) }] };
      case TRANCOUNT:
        return { rows: [{ trancount: tx && !tx.done ? tx.level : 0 }] };
      case LIST_MARKERS: {
        const prefix = String(values[0]).replace(/%$/, '').replace(/\\(.)/g, '$1');
        const rows = [...this.markers]
          .filter(([gtrid]) => gtrid.startsWith(prefix))
          .sort(([a, x], [b, y]) => x.createdAt.getTime() - y.createdAt.getTime() || a.localeCompare(b))
          .slice(0, Number(values[1]))
          .map(([gtrid, m]) => ({ gtrid, outcome: m.outcome, created_at: m.createdAt }));
        return { rows };
      }
      default:
        break;
    }
    if (sql === BARRIER_EXISTS) return { rows: [{ present: this.tables.barrier ? 1 : 0 }] };
    if (sql === DELETE_BARRIERS) {
      let n = 0;
      for (const key of [...this.barriers.keys()]) {
        const gid = key.split('|')[0] ?? '';
        if (gid >= String(values[0]) && gid < String(values[1]) && this.barriers.delete(key)) n++;
      }
      return { rowCount: n };
    }
    if (sql.startsWith('delete from txcoord_markers where gtrid in (')) {
      let n = 0;
      for (const v of values) if (this.markers.delete(String(v))) n++;
      return { rowCount: n };
    }
    // Transaction control sent as user SQL.
    if (/^\s*commit\b/i.test(sql) && tx && !tx.done) {
      if (--tx.level === 0) {
        this.commit(tx);
        connection.tx = undefined;
      }
      return { rowCount: 0 };
    }
    if (/^\s*rollback\b/i.test(sql) && tx && !tx.done) {
      this.end(tx);
      connection.tx = undefined;
      return { rowCount: 0 };
    }
    if (/^\s*begin\s+tran/i.test(sql)) {
      if (tx && !tx.done) tx.level++;
      else connection.tx = new FakeTx();
      return { rowCount: 0 };
    }
    return { rowCount: 0 };
  }

  /**
   * INSERT_MARKER / INSERT_BARRIER: an insert of a key that another open transaction inserted
   * waits for that transaction (SQL Server's unique-key lock), then reports the committed row.
   */
  private async insertUnlessExists(
    tx: FakeTx | undefined,
    lockKey: string,
    value: string,
    own: Map<string, string> | undefined,
    committed: Map<string, unknown>,
    key: string,
  ): Promise<FakeResult> {
    for (;;) {
      const holder = this.locks.get(lockKey);
      if (!holder || holder === tx) break;
      this.lockWaits++;
      await holder.ended;
    }
    if (tx?.done) throw socketError('ECONNRESET'); // the session went away while waiting
    const stored = committed.get(key);
    const existing = own?.get(key) ?? (stored === undefined ? null : typeof stored === 'string' ? stored : (stored as { outcome: string }).outcome);
    if (existing === null) {
      // The inserted key stays locked by its transaction until it ends.
      if (tx && own) {
        this.locks.set(lockKey, tx);
        tx.locks.add(lockKey);
        own.set(key, value);
      } else if (committed === this.markers) {
        this.markers.set(key, { outcome: value, createdAt: this.now() });
      } else {
        this.barriers.set(key, value);
      }
    }
    return { rows: [{ existing }], rowCount: existing === null ? 2 : 1 };
  }

  private now(): Date {
    return new Date(Date.UTC(2025, 0, 1) + this.tick++ * 1000);
  }
}

/** A fake tedious Request. */
export class FakeRequest extends EventEmitter implements TediousRequest {
  readonly params: FakeParam[] = [];

  constructor(
    readonly sql: string,
    readonly callback: TediousRequestCallback,
  ) {
    super();
  }

  addParameter(name: string, type: TediousDataType, value?: unknown, options?: Readonly<TediousParameterOptions> | null): void {
    this.params.push({ name, type, value, ...(options ? { options } : {}) });
  }

  /** @internal Emits the result set like tedious (columnMetadata, then one 'row' per row). */
  deliver(result: FakeResult): void {
    const rows = result.rows ?? [];
    if (rows.length === 0 && result.rows === undefined) return;
    const names = Object.keys(rows[0] ?? {});
    this.emit(
      'columnMetadata',
      names.map((colName) => ({ colName })),
    );
    for (const row of rows) this.emit('row', names.map((colName) => ({ value: row[colName], metadata: { colName } })));
  }
}

/** A fake tedious Connection. */
export class FakeConnection extends EventEmitter implements TediousConnection {
  /** The open transaction, if any. */
  tx: FakeTx | undefined;
  closed = false;
  private inFlight: ((err: Error | null | undefined, rowCount?: number) => void) | undefined;

  constructor(
    readonly server: FakeTediousServer,
    readonly config: TediousConnectionConfig,
  ) {
    super();
  }

  connect(listener: (error?: Error) => void): void {
    setImmediate(() => {
      const fault = this.server.takeFault('connect');
      if (fault) {
        this.closed = true;
        listener(fault.kind === 'error' ? fault.error : tediousError('ESOCKET', 'ConnectionError'));
        process.nextTick(() => this.emit('end'));
        return;
      }
      listener();
    });
  }

  execSql(request: TediousRequest): void {
    this.request(request as FakeRequest, 'rpc');
  }

  execSqlBatch(request: TediousRequest): void {
    this.request(request as FakeRequest, 'batch');
  }

  beginTransaction(callback: TediousTransactionCallback): void {
    this.start('begin', callback, async () => {
      if (this.tx && !this.tx.done) this.tx.level++;
      else this.tx = new FakeTx();
      this.server.log.push('BEGIN');
      return {};
    });
  }

  commitTransaction(callback: TediousTransactionCallback): void {
    this.start('commit', callback, async () => {
      const tx = this.tx;
      if (!tx || tx.done) throw serverError(3902);
      this.server.log.push('COMMIT');
      if (--tx.level === 0) {
        this.server.commit(tx);
        this.tx = undefined;
      }
      return {};
    });
  }

  rollbackTransaction(callback: TediousTransactionCallback): void {
    this.start('rollback', callback, async () => {
      const tx = this.tx;
      if (!tx || tx.done) throw serverError(3903);
      this.server.log.push('ROLLBACK');
      this.server.end(tx);
      this.tx = undefined;
      return {};
    });
  }

  /** Closes the connection: the server rolls back its transaction; a running request gets ECLOSE. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abortTx();
    this.settle(tediousError('ECLOSE'));
    process.nextTick(() => this.emit('end'));
  }

  /** The socket dies now: the running request gets the raw socket error, then 'error' and 'end'. */
  lose(code = 'ECONNRESET'): void {
    if (this.closed) return;
    this.closed = true;
    this.abortTx();
    this.settle(socketError(code));
    process.nextTick(() => {
      this.emit('error', tediousError('ESOCKET', 'ConnectionError'));
      this.emit('end');
    });
  }

  private request(request: FakeRequest, kind: 'rpc' | 'batch'): void {
    const statement: FakeStatement = {
      sql: request.sql,
      values: request.params.map((p) => p.value),
      params: request.params,
      kind,
      connection: this,
    };
    this.start('query', request.callback, () => this.server.run(statement), request);
  }

  /** Runs one request asynchronously, like a round trip, applying any injected fault. */
  private start(op: FakeOp, callback: (err: Error | null | undefined, rowCount?: number) => void, work: () => Promise<FakeResult>, request?: FakeRequest): void {
    if (this.closed || this.inFlight) {
      setImmediate(() => callback(tediousError('EINVALIDSTATE')));
      return;
    }
    this.inFlight = callback;
    setImmediate(() => {
      void (async () => {
        const fault = this.server.takeFault(op, request?.sql);
        try {
          if (fault?.kind === 'delay') await fault.until;
          if (fault?.kind === 'lose') {
            if (fault.applied) await work();
            this.lose(fault.code);
            return;
          }
          if (fault?.kind === 'timeout') {
            if (this.inFlight === callback) this.settle(tediousError('ETIMEOUT'));
            return;
          }
          if (fault?.kind === 'error') throw fault.error;
          const result = await work();
          if (this.inFlight !== callback) return; // closed meanwhile: it already got ECLOSE
          this.inFlight = undefined;
          request?.deliver(result);
          callback(null, result.rowCount ?? result.rows?.length ?? 0);
        } catch (err) {
          if (this.inFlight !== callback) return;
          this.settle(err as Error);
        }
      })();
    });
  }

  private settle(err: Error): void {
    const callback = this.inFlight;
    this.inFlight = undefined;
    callback?.(err);
  }

  private abortTx(): void {
    const tx = this.tx;
    this.tx = undefined;
    if (tx && !tx.done) this.server.end(tx);
  }
}
