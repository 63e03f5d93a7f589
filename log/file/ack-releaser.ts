/** Released waiters kept at the head of the queue before it is compacted. */
const COMPACT_AFTER = 1024;

/**
 * Releases the appenders of durable batches a slice per macrotask, oldest first.
 *
 * Why: when one fdatasync makes hundreds of forced records durable at once, resolving them all
 * in one go runs every waiter's continuation in a single microtask checkpoint. The writer cannot
 * start the next batch's write and fdatasync until that checkpoint ends, so the disk idles while
 * the thread works, then the thread idles while the disk works. Handing the waiters back in
 * slices, each in its own turn of the event loop, lets the writer put the records of the first
 * slices on their way to disk while the later slices still run: I/O and CPU overlap.
 *
 * A slice is large enough that ordinary concurrency (a few dozen waiters) is released in one
 * turn, exactly as before. Order is FIFO across batches, so an append is never acknowledged
 * before one that became durable earlier.
 */
export class AckReleaser {
  private ready: Array<() => void> = [];
  private head = 0;
  private scheduled = false;
  private onDrained: Array<() => void> = [];

  /** @param slice waiters released per turn of the event loop; at least 1. */
  constructor(private readonly slice: number) {
    if (!Number.isSafeInteger(slice) || slice < 1) throw new RangeError(`slice must be a positive integer, not ${String(slice)}`);
  }

  /**
   * Queues `waiters` (already durable) for release. Nothing is called synchronously: the first
   * slice runs in the next check phase, after the caller has started its next batch.
   */
  release(waiters: ReadonlyArray<() => void>): void {
    if (waiters.length === 0) return;
    for (const w of waiters) this.ready.push(w);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drain);
    }
  }

  /** Waiters queued and not yet called. */
  get pending(): number {
    return this.ready.length - this.head;
  }

  /** Resolves once every waiter queued so far (and any queued meanwhile) has been called. */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.onDrained.push(resolve));
  }

  private readonly drain = (): void => {
    const end = Math.min(this.ready.length, this.head + this.slice);
    // Waiters are promise resolvers, which never throw.
    while (this.head < end) this.ready[this.head++]!();
    if (this.head >= this.ready.length) {
      this.ready = [];
      this.head = 0;
      this.scheduled = false;
      for (const done of this.onDrained.splice(0)) done();
      return;
    }
    // Under steady load the queue may never run empty; drop the released prefix now and then so
    // it does not grow with everything ever acknowledged.
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.ready.length) {
      this.ready = this.ready.slice(this.head);
      this.head = 0;
    }
    setImmediate(this.drain);
  };
}
