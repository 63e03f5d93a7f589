/**
 * Runs async jobs one at a time, in call order. A branch's statements share one connection,
 * which answers one request at a time, and a later call (prepare, commit) must come after the
 * statements issued before it. A failed job does not stop the ones queued behind it.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` once every job queued before it has settled. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Lets later jobs start at once. For a branch whose connection was let go: a rollback by xid
   * from a fresh connection must not wait on a statement that will never answer.
   */
  reset(): void {
    this.tail = Promise.resolve();
  }
}
