import { afterEach, describe, expect, it, vi } from 'vitest';
import { timedPool } from '../../../participants/mysql/driver.js';

type Callback = (err: Error | null, result?: unknown, fields?: unknown) => void;

/** A callback-API connection whose statements answer only when the test says so. */
function fakeConnection() {
  const pending: Array<{ sql: string; values: unknown[]; cb: Callback }> = [];
  const conn = {
    query: vi.fn((sql: string, values: unknown[], cb: Callback) => void pending.push({ sql, values, cb })),
    on: vi.fn(),
    removeListener: vi.fn(),
    release: vi.fn(),
    destroy: vi.fn(),
  };
  return { conn, pending };
}

function poolOf(conn: ReturnType<typeof fakeConnection>['conn'], timeoutMs = 1_000) {
  return timedPool(
    {
      getConnection: (cb) => cb(null, conn),
      end: (cb) => cb(null),
    },
    timeoutMs,
  );
}

afterEach(() => {
  vi.useRealTimers();
});

describe('timedPool (mysql2 callback API with a deadline per statement)', () => {
  it('sends the statement as a plain string with its values and answers [result, fields]', async () => {
    const { conn, pending } = fakeConnection();
    const c = await poolOf(conn).getConnection();
    const answer = c.query('update t set a = ? where id = ?', [1, 2]);
    expect(pending[0]).toMatchObject({ sql: 'update t set a = ? where id = ?', values: [1, 2] });
    pending[0]!.cb(null, { affectedRows: 1 }, undefined);
    await expect(answer).resolves.toEqual([{ affectedRows: 1 }, undefined]);
  });

  it('fails a statement with no answer in time with a fatal PROTOCOL_SEQUENCE_TIMEOUT, and ignores the late answer', async () => {
    vi.useFakeTimers();
    const { conn, pending } = fakeConnection();
    const c = await poolOf(conn, 300).getConnection();
    const answer = c.query('select sleep(10)');
    const outcome = answer.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(299);
    expect(await Promise.race([outcome, Promise.resolve('pending')])).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toMatchObject({ code: 'PROTOCOL_SEQUENCE_TIMEOUT', fatal: true });
    pending[0]!.cb(null, [{ x: 1 }], []);
    await expect(answer).rejects.toMatchObject({ code: 'PROTOCOL_SEQUENCE_TIMEOUT' });
  });

  it('passes a driver error through and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const { conn, pending } = fakeConnection();
    const c = await poolOf(conn).getConnection();
    const answer = c.query('select 1');
    const err = Object.assign(new Error('Duplicate entry'), { errno: 1062 });
    pending[0]!.cb(err);
    await expect(answer).rejects.toBe(err);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects a statement mysql2 refuses synchronously, clearing its timer', async () => {
    vi.useFakeTimers();
    const { conn } = fakeConnection();
    conn.query.mockImplementation(() => {
      throw new Error("Can't add new command when connection is in closed state");
    });
    const c = await poolOf(conn).getConnection();
    await expect(c.query('select 1')).rejects.toThrow(/closed state/);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects getConnection with the pool error', async () => {
    const err = new Error('connect ECONNREFUSED');
    const pool = timedPool({ getConnection: (cb) => cb(err, undefined as never), end: (cb) => cb(null) }, 1_000);
    await expect(pool.getConnection()).rejects.toBe(err);
    await expect(pool.end()).resolves.toBeUndefined();
  });
});
