/**
 * Runs async operations one at a time, in call order. A branch helper's state checks must see
 * the outcome of everything called before (a prepare() issued while a query is in flight must
 * run after it, and a query() issued after prepare() must see it prepared).
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` after every operation queued before it has settled. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
