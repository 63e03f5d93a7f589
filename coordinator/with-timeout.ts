import type { Clock } from './types.js';

/** `p`, or `onTimeout()` as the rejection once `ms` passed on `clock` (p keeps running). */
export function withTimeout<T>(clock: Clock, p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = clock.setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => (cancel(), resolve(v)),
      (e: unknown) => (cancel(), reject(e)),
    );
  });
}

/** Like Promise.all, but rejects only after every promise settled (nothing left running on abort). */
export async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
