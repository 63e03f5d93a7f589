import type { LogRecord } from './log-record.js';

/**
 * The records of live transactions, in append order. A transaction is live from its first record
 * until its `end` record, which removes all of its records. Shared by every backend so they agree
 * on liveness exactly.
 */
export class LiveSet {
  // Keyed by an increasing sequence number: a Map iterates in insertion order, so this is the
  // global append order, and deleting an ended transaction's records is O(its records).
  private readonly ordered = new Map<number, LogRecord>();
  private readonly byGtrid = new Map<string, number[]>();
  private nextSeq = 0;
  private cache: readonly LogRecord[] | undefined;

  /**
   * Applies one record. Returns false when it changed nothing: an `end` for a transaction that is
   * not live, or an exact duplicate of a record the transaction already has. Duplicates are
   * dropped so that replaying a record twice (e.g. a retried append) cannot change the live set.
   */
  apply(record: LogRecord): boolean {
    const seqs = this.byGtrid.get(record.gtrid);
    if (record.type === 'end') {
      if (!seqs) return false;
      for (const s of seqs) this.ordered.delete(s);
      this.byGtrid.delete(record.gtrid);
      this.cache = undefined;
      return true;
    }
    if (seqs) {
      const json = JSON.stringify(record);
      if (seqs.some((s) => JSON.stringify(this.ordered.get(s)) === json)) return false;
    }
    const seq = this.nextSeq++;
    this.ordered.set(seq, record);
    if (seqs) seqs.push(seq);
    else this.byGtrid.set(record.gtrid, [seq]);
    this.cache = undefined;
    return true;
  }

  /** The live records, oldest first. The array is reused until the set changes: do not mutate it. */
  records(): readonly LogRecord[] {
    return (this.cache ??= Object.freeze([...this.ordered.values()]));
  }

  /** Number of live transactions. */
  get transactions(): number {
    return this.byGtrid.size;
  }
}
