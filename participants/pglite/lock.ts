/**
 * PGlite has exactly one connection, so this FIFO lock plays the part a pool plays for the
 * server databases: one holder at a time, waiters served in arrival order, each with a deadline.
 */

/** The right to use the connection; `release` hands it to the next waiter and is idempotent. */
export interface Lease {
  release(): void;
}

interface Waiter {
  grant(): void;
}

/** A FIFO mutex whose waits can time out. */
export class ConnectionLock {
  #held = false;
  readonly #queue: Waiter[] = [];

  /** Number of callers waiting (not counting the holder). */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Whether someone holds the lock. */
  get held(): boolean {
    return this.#held;
  }

  /** Resolves with a lease, or with undefined when none came within `timeoutMs`. */
  acquire(timeoutMs: number): Promise<Lease | undefined> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve(this.#lease());
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve(this.#lease());
        },
      };
      const timer = setTimeout(() => {
        const at = this.#queue.indexOf(waiter);
        if (at >= 0) this.#queue.splice(at, 1);
        resolve(undefined);
      }, timeoutMs);
      this.#queue.push(waiter);
    });
  }

  #lease(): Lease {
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const next = this.#queue.shift();
        // Ownership passes straight to the next waiter, so no newcomer can slip in between.
        if (next) next.grant();
        else this.#held = false;
      },
    };
  }
}
