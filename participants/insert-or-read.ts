import { TxcError } from '../coordinator/errors.js';

/** What {@link insertOrRead} does on one database. */
export interface InsertOrReadSteps<T extends string> {
  /** The participant, for messages. */
  readonly participant: string;
  /** The row, for messages: "marker txc1.…", "barrier txc1.…/charge/action". */
  readonly row: string;
  /** The column read back, for messages. */
  readonly column: string;
  /** Inserts the row unless its key exists (waiting for an uncommitted one); true if it inserted. */
  tryInsert(): Promise<boolean>;
  /** Reads the existing row's column; undefined or null when there is no row. */
  readExisting(): Promise<unknown>;
  /** Whether a value read back is one the row may hold. */
  accept(value: unknown): value is T;
}

/**
 * The insert-or-read of a bookkeeping row (commit marker, saga barrier) inside a branch. The
 * read runs as a statement of its own, after the insert's wait, so that it sees the row the
 * waited-for transaction committed. The row can vanish between the two (garbage collection),
 * hence a second try; after that the caller gets a retryable error.
 */
export async function insertOrRead<T extends string>(steps: InsertOrReadSteps<T>): Promise<'inserted' | T> {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await steps.tryInsert()) return 'inserted';
    const found = await steps.readExisting();
    if (steps.accept(found)) return found;
    if (found !== undefined && found !== null) {
      throw new TxcError('TXC_QUERY_FAILED', `The ${steps.row} on ${steps.participant} holds the unexpected ${steps.column} ${JSON.stringify(found)}`, {
        details: { participant: steps.participant },
      });
    }
  }
  // Deleted twice in a row, or invisible to a snapshot older than its commit.
  throw new TxcError('TXC_QUERY_FAILED', `The ${steps.row} on ${steps.participant} exists but could not be read back; try again`, {
    retryable: true,
    details: { participant: steps.participant },
  });
}
