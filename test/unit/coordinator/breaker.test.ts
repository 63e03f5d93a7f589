import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { mixedWorld } from './mixed-world.js';

const unavailable = () => new TxcError('TXC_PARTICIPANT_UNAVAILABLE', 'injected: connection refused', { retryable: true });

describe('circuit breakers', () => {
  it('opens on a dead participant, fails new work fast without touching it, and closes when it returns', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator({ only: ['a', 'b'] });
    // Five failures in the window (the default volume threshold), all of them: it opens.
    for (let i = 0; i < 5; i++) w.db.b.failNext('begin', unavailable());
    for (let i = 0; i < 5; i++) {
      await expect(coord.transaction(async (tx) => tx.query('b', 'set y', [i]))).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNAVAILABLE' });
    }
    expect(coord.stats().breakers['b']).toMatchObject({ state: 'open', opened: 1 });
    const begins = w.db.b.calls.filter((c) => c === 'begin').length;
    const err = await coord.transaction(async (tx) => tx.query('b', 'set y', [9])).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_PARTICIPANT_UNAVAILABLE') && err.details['breaker']).toBe('open');
    expect(w.db.b.calls.filter((c) => c === 'begin').length).toBe(begins);
    // Other participants are not affected.
    await coord.transaction(async (tx) => tx.query('a', 'set x', [1]));

    await new Promise((r) => setTimeout(r, 40)); // resetTimeoutMs is 20 in this world
    await coord.transaction(async (tx) => tx.query('b', 'set y', [10]));
    expect(coord.stats().breakers['b']?.state).toBe('closed');
    expect(w.db.b.data.get('y')).toBe(10);
    await coord.close();
  });

  it('business failures do not open it', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator({ only: ['a', 'b'] });
    for (let i = 0; i < 8; i++) {
      await expect(coord.transaction(async (tx) => void (await tx.query('b', 'fail')))).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED' });
    }
    expect(coord.stats().breakers['b']?.state).toBe('closed');
    await coord.close();
  });

  it('an open breaker delays phase two but never drops it', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator({ only: ['a', 'b'], phaseTwoTimeoutMs: 5 } as never);
    for (let i = 0; i < 12; i++) w.db.b.failNext('commitPrepared', unavailable());
    for (let i = 0; i < 12; i++) w.db.b.failNext('resolveCommit', unavailable());
    const r = await coord.transaction(async (tx) => {
      await tx.query('a', 'set x', [1]);
      await tx.query('b', 'set y', [2]);
    });
    expect(r.phaseTwoPending).toBe(true);
    await coord.close({ timeoutMs: 5_000 });
    expect(w.db.b.data.get('y')).toBe(2);
    expect(w.db.b.prepared.size).toBe(0);
  });
});
