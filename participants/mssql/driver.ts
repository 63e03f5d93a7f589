/**
 * The slice of tedious this adapter uses. Typing only this slice keeps tedious out of the session,
 * branch and participant code, so unit tests drive them with the fake in test/fakes/fake-tedious.ts;
 * index.ts checks that the real `Connection`, `Request` and `TYPES` fit it.
 */

/** A tedious data type (`TYPES.Int`…); only passed back to `addParameter`. */
export interface TediousDataType {
  readonly name: string;
}

/** The tedious data types the adapter binds parameters with. */
export interface TediousTypes {
  readonly Bit: TediousDataType;
  readonly Int: TediousDataType;
  readonly BigInt: TediousDataType;
  readonly Float: TediousDataType;
  readonly NVarChar: TediousDataType;
  readonly VarChar: TediousDataType;
  readonly DateTime2: TediousDataType;
  readonly VarBinary: TediousDataType;
}

/** Options of one bound parameter (a fixed `length` keeps one plan per statement). */
export interface TediousParameterOptions {
  readonly length?: number;
}

/** One column of a row as tedious emits it with `useColumnNames: false`. */
export interface TediousColumn {
  readonly value: unknown;
  readonly metadata: { readonly colName: string };
}

/**
 * Completion of a request: `rowCount` is the sum of the DONE tokens' counts (rows returned plus
 * rows affected, triggers included). With a socket failure the error is the raw Node error
 * (ECONNRESET…); tedious's own codes are ESOCKET, ECLOSE, ETIMEOUT, EINVALIDSTATE…
 */
export type TediousRequestCallback = (error: Error | null | undefined, rowCount?: number) => void;

/** A tedious `Request`. */
export interface TediousRequest {
  addParameter(name: string, type: TediousDataType, value?: unknown, options?: Readonly<TediousParameterOptions> | null): void;
  /** Once per result set, before its rows. */
  on(event: 'columnMetadata', listener: (columns: unknown) => void): unknown;
  on(event: 'row', listener: (columns: TediousColumn[]) => void): unknown;
}

/** Completion of a transaction-manager request (tedious passes a descriptor on begin; unused). */
export type TediousTransactionCallback = (error: Error | null | undefined) => void;

/**
 * A tedious `Connection`: one request at a time. It emits 'error' (a ConnectionError, code
 * ESOCKET) when its socket fails, which crashes the process without a listener, and 'end' once
 * closed for whatever reason.
 */
export interface TediousConnection {
  connect(listener: (error?: Error) => void): void;
  /** Runs `sp_executesql` with the request's parameters (RPC). */
  execSql(request: TediousRequest): void;
  /** Runs the text as a plain batch; parameters are not sent. */
  execSqlBatch(request: TediousRequest): void;
  /** TDS transaction-manager BEGIN at the connection's `isolationLevel`; `name` is not used. */
  beginTransaction(callback: TediousTransactionCallback): void;
  commitTransaction(callback: TediousTransactionCallback): void;
  rollbackTransaction(callback: TediousTransactionCallback): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  /** Closes the socket; a request in flight completes with ECLOSE, then 'end' is emitted. */
  close(): void;
}

/** The connection settings the adapter gives tedious (a subset of its ConnectionConfiguration). */
export interface TediousConnectionConfig {
  readonly server: string;
  readonly authentication: {
    readonly type: 'default';
    readonly options: { readonly userName: string; readonly password: string };
  };
  readonly options: {
    readonly port: number;
    readonly database?: string;
    readonly encrypt: boolean | 'strict';
    readonly trustServerCertificate: boolean;
    /** Per-request deadline (ms) until the first answer packet; then tedious cancels and fails with ETIMEOUT. */
    readonly requestTimeout: number;
    readonly connectTimeout: number;
    readonly appName: string;
    /** SET XACT_ABORT OFF at login: a failed statement leaves the transaction to the adapter. */
    readonly abortTransactionOnError: boolean;
    /** tedious ISOLATION_LEVEL value for BEGIN (sent with every transaction-manager BEGIN) and at login. */
    readonly isolationLevel: number;
    readonly connectionIsolationLevel: number;
    readonly useUTC: boolean;
    readonly useColumnNames: boolean;
    readonly rowCollectionOnDone: boolean;
    readonly rowCollectionOnRequestCompletion: boolean;
  };
}

/** How the adapter makes connections and requests: tedious itself, or a fake in tests. */
export interface TediousDriver {
  /** `new Connection(config)`, not yet connected. */
  createConnection(config: TediousConnectionConfig): TediousConnection;
  /** `new Request(sql, callback)`. */
  createRequest(sql: string, callback: TediousRequestCallback): TediousRequest;
  readonly types: TediousTypes;
}
