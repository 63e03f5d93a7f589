import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { TXC_FORMAT_ID, type Xid } from '../../../coordinator/xid.js';
import { FakeParticipant } from '../../fakes/fake-participant.js';
import { mixedWorld, type MixedWorld } from './mixed-world.js';

/** What the application does on its own connection with the xid it was given. */
async function clientBranch(w: MixedWorld, db: 'a' | 'b', b: { gtrid: string; bqual: string }, key: string, value: number): Promise<void> {
  const xid: Xid = { formatId: TXC_FORMAT_ID, gtrid: b.gtrid, bqual: b.bqual };
  const branch = await new FakeParticipant(db, w.db[db]).begin(xid);
  await branch.query(`set ${key}`, [value]);
  await branch.prepare();
  branch.release();
}

describe('client-driven two-phase commit', () => {
  it('hands out an xid per participant, and commits branches the client prepared on its own connections', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const t = await coord.external.begin({ participants: ['a'] });
    const bb = await coord.external.addBranch(t.id, 'b');
    expect(t.branches[0]).toMatchObject({ participant: 'a', gtrid: t.id, bqual: 'b0' });
    expect(bb).toMatchObject({ participant: 'b', bqual: 'b1' });
    await clientBranch(w, 'a', t.branches[0]!, 'x', 1);
    await clientBranch(w, 'b', bb, 'y', 2);
    // Recovery leaves an undecided client transaction alone.
    expect((await coord.recover()).rolledBack).toBe(0);
    expect(await coord.external.commit(t.id)).toEqual({ id: t.id, outcome: 'committed', phaseTwoPending: false });
    expect([w.db.a.data.get('x'), w.db.b.data.get('y')]).toEqual([1, 2]);
    expect(coord.external.get(t.id)?.state).toBe('committed');
    expect(coord.stats().committed['2pc']).toBe(1);
    // A repeated commit answers the same.
    expect((await coord.external.commit(t.id)).outcome).toBe('committed');
    await coord.close();
  });

  it('a branch that was not prepared aborts everything', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const t = await coord.external.begin({ participants: ['a', 'b'] });
    await clientBranch(w, 'a', t.branches[0]!, 'x', 1);
    const err = await coord.external.commit(t.id).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_PREPARE_FAILED')).toBe(true);
    expect(w.db.a.prepared.size).toBe(0);
    expect(w.db.a.data.has('x')).toBe(false);
    expect(coord.external.get(t.id)?.state).toBe('aborted');
    await expect(coord.external.addBranch(t.id, 'b')).rejects.toMatchObject({ code: 'TXC_TRANSACTION_CLOSED' });
    await coord.close();
  });

  it('past its deadline an undecided transaction is aborted, and a branch prepared later is left to recovery', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const t = await coord.external.begin({ participants: ['a'], timeoutMs: 20 });
    await new Promise((r) => setTimeout(r, 50));
    expect(coord.external.get(t.id)).toMatchObject({ state: 'aborted', reason: 'deadline passed before commit' });
    await clientBranch(w, 'a', t.branches[0]!, 'x', 1);
    await expect(coord.external.commit(t.id)).rejects.toMatchObject({ code: 'TXC_TRANSACTION_CLOSED' });
    expect((await coord.recover()).rolledBack).toBe(1);
    expect(w.db.a.data.has('x')).toBe(false);
    await coord.close();
  });

  it('refuses participants that cannot prepare and unknown ones', async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    await expect(coord.external.begin({ participants: ['c'] })).rejects.toMatchObject({ code: 'TXC_TWO_PHASE_UNSUPPORTED' });
    await expect(coord.external.begin({ participants: ['zz'] })).rejects.toMatchObject({ code: 'TXC_PARTICIPANT_UNKNOWN' });
    await expect(coord.external.commit('txc1.mixed.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b')).rejects.toMatchObject({ code: 'TXC_NOT_FOUND' });
    await coord.close();
  });

  it("another instance's transaction is refused naming its owner, not as unknown", async () => {
    const w = mixedWorld();
    const coord = await w.coordinator();
    const elsewhere = 'txc1.svc-2.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b';
    for (const call of [() => coord.external.commit(elsewhere), () => coord.external.abort(elsewhere)]) {
      await expect(call()).rejects.toMatchObject({ code: 'TXC_WRONG_INSTANCE', details: { coordinatorId: 'svc-2' } });
    }
    expect(() => coord.external.get(elsewhere)).toThrow(expect.objectContaining({ code: 'TXC_WRONG_INSTANCE' }));
    expect(coord.external.get('txc1.mixed.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b')).toBeUndefined();
    await coord.close();
  });
});

describe('resolving in-doubt branches by hand', () => {
  async function prepared(w: MixedWorld, commitRecord: boolean): Promise<string> {
    const crashed = await w.coordinator({ crashAt: { point: commitRecord ? 'after-decision' : 'after-prepare', participant: commitRecord ? undefined : 'b' } as never, only: ['a', 'b'] });
    void crashed.transaction(async (tx) => {
      await tx.query('a', 'set x', [1]);
      await tx.query('b', 'set y', [2]);
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    const [p] = [...w.db.a.prepared.values()];
    return `${p!.xid.gtrid}.${p!.xid.bqual}`;
  }

  it('refuses an outcome that contradicts the log unless forced, and records a forced one as heuristic', async () => {
    const w = mixedWorld();
    const xid = await prepared(w, true);
    const coord = await w.coordinator({ only: ['a', 'b'] });
    await expect(coord.resolve(xid, 'rollback')).rejects.toMatchObject({ code: 'TXC_RESOLVE_REFUSED' });
    const r = await coord.resolve(xid, 'rollback', { force: true });
    expect(r).toMatchObject({ outcome: 'rollback', logDecision: 'commit', resolved: 1 });
    expect(w.db.a.prepared.size).toBe(0);
    expect(w.log.live().some((x) => x.type === 'heuristic')).toBe(true);
    expect(coord.stats().heuristic).toBe(1);
    await coord.close();
  });

  it('an outcome that agrees with the log needs no force; the whole gtrid can be named', async () => {
    const w = mixedWorld();
    const xid = await prepared(w, false);
    const gtrid = xid.slice(0, xid.lastIndexOf('.'));
    const coord = await w.coordinator({ only: ['a', 'b'] });
    const r = await coord.resolve(gtrid, 'rollback');
    expect(r).toMatchObject({ logDecision: 'rollback', resolved: 2 });
    expect([w.db.a.prepared.size, w.db.b.prepared.size]).toEqual([0, 0]);
    expect(w.log.live()).toHaveLength(0);
    await expect(coord.resolve(gtrid, 'rollback')).rejects.toMatchObject({ code: 'TXC_NOT_FOUND' });
    await coord.close();
  });
});
