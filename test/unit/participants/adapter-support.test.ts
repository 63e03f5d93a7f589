import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { insertOrRead } from '../../../participants/insert-or-read.js';
import { onceUntilFailure } from '../../../participants/once-until-failure.js';
import { PooledSessions } from '../../../participants/pooled-sessions.js';
import { SerialQueue } from '../../../participants/serial-queue.js';

const isOutcome = (v: unknown): v is 'commit' | 'abort' => v === 'commit' || v === 'abort';

describe('SerialQueue', () => {
  it('runs jobs one at a time in call order, and a failure does not stop the next', async () => {
    const q = new SerialQueue();
    const seen: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const a = q.run(async () => (await gate, seen.push('a')));
    const b = q.run(async () => {
      seen.push('b');
      throw new Error('b failed');
    });
    const c = q.run(async () => seen.push('c'));
    await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual([]);
    release();
    await a;
    await expect(b).rejects.toThrow('b failed');
    await c;
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('reset lets a later job start without waiting for one that never answers', async () => {
    const q = new SerialQueue();
    void q.run(() => new Promise(() => undefined));
    q.reset();
    expect(await q.run(async () => 'ran')).toBe('ran');
  });
});

describe('insertOrRead', () => {
  const base = { participant: 'erp', row: 'marker g1', column: 'outcome', accept: isOutcome };

  it('inserted, or the existing row read back', async () => {
    expect(await insertOrRead({ ...base, tryInsert: async () => true, readExisting: async () => 'commit' })).toBe('inserted');
    expect(await insertOrRead({ ...base, tryInsert: async () => false, readExisting: async () => 'abort' })).toBe('abort');
  });

  it('a row deleted between insert and read is tried again, then reported as retryable', async () => {
    const reads = ['gone', 'abort'];
    let inserts = 0;
    const second = await insertOrRead({
      ...base,
      tryInsert: async () => (inserts++, false),
      readExisting: async () => (reads.shift() === 'gone' ? undefined : 'abort'),
    });
    expect(second).toBe('abort');
    expect(inserts).toBe(2);
    await expect(insertOrRead({ ...base, tryInsert: async () => false, readExisting: async () => null })).rejects.toSatisfy(
      (e: unknown) => TxcError.is(e, 'TXC_QUERY_FAILED') && e.retryable && /marker g1 on erp/.test(e.message),
    );
  });

  it('a value the row may not hold is an error, not an outcome', async () => {
    await expect(insertOrRead({ ...base, tryInsert: async () => false, readExisting: async () => 'maybe' })).rejects.toSatisfy(
      (e: unknown) => TxcError.is(e, 'TXC_QUERY_FAILED') && !e.retryable && /unexpected outcome "maybe"/.test(e.message),
    );
  });
});

describe('onceUntilFailure', () => {
  it('shares one run among callers, and tries again after a failure only', async () => {
    let runs = 0;
    let fail = true;
    const ensure = onceUntilFailure(async () => {
      runs++;
      if (fail) throw new Error('database down');
    });
    await expect(Promise.all([ensure(), ensure()])).rejects.toThrow('database down');
    expect(runs).toBe(1);
    fail = false;
    await Promise.all([ensure(), ensure()]);
    await ensure();
    expect(runs).toBe(2);
  });
});

describe('PooledSessions', () => {
  interface Session {
    readonly id: number;
  }
  interface Class {
    readonly retryable: boolean;
    readonly connection: boolean;
    readonly code?: string;
  }
  const classify = (err: unknown): Class => ({ retryable: true, connection: (err as { code?: string }).code === 'ECONNRESET', code: (err as { code?: string }).code });

  function sessions(connect: () => Promise<Session> = async () => ({ id: 1 })) {
    const given: { id: number; discard: boolean }[] = [];
    const pool = new PooledSessions<Session, Class>({
      participant: 'crm',
      acquireTimeoutMs: 50,
      connect,
      giveBack: (s, discard) => given.push({ id: s.id, discard }),
      classify,
      discards: (c) => c.connection,
      fields: (c) => ({ code: c.code }),
      refine: (operation, err, c) => (operation === 'scan' && c.code === 'EACCES' ? new TxcError('TXC_XA_RECOVER_DENIED', 'denied', { cause: err }) : undefined),
    });
    return { pool, given };
  }

  it('gives the session back after use; a broken one is discarded, and the failure names the operation', async () => {
    const { pool, given } = sessions();
    expect(await pool.use('ping', async () => 'pong')).toBe('pong');
    await expect(pool.use('list in-doubt', async () => Promise.reject(Object.assign(new Error('reset'), { code: 'ECONNRESET' })))).rejects.toSatisfy(
      (e: unknown) => TxcError.is(e, 'TXC_PARTICIPANT_UNAVAILABLE') && /^Participant crm: list in-doubt failed/.test(e.message) && e.details['code'] === 'ECONNRESET',
    );
    expect(given).toEqual([
      { id: 1, discard: false },
      { id: 1, discard: true },
    ]);
  });

  it("passes the caller's own TxcError through, and uses the refined error where there is one", async () => {
    const { pool } = sessions();
    const own = new TxcError('TXC_QUERY_FAILED', 'mine');
    await expect(pool.use('x', async () => Promise.reject(own))).rejects.toBe(own);
    await expect(pool.use('scan', async () => Promise.reject(Object.assign(new Error('no'), { code: 'EACCES' })))).rejects.toSatisfy((e: unknown) =>
      TxcError.is(e, 'TXC_XA_RECOVER_DENIED'),
    );
  });

  it('a checkout past the deadline is TXC_POOL_TIMEOUT, and a closed pool refuses at once', async () => {
    const { pool } = sessions(() => new Promise(() => undefined));
    await expect(pool.acquire()).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_POOL_TIMEOUT'));
    pool.close();
    await expect(pool.use('ping', async () => 1)).rejects.toSatisfy((e: unknown) => TxcError.is(e, 'TXC_PARTICIPANT_UNAVAILABLE') && /closed/.test(e.message));
  });
});
