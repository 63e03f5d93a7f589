import pg from 'pg';
import type { Logger } from 'pino';

/** What the log reads from a statement's answer. */
export interface LogQueryResult<R> {
  readonly rows: R[];
  readonly rowCount: number | null;
  /** The command tag: a COMMIT of an aborted transaction answers `ROLLBACK`. */
  readonly command: string;
}

/** One connection checked out of a {@link LogPool}. */
export interface LogClient {
  /** Runs `text`; without `values`, it may hold several statements, and the last one answers. */
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<LogQueryResult<R>>;
  /** Returns the connection; with `broken`, destroys it instead (its session state is unknown). */
  release(broken?: boolean): void;
}

/** The connections the log runs on: node-postgres in production, a fake in unit tests. */
export interface LogPool {
  connect(): Promise<LogClient>;
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<LogQueryResult<R>>;
  end(): Promise<void>;
}

/** Settings of {@link createLogPool}. */
export interface LogPoolSettings {
  readonly connectionString: string;
  readonly logger: Logger;
  /** Connections at most: the writer, the lease renewal and take-over/queries need one each. */
  readonly size: number;
  /** How long to wait for a connection to be made. */
  readonly connectTimeoutMs: number;
}

/** A node-postgres pool for the decision log, wrapped as a {@link LogPool}. */
export function createLogPool(settings: LogPoolSettings): LogPool {
  const pool = new pg.Pool({
    connectionString: settings.connectionString,
    max: settings.size,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'txcoord-log',
    // The log's timers are unref'd; an idle pool alone should not keep a process alive.
    allowExitOnIdle: true,
  });
  pool.on('error', (err) => settings.logger.warn({ err }, 'idle decision log connection failed'));
  // pg-pool removes its own listener while a client is checked out, and a FATAL (server restart,
  // pg_terminate_backend) can arrive between statements: an 'error' event with no listener would
  // crash the process. Every client keeps this one for life; the failing statement reports it.
  pool.on('connect', (client) => client.on('error', (err) => settings.logger.debug({ err }, 'decision log connection failed')));
  // A text of several statements (sent without parameters) answers with an array: keep the last.
  const wrapResult = <R>(answer: pg.QueryResult | pg.QueryResult[]): LogQueryResult<R> => {
    const r = Array.isArray(answer) ? answer[answer.length - 1]! : answer;
    return { rows: r.rows as R[], rowCount: r.rowCount, command: r.command };
  };
  return {
    async connect(): Promise<LogClient> {
      const client = await pool.connect();
      return {
        query: async <R>(text: string, values?: readonly unknown[]) => wrapResult<R>(await client.query(text, values ? [...values] : undefined)),
        release: (broken?: boolean) => client.release(broken === true),
      };
    },
    query: async <R>(text: string, values?: readonly unknown[]) => wrapResult<R>(await pool.query(text, values ? [...values] : undefined)),
    end: () => pool.end(),
  };
}
