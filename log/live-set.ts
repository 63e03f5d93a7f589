import type { LogRecord } from './log-record.js';

/** One live transaction's records with their global sequence numbers, both in append order. */
interface LiveTransaction {
  readonly seqs: number[];
  readonly records: LogRecord[];
}

/**
 * The records of live transactions, in append order. A transaction is live from its first record
 * until its `end` record, which removes all of its records. Shared by every backend so they agree
 * on liveness exactly.
 */
export class LiveSet {
  // One map entry per transaction, not one per record: the coordinator adds and ends thousands of
  // transactions a second, and every insert and delete churns the map's hash table, which V8
  // reallocates as it fills with deleted entries. The global order, which only compaction and
  // live() need, is rebuilt from the sequence numbers on demand.
  private readonly byGtrid = new Map<string, LiveTransaction>();
  private nextSeq = 0;
  private cache: readonly LogRecord[] | undefined;

  /**
   * Applies one record. Returns false when it changed nothing: an `end` for a transaction that is
   * not live, or an exact duplicate of a record the transaction already has. Duplicates are
   * dropped so that replaying a record twice (e.g. a retried append) cannot change the live set.
   */
  apply(record: LogRecord): boolean {
    const txn = this.byGtrid.get(record.gtrid);
    if (record.type === 'end') {
      if (!txn) return false;
      this.byGtrid.delete(record.gtrid);
      this.cache = undefined;
      return true;
    }
    if (txn) {
      const json = JSON.stringify(record);
      if (txn.records.some((r) => JSON.stringify(r) === json)) return false;
      txn.seqs.push(this.nextSeq++);
      txn.records.push(record);
    } else {
      this.byGtrid.set(record.gtrid, { seqs: [this.nextSeq++], records: [record] });
    }
    this.cache = undefined;
    return true;
  }

  /** The live records, oldest first. The array is reused until the set changes: do not mutate it. */
  records(): readonly LogRecord[] {
    return (this.cache ??= Object.freeze(this.inAppendOrder()));
  }

  /** Number of live transactions. */
  get transactions(): number {
    return this.byGtrid.size;
  }

  private inAppendOrder(): LogRecord[] {
    const seqs: number[] = [];
    const records: LogRecord[] = [];
    let sorted = true;
    // Map order is each transaction's first record, so the result is already in order unless a
    // transaction has records interleaved with another's (a commit, another commit, a heuristic).
    for (const txn of this.byGtrid.values()) {
      for (let i = 0; i < txn.seqs.length; i++) {
        const seq = txn.seqs[i]!;
        if (seqs.length > 0 && seq < seqs[seqs.length - 1]!) sorted = false;
        seqs.push(seq);
        records.push(txn.records[i]!);
      }
    }
    if (sorted) return records;
    const order = seqs.map((_, i) => i).sort((a, b) => seqs[a]! - seqs[b]!);
    return order.map((i) => records[i]!);
  }
}
