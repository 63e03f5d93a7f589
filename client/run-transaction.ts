import { TxcError } from '../coordinator/errors.js';
import { assertParticipantName } from '../coordinator/xid.js';
import type { BranchHandle } from './branch-handle.js';
import { mysqlBranch, type MysqlBranch, type MysqlBranchConnection, type MysqlBranchOptions } from './mysql-branch.js';
import { pgBranch, type PgBranch, type PgBranchClient } from './pg-branch.js';
import { settleCommit, type SettleCalls } from './settle-commit.js';
import type { DecisionCallOptions } from './txcoord-client-options.js';
import type { BeginTransactionRequest, CommitAnswer, TransactionView, WireBranch, WireMeta } from './wire-types.js';

/**
 * What the `runTransaction` callback gets: the transaction's branches, and the helpers that run
 * a branch on the caller's own connection and register it to be prepared after the callback.
 */
export interface TransactionScope {
  readonly id: string;
  /** ms since epoch: past it, the server aborts the transaction. */
  readonly deadlineAt: number;
  /** The branch of each participant passed to runTransaction, by participant name. */
  readonly branches: Readonly<Record<string, WireBranch>>;
  /** Opens the participant's branch on a pg client (see `pgBranch`); prepared after the callback. */
  pg(participant: string, client: PgBranchClient): Promise<PgBranch>;
  /** Starts the participant's XA branch on a mysql2/promise connection (see `mysqlBranch`); prepared, and the connection closed, after the callback. */
  mysql(participant: string, conn: MysqlBranchConnection, options?: MysqlBranchOptions): Promise<MysqlBranch>;
  /** Registers a branch run some other way (another driver): it is prepared after the callback like the others. */
  attach<H extends BranchHandle>(participant: string, handle: H): H;
}

/** Options of `runTransaction`. */
export interface RunTransactionOptions {
  /** Past this the server aborts the transaction if it is not decided. Server default 60 000 ms. */
  readonly timeoutMs?: number;
  readonly meta?: WireMeta;
  /**
   * Repeat the commit call when its answer is lost (network, timeout, 502/503/504): safe, as the
   * server answers a repeated commit from the transaction's state. Without it, a lost answer is
   * settled by reading the state (and aborting a transaction the commit never reached). Default false.
   */
  readonly retryCommit?: boolean;
}

/** What `runTransaction` resolves with: the callback's value, once the transaction is committed. */
export interface RunTransactionResult<T> {
  readonly id: string;
  readonly value: T;
  /** Some branch is still being committed by the server in the background (the outcome is decided). */
  readonly phaseTwoPending: boolean;
}

/** The server calls runTransaction makes. */
export interface RunTransactionCalls extends SettleCalls {
  beginTransaction(request: BeginTransactionRequest): Promise<TransactionView>;
  commit(id: string, options?: DecisionCallOptions): Promise<CommitAnswer>;
}

/**
 * Begins a transaction with `participants`, runs `fn`, prepares every branch `fn` attached (in
 * parallel), and commits. On any failure (the callback throws, a participant listed but never
 * attached, a branch fails to prepare) it rolls back the unprepared branches on their
 * connections, aborts the transaction (which rolls back the prepared ones from the server), and
 * rethrows. A commit whose answer is lost is settled with {@link settleCommit}.
 */
export async function runTransaction<T>(
  calls: RunTransactionCalls,
  participants: readonly string[],
  fn: (tx: TransactionScope) => Promise<T>,
  options: RunTransactionOptions = {},
): Promise<RunTransactionResult<T>> {
  checkParticipants(participants);
  const view = await calls.beginTransaction({
    participants,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.meta === undefined ? {} : { meta: options.meta }),
  });
  const id = view.id;
  const scope = new Scope(view);
  const fail = async (err: unknown): Promise<never> => {
    const handles = await scope.close();
    // Local rollbacks free the rows at once; the abort rolls back the prepared branches and
    // closes the transaction. Their failures are not reported: the deadline aborts it anyway.
    await Promise.allSettled([...[...handles.values()].map((h) => h.rollback()), calls.abort(id, { retry: true })]);
    throw err;
  };

  let value: T;
  try {
    const missing = participants.filter((p) => !Object.hasOwn(scope.branches, p));
    if (missing.length > 0) {
      throw new TxcError('TXC_PARTICIPANT_UNKNOWN', `The server's answer to beginTransaction has no branch for ${missing.join(', ')}`, {
        details: { id, participants: missing.join(',') },
      });
    }
    value = await fn(scope);
  } catch (err) {
    return fail(err);
  }
  const handles = await scope.close();
  const unattached = participants.filter((p) => !handles.has(p));
  if (unattached.length > 0) {
    return fail(
      new TxcError(
        'TXC_PREPARE_FAILED',
        `Transaction ${id}: no connection was attached for ${unattached.join(', ')} (tx.pg, tx.mysql or tx.attach in the callback), so ${unattached.length === 1 ? 'its branch' : 'their branches'} cannot be prepared; ` +
          'list only the participants the callback uses',
        { details: { id, participants: unattached.join(',') } },
      ),
    );
  }
  const prepared = await Promise.allSettled([...handles.values()].map((h) => h.prepare()));
  const refused = prepared.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (refused) return fail(refused.reason);

  let answer: CommitAnswer | undefined;
  try {
    answer = await calls.commit(id, { retry: options.retryCommit ?? false });
  } catch (err) {
    const settled = await settleCommit(calls, id, err);
    return { id, value, phaseTwoPending: settled.phaseTwoPending };
  }
  return { id, value, phaseTwoPending: answer.phaseTwoPending };
}

function checkParticipants(participants: readonly string[]): void {
  if (!Array.isArray(participants) || participants.length === 0) {
    throw new TxcError('TXC_BAD_REQUEST', 'runTransaction needs at least one participant', { details: { field: 'participants' } });
  }
  for (const p of participants) assertParticipantName(p);
  const seen = new Set<string>();
  for (const p of participants) {
    if (seen.has(p)) throw new TxcError('TXC_BAD_REQUEST', `Participant ${p} is listed twice`, { details: { field: 'participants', participant: p } });
    seen.add(p);
  }
}

/** The callback's view of the transaction; it records which branches were attached. */
class Scope implements TransactionScope {
  readonly id: string;
  readonly deadlineAt: number;
  readonly branches: Readonly<Record<string, WireBranch>>;
  /** Per participant, its handle once started (undefined when starting failed). */
  private readonly claims = new Map<string, Promise<BranchHandle | undefined>>();
  private closed = false;

  constructor(view: TransactionView) {
    this.id = view.id;
    this.deadlineAt = view.deadlineAt;
    // fromEntries defines own properties, so a participant named __proto__ is an entry like any other.
    this.branches = Object.freeze(Object.fromEntries(view.branches.map((b) => [b.participant, b])));
  }

  async pg(participant: string, client: PgBranchClient): Promise<PgBranch> {
    return this.claim(participant, (branch) => pgBranch(client, branch));
  }

  async mysql(participant: string, conn: MysqlBranchConnection, options?: MysqlBranchOptions): Promise<MysqlBranch> {
    return this.claim(participant, (branch) => mysqlBranch(conn, branch, options));
  }

  attach<H extends BranchHandle>(participant: string, handle: H): H {
    const branch = this.check(participant);
    if (handle?.branch?.gtrid !== branch.gtrid || handle.branch.bqual !== branch.bqual) {
      throw new TxcError('TXC_BAD_REQUEST', `The handle attached for ${participant} runs another branch than tx.branches.${participant}`, {
        details: { id: this.id, participant },
      });
    }
    this.claims.set(participant, Promise.resolve(handle));
    return handle;
  }

  /** No more attaching; resolves with every handle started, once pending starts have settled. */
  async close(): Promise<Map<string, BranchHandle>> {
    this.closed = true;
    // A start that failed gives up its claim, so read the map again after waiting.
    await Promise.all(this.claims.values());
    const handles = new Map<string, BranchHandle>();
    for (const [participant, claim] of this.claims) {
      const handle = await claim;
      if (handle) handles.set(participant, handle);
    }
    return handles;
  }

  private claim<H extends BranchHandle>(participant: string, start: (branch: WireBranch) => Promise<H>): Promise<H> {
    const branch = this.check(participant);
    const started = start(branch);
    // A failed start (BEGIN / XA START) leaves nothing to prepare; the callback may try again.
    const claim: Promise<BranchHandle | undefined> = started.then(
      (h) => h,
      () => {
        if (this.claims.get(participant) === claim) this.claims.delete(participant);
        return undefined;
      },
    );
    this.claims.set(participant, claim);
    return started;
  }

  private check(participant: string): WireBranch {
    if (this.closed) {
      throw new TxcError('TXC_TRANSACTION_CLOSED', `Transaction ${this.id} is finishing: attach ${participant} inside the runTransaction callback and await it`, {
        details: { id: this.id, participant },
      });
    }
    const branch = Object.hasOwn(this.branches, participant) ? this.branches[participant] : undefined;
    if (!branch) {
      throw new TxcError('TXC_PARTICIPANT_UNKNOWN', `Participant ${participant} is not one of those passed to runTransaction`, {
        details: { id: this.id, participant },
      });
    }
    if (this.claims.has(participant)) {
      throw new TxcError('TXC_BAD_REQUEST', `Participant ${participant} already has a connection attached: a branch runs on exactly one connection`, {
        details: { id: this.id, participant },
      });
    }
    return branch;
  }
}
