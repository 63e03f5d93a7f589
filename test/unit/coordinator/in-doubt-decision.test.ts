import { describe, expect, it } from 'vitest';
import { collectStatus } from '../../../api/commands/status.js';
import { inDoubtDecision, markerHoldersOf } from '../../../coordinator/in-doubt-decision.js';
import { branchXid, newGtrid, xidKey } from '../../../coordinator/xid.js';
import { FakeDatabase, FakeParticipant } from '../../fakes/fake-participant.js';

describe('inDoubtDecision (shared by recovery and txcoord status)', () => {
  const plain = { bqual: 'b0' };
  it('commit record first, then ownership, then markers, else presumed abort', () => {
    expect(inDoubtDecision(plain, { committed: true, ours: false, markerHolders: ['c'] })).toEqual({ decision: 'commit' });
    expect(inDoubtDecision(plain, { committed: false, ours: false, markerHolders: ['c'] })).toEqual({ decision: 'unknown' });
    expect(inDoubtDecision(plain, { committed: false, ours: true, markerHolders: [] })).toEqual({ decision: 'rollback' });
    expect(inDoubtDecision(plain, { committed: false, ours: true, markerHolders: ['c', 'd'] })).toEqual({ decision: 'marker', markerIn: ['c', 'd'] });
    // The holder the qualifier names is asked first, even when it is not configured any more.
    expect(inDoubtDecision({ bqual: 'b1~e' }, { committed: false, ours: true, markerHolders: ['c'] })).toEqual({ decision: 'marker', markerIn: ['e', 'c'] });
  });

  it('marker holders: every one-phase participant with local transactions, and decisionIn', () => {
    const db = new FakeDatabase();
    const ps = [new FakeParticipant('a', db), new FakeParticipant('c', db, true)];
    expect(markerHoldersOf(ps, undefined)).toEqual(['c']);
    expect(markerHoldersOf(ps, 'a')).toEqual(['c', 'a']);
    expect(markerHoldersOf(ps, 'c')).toEqual(['c']);
  });

  it('txcoord status reports a branch whose qualifier names no holder as decided by the markers, as recovery would', async () => {
    const a = new FakeDatabase();
    const xid = branchXid(newGtrid('st'), 0);
    a.prepared.set(xidKey(xid), { xid, writes: new Map(), localTxId: '1', attached: false });
    const view = await collectStatus({
      id: 'st',
      log: { type: 'memory' },
      participants: { a: { driver: 'custom', adapter: new FakeParticipant('a', a) }, c: { driver: 'custom', adapter: new FakeParticipant('c', new FakeDatabase(), true) } },
    });
    expect(view.inDoubt).toMatchObject([{ participant: 'a', gtrid: xid.gtrid, decision: 'marker' }]);
    expect(view.failures).toEqual([]);
  });
});
