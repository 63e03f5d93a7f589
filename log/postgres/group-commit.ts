/** One append waiting in a {@link GroupCommit}. */
export interface QueuedItem<T> {
  readonly item: T;
  readonly force: boolean;
}

/**
 * What a batch write reports: the items refused one by one (the rest are durable). A batch
 * that failed as a whole throws instead, and every item in it fails with that error.
 */
export type BatchOutcome<T> = ReadonlyMap<T, Error>;

/** Options of {@link GroupCommit}. */
export interface GroupCommitOptions<T> {
  /** Writes one batch in one database transaction. */
  readonly write: (batch: readonly QueuedItem<T>[]) => Promise<BatchOutcome<T>>;
  /** Longest an unforced item waits for a forced one to carry it. */
  readonly flushDelayMs: number;
  /** Items per batch at most (one statement's worth). */
  readonly maxBatch: number;
  /** Told about an unforced item that failed: its caller was answered long ago. */
  readonly onUnforcedFailure: (item: T, err: Error) => void;
}

interface Waiting<T> extends QueuedItem<T> {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Group commit: while one batch is being written, appends queue; the next batch takes the whole
 * queue, so many forced appends share one commit (one WAL flush). Unforced items resolve at once
 * and ride with the next batch, or are written on their own after `flushDelayMs`. One batch is
 * in flight at a time, so batches commit in append order.
 */
export class GroupCommit<T> {
  private queue: Waiting<T>[] = [];
  private forcedQueued = 0;
  private writing = false;
  private scheduled = false;
  private flushRequested = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];
  /** Unforced failures since the last flush() began, reported by it. */
  private unforcedFailures: Error[] = [];
  private counters = { batches: 0, items: 0, failedBatches: 0 };

  constructor(private readonly opts: GroupCommitOptions<T>) {}

  /** Queues `item`; forced: resolves once its batch committed; unforced: resolves now. */
  submit(item: T, force: boolean): Promise<void> {
    if (!force) {
      this.queue.push({ item, force, resolve: () => undefined, reject: () => undefined });
      this.armTimer();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, force, resolve, reject });
      this.forcedQueued++;
      this.kick();
    });
  }

  /**
   * Writes everything queued now and waits until the writer is idle; rejects with the first
   * failure of an unforced item meanwhile (those callers were never told).
   */
  async flush(): Promise<void> {
    this.unforcedFailures = [];
    this.flushRequested = true;
    this.kick();
    await this.whenIdle();
    const failure = this.unforcedFailures[0];
    if (failure) throw failure;
  }

  /** Fails every queued item with `err` (not the batch in flight) and returns them. */
  failQueued(err: Error): T[] {
    const dropped = this.queue.splice(0);
    this.forcedQueued = 0;
    for (const w of dropped) this.fail(w, err);
    return dropped.map((w) => w.item);
  }

  /** Stops the flush timer (the queue is expected to be empty: flush first). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Batches written, items written, batches that failed as a whole. */
  stats(): { readonly batches: number; readonly items: number; readonly failedBatches: number; readonly queued: number } {
    return { ...this.counters, queued: this.queue.length };
  }

  private armTimer(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushRequested = true;
      this.kick();
    }, this.opts.flushDelayMs);
    this.timer.unref();
  }

  private kick(): void {
    if (this.writing || this.scheduled) return;
    this.scheduled = true;
    // A microtask later, so that appends issued in the same tick join the first batch.
    queueMicrotask(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.queue.length > 0 && (this.forcedQueued > 0 || this.flushRequested)) {
        const batch = this.queue.splice(0, this.opts.maxBatch);
        for (const w of batch) if (w.force) this.forcedQueued--;
        if (this.queue.length === 0) this.flushRequested = false;
        await this.writeBatch(batch);
      }
      this.flushRequested = false;
      if (this.queue.length > 0) this.armTimer();
      else this.stop();
    } finally {
      this.writing = false;
    }
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async writeBatch(batch: Waiting<T>[]): Promise<void> {
    let refused: BatchOutcome<T>;
    try {
      refused = await this.opts.write(batch);
    } catch (err) {
      this.counters.failedBatches++;
      const e = err instanceof Error ? err : new Error(String(err));
      for (const w of batch) this.fail(w, e);
      return;
    }
    this.counters.batches++;
    this.counters.items += batch.length - refused.size;
    for (const w of batch) {
      const err = refused.get(w.item);
      if (err) this.fail(w, err);
      else w.resolve();
    }
  }

  private fail(w: Waiting<T>, err: Error): void {
    if (w.force) w.reject(err);
    else {
      this.unforcedFailures.push(err);
      this.opts.onUnforcedFailure(w.item, err);
    }
  }

  private whenIdle(): Promise<void> {
    if (!this.writing && !this.scheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
