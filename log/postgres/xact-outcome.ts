import type { LogPool } from './log-pool.js';

/** What PostgreSQL says became of a transaction whose COMMIT answer was lost. */
export type XactOutcome = 'committed' | 'aborted' | 'unknown';

/** Timings of {@link xactOutcome}. */
export interface XactOutcomeOptions {
  /** Give up (answer 'unknown') after this long. */
  readonly budgetMs: number;
  /** Pause between attempts. */
  readonly pollMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * Asks the server, on another connection, whether transaction `txid` committed. This is what
 * `pg_xact_status` exists for: after a COMMIT whose answer was lost, the commit log still knows.
 * 'in progress' (the backend has not finished, or not yet noticed its client is gone) and
 * unreachable servers are retried until the budget runs out.
 */
export async function xactOutcome(pool: LogPool, txid: string, opts: XactOutcomeOptions): Promise<XactOutcome> {
  const deadline = Date.now() + opts.budgetMs;
  const pollMs = opts.pollMs ?? 50;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return 'unknown';
    try {
      const answer = pool.query<{ status: string | null }>('select pg_xact_status($1::xid8) as status', [txid]);
      // A hung connect must not hold the caller past the budget; the query may finish later unheard.
      answer.catch(() => undefined);
      const timeout = sleep(remaining).then(() => undefined);
      const res = await Promise.race([answer, timeout]);
      if (res === undefined) return 'unknown';
      const status = res.rows[0]?.status;
      if (status === 'committed') return 'committed';
      if (status === 'aborted') return 'aborted';
      // null: too old to tell (cannot happen for the xid of the batch just sent, but never guess).
      if (status !== 'in progress') return 'unknown';
    } catch {
      // Unreachable (restarting server): try again within the budget.
    }
    await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())));
  }
}
