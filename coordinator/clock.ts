import type { Clock } from './types.js';

/** The real clock. Timers are unref'd so a pending retry never keeps a process alive by itself. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

/** Resolves after `ms` on `clock`, or as soon as `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    let unsubscribe = (): void => undefined;
    const cancel = clock.setTimeout(done, ms);
    function done(): void {
      cancel();
      unsubscribe();
      resolve();
    }
    if (signal) unsubscribe = onAbort(signal, done);
  });
}

/**
 * Sleepers waiting on each signal. The coordinator's own signal is shared by every background
 * retry, and Node's EventTarget scans its whole listener list on each add and remove: with one
 * listener per sleep, thousands of phase-two retries during an outage made every sleep cost
 * O(sleepers). Here each signal gets one listener, and a sleeper joins or leaves a Set.
 */
const sleepers = new WeakMap<AbortSignal, Set<() => void>>();

function onAbort(signal: AbortSignal, wake: () => void): () => void {
  const set = sleepers.get(signal) ?? watch(signal);
  set.add(wake);
  return () => set.delete(wake);
}

/** The sleepers of `signal`, behind its one abort listener. */
function watch(signal: AbortSignal): Set<() => void> {
  const set = new Set<() => void>();
  sleepers.set(signal, set);
  signal.addEventListener(
    'abort',
    () => {
      for (const wake of [...set]) wake();
      set.clear();
    },
    { once: true },
  );
  return set;
}
