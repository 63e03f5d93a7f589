import { EventEmitter } from 'node:events';

/**
 * A pretend database shared by the fake connections and the fake server: which branches are
 * prepared, and which are still held by the session that prepared them (MariaDB refuses phase
 * two from another session while that session is connected).
 */
export class FakeDatabase {
  readonly prepared = new Set<string>();
  readonly attached = new Set<string>();
}

/** An error shaped like node-postgres's. */
export function pgError(code: string, message = `pg error ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

/** An error shaped like mysql2's. */
export function mysqlError(errno: number, code: string, fatal = false): Error {
  return Object.assign(new Error(`mysql error ${code}`), { errno, code, ...(fatal ? { fatal } : {}) });
}

type PgStatus = 'I' | 'T' | 'E';

/**
 * A node-postgres client that records every statement and behaves like PostgreSQL where it
 * matters: a failed statement puts the block in the failed state, and PREPARE TRANSACTION in a
 * failed block answers with the tag ROLLBACK (no error) and prepares nothing.
 */
export class FakePgClient {
  readonly sql: string[] = [];
  status: PgStatus = 'I';
  /** Makes a statement fail with the returned error. */
  failOn: (sql: string) => Error | undefined = () => undefined;

  constructor(private readonly db: FakeDatabase = new FakeDatabase()) {}

  async query(text: string, _values?: unknown[]): Promise<{ command: string; rowCount: number | null; rows: Record<string, unknown>[] }> {
    this.sql.push(text);
    const err = this.failOn(text);
    if (err) {
      if (this.status === 'T') this.status = 'E';
      throw err;
    }
    if (text === 'BEGIN') {
      this.status = 'T';
      return { command: 'BEGIN', rowCount: null, rows: [] };
    }
    if (text === 'ROLLBACK') {
      this.status = 'I';
      return { command: 'ROLLBACK', rowCount: null, rows: [] };
    }
    const prepare = /^PREPARE TRANSACTION '([^']+)'$/.exec(text);
    if (prepare) {
      const failed = this.status === 'E';
      this.status = 'I';
      if (failed) return { command: 'ROLLBACK', rowCount: null, rows: [] };
      this.db.prepared.add(prepare[1] ?? '');
      return { command: 'PREPARE', rowCount: null, rows: [] };
    }
    if (this.status === 'E') {
      throw pgError('25P02', 'current transaction is aborted, commands ignored until end of transaction block');
    }
    if (/^update/i.test(text)) return { command: 'UPDATE', rowCount: 2, rows: [] };
    return { command: 'SELECT', rowCount: 1, rows: [{ n: 1 }] };
  }

  getTransactionStatus(): PgStatus {
    return this.status;
  }
}

/**
 * A mysql2/promise connection that records every statement and mimics mysql2's API where it
 * matters: a pooled connection's `end()` releases it into the pool (mysql2 3.x), a plain one's
 * `release()` throws (its core connection has none), and closing emits 'end' asynchronously.
 */
export class FakeMysqlConnection extends EventEmitter {
  readonly sql: string[] = [];
  released = false;
  destroyed = false;
  ended = false;
  /** Makes a statement fail with the returned error. */
  failOn: (sql: string) => Error | undefined = () => undefined;
  /** Whether closing emits 'end' (a server that never closes its side does not). */
  emitsEnd = true;
  /** As mysql2's promise wrappers: the core connection, which has `release` only when pooled. */
  readonly connection: { release?: () => void };
  /** The XA xid clauses this session prepared and still holds. */
  private readonly held = new Set<string>();

  constructor(
    readonly pooled: boolean,
    private readonly db: FakeDatabase = new FakeDatabase(),
  ) {
    super();
    this.connection = pooled ? { release: () => undefined } : {};
  }

  async query(sql: string, _values?: unknown[]): Promise<[unknown, unknown]> {
    if (this.destroyed || this.ended) throw mysqlError(0, 'PROTOCOL_ENQUEUE_AFTER_QUIT', true);
    this.sql.push(sql);
    const err = this.failOn(sql);
    if (err) throw err;
    const prepare = /^XA PREPARE (.+)$/.exec(sql);
    if (prepare) {
      const xa = prepare[1] ?? '';
      this.db.prepared.add(xa);
      this.db.attached.add(xa);
      this.held.add(xa);
    }
    if (/^select/i.test(sql)) return [[{ n: 1 }], []];
    return [{ affectedRows: /^(insert|update)/i.test(sql) ? 1 : 0, serverStatus: 0 }, undefined];
  }

  release(): void {
    if (!this.pooled) throw new TypeError('this.connection.release is not a function');
    this.released = true;
  }

  destroy(): void {
    this.destroyed = true;
    this.close();
  }

  async end(): Promise<void> {
    if (this.pooled) {
      // mysql2 3.x: "Calling conn.end() to release a pooled connection is deprecated"; it releases.
      this.released = true;
      return;
    }
    this.ended = true;
    this.close();
  }

  /** Whether the connection went back to a pool still holding a prepared branch (the bug under test). */
  get releasedHoldingBranch(): boolean {
    return this.released && !this.destroyed && this.held.size > 0;
  }

  private close(): void {
    for (const xa of this.held) this.db.attached.delete(xa);
    this.held.clear();
    if (this.emitsEnd) setImmediate(() => this.emit('end'));
  }
}
