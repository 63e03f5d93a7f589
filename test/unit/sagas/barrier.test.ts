import { describe, expect, it } from 'vitest';
import { runAction, runCompensation } from '../../../sagas/barrier.js';
import { FakeDatabase, FakeParticipant } from '../../fakes/fake-participant.js';

const gid = 'txc1.bar.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b';

describe('saga barrier', () => {
  it('a duplicate delivery of an action does nothing', async () => {
    const db = new FakeDatabase();
    const p = new FakeParticipant('c', db, true);
    let runs = 0;
    const act = () => runAction(p, gid, 'debit', async (q) => (runs++, q('set acct', [-5])));
    expect((await act()).kind).toBe('applied');
    expect((await act()).kind).toBe('duplicate');
    expect(runs).toBe(1);
    expect(db.data.get('acct')).toBe(-5);
  });

  it('a compensation that arrives first is a null compensation, and the late action then does nothing (no hanging action)', async () => {
    const db = new FakeDatabase();
    const p = new FakeParticipant('c', db, true);
    let undone = 0;
    expect(await runCompensation(p, gid, 'debit', async () => void undone++)).toBe('null');
    expect(undone).toBe(0);
    const late = await runAction(p, gid, 'debit', async (q) => q('set acct', [-5]));
    expect(late.kind).toBe('hanging');
    expect(db.data.has('acct')).toBe(false);
  });

  it('a compensation runs once after its action, and a repeat does nothing', async () => {
    const db = new FakeDatabase();
    const p = new FakeParticipant('c', db, true);
    await runAction(p, gid, 'debit', async (q) => q('set acct', [-5]));
    let undone = 0;
    const comp = () => runCompensation(p, gid, 'debit', async (q) => void (undone++, await q('set acct', [0])));
    expect(await comp()).toBe('applied');
    expect(await comp()).toBe('duplicate');
    expect(undone).toBe(1);
    expect(db.data.get('acct')).toBe(0);
  });

  it('an action that fails leaves no barrier row behind (it can run again)', async () => {
    const db = new FakeDatabase();
    const p = new FakeParticipant('c', db, true);
    await expect(runAction(p, gid, 'debit', async (q) => q('fail'))).rejects.toMatchObject({ code: 'TXC_QUERY_FAILED' });
    expect(db.barrier.size).toBe(0);
    expect((await runAction(p, gid, 'debit', async (q) => q('set acct', [-5]))).kind).toBe('applied');
  });
});
