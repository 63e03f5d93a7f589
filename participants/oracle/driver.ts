/**
 * The slice of node-oracledb (Thin mode) this adapter uses. Typing only this slice keeps
 * `oracledb` (which ships no type declarations) out of the branch and participant code, so unit
 * tests drive them with a recording fake (test/fakes/fake-oracledb.ts).
 */

/** An X/Open xid as node-oracledb's tpc* calls take it. */
export interface OracleXid {
  readonly formatId: number;
  /** At most 64 bytes (the driver throws NJS-153 beyond). */
  readonly globalTransactionId: string | Buffer;
  /** At most 64 bytes (NJS-154 beyond). */
  readonly branchQualifier: string | Buffer;
}

/** Options of every `execute` this adapter sends. */
export interface OracleExecuteOptions {
  /** Always {@link OUT_FORMAT_OBJECT}: rows as objects keyed by (upper-case) column name. */
  readonly outFormat: number;
  /** false inside branches; true only for bookkeeping statements run outside any branch. */
  readonly autoCommit: boolean;
}

/**
 * What `execute` answers (Thin, lib/thin/connection.js): a query has `rows` and no
 * `rowsAffected`; any other statement (DML, DDL, LOCK TABLE…) has `rowsAffected` (0 when none);
 * a PL/SQL block has `rowsAffected` only when its last DML counted rows.
 */
export interface OracleExecuteResult {
  readonly rows?: Record<string, unknown>[];
  readonly rowsAffected?: number;
}

/** A connection checked out of the pool. */
export interface OracleConnection {
  /**
   * Milliseconds any one round trip may take (0: no limit). Thin sends a break when it expires
   * and fails the call with NJS-123, or with NJS-500 when the break gets no answer either.
   */
  callTimeout: number;
  execute(sql: string, binds: unknown[], options: OracleExecuteOptions): Promise<OracleExecuteResult>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Starts (flag {@link TPC_BEGIN_NEW}) a branch attached to this session; `timeout` in seconds of allowed inactivity once detached. */
  tpcBegin(xid: OracleXid, flag: number, timeout: number): Promise<void>;
  /** Detaches the branch from the session (flag {@link TPC_END_NORMAL}); it stays alive, unprepared, for `timeout` seconds. */
  tpcEnd(xid: OracleXid, flag: number): Promise<void>;
  /** true: prepared, needs phase two; false: read-only, the server already ended (forgot) it. */
  tpcPrepare(xid: OracleXid): Promise<boolean>;
  /** `onePhase` false commits a prepared branch; true commits an unprepared one without prepare. */
  tpcCommit(xid: OracleXid, onePhase: boolean): Promise<void>;
  tpcRollback(xid: OracleXid): Promise<void>;
  /**
   * Prepared branches (a query on DBA_PENDING_TRANSACTIONS, lib/connection.js). With
   * `asString` false the ids come back as the raw bytes (Buffers).
   */
  tpcRecover(asString: boolean): Promise<OracleXid[]>;
  /**
   * Back to the pool. Thin ignores `drop` for pooled connections (lib/pool.js passes it to the
   * Thin impl's close(), which takes no options) but first rolls back any transaction still open
   * on the session, attached TPC branch included; a broken socket is never kept by the pool.
   */
  close(options?: { drop?: boolean }): Promise<void>;
}

/** The pool. */
export interface OraclePool {
  getConnection(): Promise<OracleConnection>;
  /** Waits up to `drainTime` seconds for checked-out connections, then closes them all. */
  close(drainTime: number): Promise<void>;
}

/** What this adapter passes to `oracledb.createPool`. */
export interface OraclePoolAttributes {
  readonly user: string;
  readonly password: string;
  /** Easy Connect: `host:port/service_name[?params]`. */
  readonly connectString: string;
  readonly poolMin: number;
  readonly poolMax: number;
  readonly poolIncrement: number;
  /** Milliseconds a getConnection() waits in the pool's queue (NJS-040 after). */
  readonly queueTimeout: number;
  /** Seconds to establish a connection. */
  readonly connectTimeout: number;
  /** Minutes between TCP keepalive probes, so a dead peer is noticed at all. */
  readonly expireTime: number;
}

/** The module surface index.ts loads (node-oracledb 6.6+: tpc* calls in Thin mode). */
export interface OracleDriverModule {
  createPool(attributes: OraclePoolAttributes): Promise<OraclePool>;
  /** true until initOracleClient() is called, which this adapter never does. */
  readonly thin: boolean;
  readonly OUT_FORMAT_OBJECT: number;
  readonly TPC_BEGIN_NEW: number;
  readonly TPC_END_NORMAL: number;
}

// node-oracledb's own values (lib/constants.js), repeated so that branch and participant code
// need not load the driver; index.ts checks them against the loaded module.

/** `oracledb.OUT_FORMAT_OBJECT`. */
export const OUT_FORMAT_OBJECT = 4002;
/** `oracledb.TPC_BEGIN_NEW`. */
export const TPC_BEGIN_NEW = 0x00000001;
/** `oracledb.TPC_END_NORMAL`. */
export const TPC_END_NORMAL = 0;
