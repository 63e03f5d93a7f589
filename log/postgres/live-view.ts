import { LiveSet } from '../live-set.js';
import type { LogRecord } from '../log-record.js';

/**
 * What live() shows: the durable live set (records whose batch committed, or loaded from the
 * table) with the records still waiting for or inside a batch laid over it, in append order.
 *
 * Appends show at once, as in the file log, because the coordinator reads live() right after an
 * append resolves, and an unforced append resolves once buffered. A batch that certainly failed
 * is taken out again by rebuilding the overlay on the durable set, so live() never keeps a
 * record the database does not hold once that is known.
 */
export class LiveView {
  private durable = new LiveSet();
  private view = new LiveSet();
  /** Records not yet known durable, by append id, in append order. */
  private readonly pending = new Map<number, LogRecord>();
  private gtridCache: { readonly of: readonly LogRecord[]; readonly set: ReadonlySet<string> } | undefined;

  /** Shows a record just appended (id: its append number). */
  accept(id: number, record: LogRecord): void {
    this.pending.set(id, record);
    this.view.apply(record);
  }

  /** Marks appended records durable (their batch committed), in batch order. */
  commit(ids: Iterable<number>): void {
    for (const id of ids) {
      const r = this.pending.get(id);
      if (!r) continue;
      this.pending.delete(id);
      this.durable.apply(r);
    }
  }

  /** Takes out appended records that certainly were not written. */
  discard(ids: Iterable<number>): void {
    let changed = false;
    for (const id of ids) changed = this.pending.delete(id) || changed;
    if (changed) this.rebuild();
  }

  /** Adds records read from the table (reopen, take-over), oldest first. */
  load(records: Iterable<LogRecord>): void {
    for (const r of records) {
      this.durable.apply(r);
      this.view.apply(r);
    }
  }

  /** Forgets a transaction (another process owns it now): its records leave live(). */
  drop(gtrid: string): void {
    // LiveSet forgets a transaction only through an end record; this one is never written.
    const end: LogRecord = { type: 'end', gtrid, at: 0 };
    this.durable.apply(end);
    this.view.apply(end);
  }

  /** Forgets everything (this process lost its coordinator id). */
  clear(): void {
    this.durable = new LiveSet();
    this.view = new LiveSet();
    this.pending.clear();
  }

  /** The live records, oldest first (reused until the view changes). */
  records(): readonly LogRecord[] {
    return this.view.records();
  }

  /** Whether `gtrid` has live records (appended or durable). */
  has(gtrid: string): boolean {
    return this.gtridsOf(this.view.records()).has(gtrid);
  }

  /** Gtrids live in the durable set alone (what the table is known to hold as live). */
  durableGtrids(): ReadonlySet<string> {
    return new Set(this.durable.records().map((r) => r.gtrid));
  }

  /** Gtrids with records not yet known durable. */
  pendingGtrids(): ReadonlySet<string> {
    return new Set([...this.pending.values()].map((r) => r.gtrid));
  }

  /** Number of live transactions. */
  get transactions(): number {
    return this.view.transactions;
  }

  private gtridsOf(records: readonly LogRecord[]): ReadonlySet<string> {
    if (this.gtridCache?.of !== records) this.gtridCache = { of: records, set: new Set(records.map((r) => r.gtrid)) };
    return this.gtridCache.set;
  }

  private rebuild(): void {
    const view = new LiveSet();
    for (const r of this.durable.records()) view.apply(r);
    for (const r of this.pending.values()) view.apply(r);
    this.view = view;
  }
}
