import type { Logger } from 'pino';
import type { QueryResult } from '../participant.js';
import type { TediousColumn, TediousConnection, TediousConnectionConfig, TediousDriver, TediousRequest } from './driver.js';
import type { TediousParameter } from './parameters.js';

/**
 * One tedious connection with a promise API. tedious runs one request at a time per connection;
 * callers (a branch, or a participant helper holding the session alone) never overlap requests.
 */
export class MssqlSession {
  /** The connection failed, ended or was discarded: it must never be reused. */
  dead = false;
  private ended = false;
  private readonly endWaiters: Array<() => void> = [];

  private constructor(
    private readonly connection: TediousConnection,
    private readonly driver: TediousDriver,
    private readonly logger: Logger,
  ) {
    // Attached before connect(), and kept for the connection's whole life: tedious emits 'error'
    // on a socket failure (also between requests) and an 'error' without a listener would crash
    // the process. The request that was running, if any, gets its own error through its callback.
    connection.on('error', (err) => {
      this.dead = true;
      this.logger.warn({ err }, 'SQL Server connection failed');
    });
    connection.on('end', () => {
      this.dead = true;
      this.ended = true;
      for (const resolve of this.endWaiters.splice(0)) resolve();
    });
  }

  /** Opens and logs in a connection; rejects with tedious's ConnectionError (ELOGIN, ESOCKET, ETIMEOUT…). */
  static open(driver: TediousDriver, config: TediousConnectionConfig, logger: Logger): Promise<MssqlSession> {
    const session = new MssqlSession(driver.createConnection(config), driver, logger);
    return new Promise((resolve, reject) => {
      session.connection.connect((err) => {
        if (err) {
          session.dead = true;
          reject(err);
        } else {
          resolve(session);
        }
      });
    });
  }

  /**
   * Runs `sql` and returns the rows of its last result set, keyed by column name (a later column
   * with the same name wins), and tedious's row count (rows returned plus rows affected).
   * With parameters it goes through sp_executesql as @p1, @p2…; without, as a plain batch, so
   * that `#temp` tables created by it outlive the statement.
   */
  execute(sql: string, params: readonly TediousParameter[] = []): Promise<QueryResult> {
    return new Promise((resolve, reject) => {
      let rows: Record<string, unknown>[] = [];
      let request: TediousRequest;
      try {
        request = this.driver.createRequest(sql, (err, rowCount) => {
          if (err) reject(err);
          else resolve({ rows, rowCount: rowCount ?? rows.length });
        });
        request.on('columnMetadata', () => {
          rows = [];
        });
        request.on('row', (columns: TediousColumn[]) => {
          const row: Record<string, unknown> = {};
          for (const column of columns) row[column.metadata.colName] = column.value;
          rows.push(row);
        });
        params.forEach((p, i) => request.addParameter(`p${i + 1}`, p.type, p.value, p.options ?? null));
      } catch (err) {
        reject(err);
        return;
      }
      if (params.length === 0) this.connection.execSqlBatch(request);
      else this.connection.execSql(request);
    });
  }

  /** BEGIN TRANSACTION (a TDS transaction-manager request, at READ COMMITTED). */
  begin(): Promise<void> {
    return this.transaction((cb) => this.connection.beginTransaction(cb));
  }

  /** COMMIT TRANSACTION. */
  commit(): Promise<void> {
    return this.transaction((cb) => this.connection.commitTransaction(cb));
  }

  /** ROLLBACK TRANSACTION. */
  rollback(): Promise<void> {
    return this.transaction((cb) => this.connection.rollbackTransaction(cb));
  }

  /**
   * Marks the session dead and closes its connection (the server rolls back an open transaction
   * when the session ends); resolves once tedious reports 'end'. Idempotent.
   */
  close(): Promise<void> {
    this.dead = true;
    if (this.ended) return Promise.resolve();
    const ended = new Promise<void>((resolve) => this.endWaiters.push(resolve));
    try {
      this.connection.close();
    } catch (err) {
      this.logger.warn({ err }, 'closing a SQL Server connection failed');
    }
    return ended;
  }

  private transaction(start: (cb: (err: Error | null | undefined) => void) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        start((err) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err);
      }
    });
  }
}
