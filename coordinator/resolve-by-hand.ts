import type { ResolveAnswer } from '../client/wire-types.js';
import { TxcError } from './errors.js';
import { listInDoubt } from './recovery.js';
import type { Runtime } from './runtime.js';
import { TXC_FORMAT_ID, xidKey, type Xid } from './xid.js';

/**
 * An operator's decision for in-doubt branches (`txcoord resolve`, POST /v1/in-doubt/:xid/resolve).
 * `id` is `<gtrid>.<bqual>` for one branch or a gtrid for all of them. The log's decision wins
 * unless `force`; either way a heuristic record says who decided what, so nothing is hidden.
 */
export async function resolveByHand(rt: Runtime, id: string, outcome: 'commit' | 'rollback', force: boolean): Promise<ResolveAnswer> {
  if (outcome !== 'commit' && outcome !== 'rollback') throw new TxcError('TXC_BAD_REQUEST', 'outcome must be "commit" or "rollback"', { details: { field: 'outcome' } });
  const { branches, failures } = await listInDoubt(rt);
  const targets = branches.filter((b) => b.gtrid === id || `${b.gtrid}.${b.bqual}` === id);
  if (targets.length === 0) {
    const unchecked = failures.length ? ` (${failures.map((f) => f.participant).join(', ')} could not be checked)` : '';
    throw new TxcError('TXC_NOT_FOUND', `No prepared branch ${id} was found${unchecked}`, { details: { id } });
  }
  const inFlight = targets.find((b) => b.inFlight);
  if (inFlight) throw new TxcError('TXC_TRANSACTION_CLOSED', `Transaction ${inFlight.gtrid} is being driven by this coordinator right now; wait for it`, { details: { id } });
  const decision = targets[0]?.decision ?? 'unknown';
  // Presumed abort: without a commit record the log says rollback; a marker decides for itself.
  const contradicts = (decision === 'commit' && outcome === 'rollback') || (decision === 'rollback' && outcome === 'commit') || decision === 'marker' || decision === 'unknown';
  if (contradicts && !force) {
    const why =
      decision === 'marker'
        ? `a commit marker in ${(targets[0]?.markerIn ?? []).join('/')} decides it (run \`txcoord recover\` instead)`
        : decision === 'unknown'
          ? `it belongs to coordinator ${targets[0]?.coordinatorId}, whose log this is not`
          : `the log decided ${decision}`;
    throw new TxcError('TXC_RESOLVE_REFUSED', `Refusing to ${outcome} ${id}: ${why}`, { details: { id, logDecision: decision } });
  }
  let resolved = 0;
  for (const b of targets) {
    const xid: Xid = { formatId: TXC_FORMAT_ID, gtrid: b.gtrid, bqual: b.bqual };
    const p = rt.participants.get(b.participant);
    if (!p) continue;
    const r = outcome === 'commit' ? await p.commitPrepared(xid) : await p.rollbackPrepared(xid);
    if (r === 'unknown') rt.logger.warn({ xid: xidKey(xid), participant: b.participant }, 'branch was already gone when resolved by hand');
    resolved++;
    rt.stats.heuristic++;
    await rt.log.append(
      {
        type: 'heuristic',
        gtrid: b.gtrid,
        participant: b.participant,
        bqual: b.bqual,
        expected: decision === 'commit' ? 'commit' : 'rollback',
        actual: outcome === 'commit' ? 'committed' : 'rolled-back',
        at: rt.clock.now(),
      },
      true,
    );
    rt.logger.warn({ xid: xidKey(xid), participant: b.participant, outcome, logDecision: decision, forced: force }, 'in-doubt branch resolved by hand (recorded as a heuristic decision)');
  }
  // Without a commit record nothing else would ever end these heuristic records; a commit
  // record's end is written by the next recovery pass once all its branches are gone.
  if (decision !== 'commit') await rt.log.append({ type: 'end', gtrid: targets[0]?.gtrid ?? id, at: rt.clock.now() }, false);
  return { xid: id, outcome, logDecision: decision, resolved };
}
