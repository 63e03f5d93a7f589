import { TxcError, type TxcErrorDetails } from '../coordinator/errors.js';
import { toPgGid } from '../coordinator/xid.js';
import { classifyPgError, type PgErrorClass } from '../participants/postgres/errors.js';
import type { BranchHandle, BranchQueryResult } from './branch-handle.js';
import { SerialQueue } from '../participants/serial-queue.js';
import type { WireBranch } from './wire-types.js';
import { assertBranchDriver, xidOfBranch } from './xid-of-branch.js';

/** One statement's result as node-postgres reports it. */
export interface PgBranchResult {
  /** Command tag: 'SELECT', 'INSERT', 'PREPARE', 'ROLLBACK'… */
  readonly command: string;
  readonly rowCount: number | null;
  readonly rows: Record<string, unknown>[];
}

/**
 * The slice of a node-postgres `Client` / `PoolClient` the helper uses (both satisfy it). A
 * `pg.Pool` does not: it would run each statement on whichever connection is free.
 */
export interface PgBranchClient {
  query(text: string, values?: unknown[]): Promise<PgBranchResult | PgBranchResult[]>;
  /** 'I' idle, 'T' in a transaction block, 'E' in a failed block; null before connecting. */
  getTransactionStatus(): 'I' | 'T' | 'E' | null;
}

/** A PostgreSQL branch run on the application's own client. */
export interface PgBranch extends BranchHandle {
  /** Runs one statement in the branch's transaction block. Failures are TXC_QUERY_FAILED with the pg error as `cause`. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<BranchQueryResult<R>>;
  /**
   * `PREPARE TRANSACTION '<gid>'`. PostgreSQL answers a PREPARE in a block where a statement
   * failed with the tag ROLLBACK, rolls everything back and prepares nothing, without an error:
   * the tag is checked, and anything but PREPARE is TXC_PREPARE_FAILED. Once prepared, the
   * transaction no longer belongs to the session, so the client is idle again and may go back
   * to its pool; the coordinator commits from its own connections.
   */
  prepare(): Promise<void>;
}

type State = 'active' | 'preparing' | 'prepared' | 'rolled-back' | 'in-doubt';

/**
 * Opens the branch on `client` (BEGIN) and returns the helper that runs it. The client must be
 * idle (not in a transaction block) and stay checked out until prepare() or rollback() settles;
 * statements may go through the helper or straight through the client in between.
 */
export async function pgBranch(client: PgBranchClient, branch: WireBranch): Promise<PgBranch> {
  assertBranchDriver(branch, ['postgres', 'pglite'], 'pgBranch');
  // Spliced into PREPARE TRANSACTION (no bind parameter possible): only a validated xid gets there.
  const gid = toPgGid(xidOfBranch(branch));
  const details = { participant: branch.participant };
  if (typeof client?.query !== 'function' || typeof client.getTransactionStatus !== 'function') {
    throw new TxcError('TXC_BAD_REQUEST', 'pgBranch needs a pg Client or a client checked out with pool.connect(), not a pg.Pool', { details });
  }
  const status = client.getTransactionStatus();
  if (status === 'T' || status === 'E') {
    // Its BEGIN would only warn, and PREPARE would then take the caller's earlier work along.
    throw new TxcError('TXC_BAD_REQUEST', `pgBranch needs an idle client, but this one is inside a transaction block (status ${status})`, { details });
  }
  try {
    await client.query('BEGIN');
  } catch (err) {
    const c = classifyPgError(err);
    throw new TxcError('TXC_QUERY_FAILED', `BEGIN failed on participant ${branch.participant}`, { cause: err, retryable: c.retryable, details: pgDetails(branch, c) });
  }
  return new PostgresClientBranch(client, branch, gid);
}

class PostgresClientBranch implements PgBranch {
  private state: State = 'active';
  private readonly queue = new SerialQueue();
  /** The last failed statement: it is why a later PREPARE answers ROLLBACK. */
  private lastFailure: { readonly error: unknown; readonly class: PgErrorClass } | undefined;

  constructor(
    private readonly client: PgBranchClient,
    readonly branch: WireBranch,
    private readonly gid: string,
  ) {}

  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<BranchQueryResult<R>> {
    return this.queue.run(async () => {
      if (this.state !== 'active') throw this.closed();
      let out: PgBranchResult | PgBranchResult[];
      try {
        out = await this.client.query(sql, params === undefined ? undefined : [...params]);
      } catch (err) {
        const c = classifyPgError(err);
        this.lastFailure = { error: err, class: c };
        throw new TxcError('TXC_QUERY_FAILED', `A statement failed on participant ${this.branch.participant}`, {
          cause: err,
          retryable: c.retryable,
          details: pgDetails(this.branch, c),
        });
      }
      const last = Array.isArray(out) ? out[out.length - 1] : out;
      const rows = (last?.rows ?? []) as R[];
      return { rows, rowCount: last?.rowCount ?? rows.length };
    });
  }

  prepare(): Promise<void> {
    return this.queue.run(async () => {
      if (this.state === 'prepared') return;
      if (this.state !== 'active') throw this.prepareFailed(`the branch is ${this.state}`, false);
      this.state = 'preparing';
      let out: PgBranchResult | PgBranchResult[];
      try {
        out = await this.client.query(`PREPARE TRANSACTION '${this.gid}'`);
      } catch (err) {
        const c = classifyPgError(err);
        if (c.kind === 'connection') {
          // PREPARE may have run before the connection died; only the server can tell, and its
          // abort rolls the branch back by gid if it exists.
          this.state = 'in-doubt';
          throw this.prepareFailed('the connection broke during PREPARE TRANSACTION, so the branch may be prepared: abort the transaction', true, err, c, true);
        }
        // Refused (duplicate gid, temporary tables, serialization failure): the block may still be open.
        await this.rollbackQuietly();
        throw this.prepareFailed('PostgreSQL refused PREPARE TRANSACTION and the work was rolled back', c.retryable, err, c);
      }
      const tag = (Array.isArray(out) ? out[out.length - 1] : out)?.command;
      if (tag !== 'PREPARE') {
        this.state = 'rolled-back';
        const failure = this.lastFailure;
        throw this.prepareFailed(
          `PREPARE TRANSACTION answered ${String(tag)}: a statement had failed in the transaction, so the work was rolled back and nothing was prepared`,
          failure?.class.retryable ?? false,
          failure?.error,
          failure?.class,
        );
      }
      this.state = 'prepared';
    });
  }

  rollback(): Promise<void> {
    return this.queue.run(async () => {
      if (this.state !== 'active') return;
      try {
        await this.client.query('ROLLBACK');
      } catch (err) {
        const c = classifyPgError(err);
        // A session that is gone took its transaction with it: rolled back all the same.
        if (c.kind !== 'connection') {
          throw new TxcError('TXC_QUERY_FAILED', `ROLLBACK failed on participant ${this.branch.participant}`, { cause: err, details: pgDetails(this.branch, c) });
        }
      }
      this.state = 'rolled-back';
    });
  }

  private async rollbackQuietly(): Promise<void> {
    this.state = 'rolled-back';
    try {
      await this.client.query('ROLLBACK');
    } catch {
      // The prepare error is the one to report; a ROLLBACK outside a block only warns anyway.
    }
  }

  private closed(): TxcError {
    return new TxcError('TXC_TRANSACTION_CLOSED', `The branch of participant ${this.branch.participant} is ${this.state}`, {
      details: { participant: this.branch.participant },
    });
  }

  private prepareFailed(why: string, retryable: boolean, cause?: unknown, c?: PgErrorClass, inDoubt = false): TxcError {
    return new TxcError('TXC_PREPARE_FAILED', `Participant ${this.branch.participant} did not prepare ${this.gid}: ${why}`, {
      cause,
      retryable,
      details: { ...pgDetails(this.branch, c), ...(inDoubt ? { inDoubt } : {}) },
    });
  }
}

function pgDetails(branch: WireBranch, c?: PgErrorClass): TxcErrorDetails {
  return { participant: branch.participant, sqlState: c?.sqlState, code: c?.code };
}
