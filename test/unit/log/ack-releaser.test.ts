import { describe, expect, it } from 'vitest';
import { AckReleaser } from '../../../log/file/ack-releaser.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('AckReleaser', () => {
  it('calls nothing synchronously, then everyone oldest first, across releases', async () => {
    const acks = new AckReleaser(4);
    const seen: number[] = [];
    acks.release([0, 1, 2].map((i) => () => seen.push(i)));
    acks.release([3, 4].map((i) => () => seen.push(i)));
    expect(seen).toEqual([]);
    expect(acks.pending).toBe(5);
    while (acks.pending > 0) await turn();
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  it('releases at most one slice per turn of the event loop, so I/O callbacks run in between', async () => {
    const acks = new AckReleaser(64);
    let called = 0;
    acks.release(Array.from({ length: 150 }, () => () => called++));
    const perTurn: number[] = [];
    while (acks.pending > 0) {
      await turn();
      perTurn.push(called);
    }
    expect(perTurn).toEqual([64, 128, 150]);
  });

  it('releases a batch no larger than a slice in a single turn', async () => {
    const acks = new AckReleaser(64);
    let called = 0;
    acks.release(Array.from({ length: 64 }, () => () => called++));
    await turn();
    expect(called).toBe(64);
    expect(acks.pending).toBe(0);
  });

  it('rejects a slice size that is not a positive integer', () => {
    expect(() => new AckReleaser(0)).toThrow(RangeError);
    expect(() => new AckReleaser(1.5)).toThrow(RangeError);
  });
});

describe('AckReleaser under steady load', () => {
  it('keeps releasing in order when new waiters arrive before the queue runs empty', async () => {
    const acks = new AckReleaser(8);
    const seen: number[] = [];
    let next = 0;
    const add = (n: number): void => acks.release(Array.from({ length: n }, () => { const i = next++; return () => seen.push(i); }));
    add(20);
    for (let t = 0; t < 400; t++) {
      add(7); // fewer than a slice per turn, so the queue never empties
      await turn();
    }
    while (acks.pending > 0) await turn();
    expect(seen).toEqual(Array.from({ length: next }, (_, i) => i));
  });
});

describe('AckReleaser.drained', () => {
  it('resolves at once when nothing is queued, else only after the last waiter was called', async () => {
    const acks = new AckReleaser(4);
    await acks.drained();
    let called = 0;
    acks.release(Array.from({ length: 10 }, () => () => called++));
    await acks.drained();
    expect(called).toBe(10);
  });
});
