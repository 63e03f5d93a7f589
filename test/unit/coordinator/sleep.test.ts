import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../../coordinator/clock.js';
import { ManualClock } from '../../fakes/manual-clock.js';

describe('sleep', () => {
  it('resolves when its time is up, and leaves no timer behind when the signal aborts first', async () => {
    const clock = new ManualClock();
    const abort = new AbortController();
    let early = false;
    const a = sleep(clock, 100).then(() => (early = true));
    const b = sleep(clock, 1_000, abort.signal);
    clock.advance(100);
    await a;
    expect(early).toBe(true);
    abort.abort();
    await b;
    expect(clock.pending).toBe(0);
  });

  it('resolves at once on an aborted signal', async () => {
    const abort = new AbortController();
    abort.abort();
    const clock = new ManualClock();
    await sleep(clock, 1_000, abort.signal);
    expect(clock.pending).toBe(0);
  });

  it('keeps one abort listener on a signal however many retries sleep on it, and wakes them all', async () => {
    const clock = new ManualClock();
    const abort = new AbortController();
    const sleeping = Array.from({ length: 5_000 }, (_, i) => sleep(clock, 10 + (i % 50), abort.signal));
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(1);
    clock.advance(30); // some wake by their timer, and leave
    abort.abort();
    await Promise.all(sleeping);
    expect(clock.pending).toBe(0);
    // A later sleep on the same (aborted) signal resolves at once.
    await sleep(clock, 1_000, abort.signal);
  });

  it('forgets a sleeper that woke by its timer, so a long-lived signal does not accumulate them', async () => {
    const clock = new ManualClock();
    const abort = new AbortController();
    for (let round = 0; round < 3; round++) {
      const batch = Array.from({ length: 1_000 }, () => sleep(clock, 5, abort.signal));
      clock.advance(5);
      await Promise.all(batch);
    }
    expect(getEventListeners(abort.signal, 'abort').length).toBeLessThanOrEqual(1);
    let woken = 0;
    const last = sleep(clock, 1_000, abort.signal).then(() => woken++);
    abort.abort();
    await last;
    expect(woken).toBe(1);
  });
});
