import type { BranchRecord, CommitRecord } from '../log/log-record.js';
import { TxcError } from './errors.js';
import { commitBranch, confirmFinished, endCommitted } from './phase-two.js';
import type { Runtime } from './runtime.js';
import type { HeuristicReport, InDoubtBranch, RecoverOptions, RecoveryReport } from './types.js';
import { coordinatorOf, gtridTime, TXC_FORMAT_ID, xidKey, type Xid } from './xid.js';

interface Scan {
  readonly found: Map<string, Xid[]>;
  readonly failures: { participant: string; code: string; message: string }[];
}

function errorCode(err: unknown): string {
  return TxcError.is(err) ? err.code : 'TXC_PARTICIPANT_UNAVAILABLE';
}

async function scanParticipants(rt: Runtime): Promise<Scan> {
  const found = new Map<string, Xid[]>();
  const failures: Scan['failures'] = [];
  await Promise.all(
    [...rt.participants].map(async ([name, p]) => {
      try {
        found.set(name, await p.listInDoubt());
      } catch (err) {
        failures.push({ participant: name, code: errorCode(err), message: (err as Error).message });
      }
    }),
  );
  return { found, failures };
}

/** The live commit records, by gtrid (taken after a scan, so a decision made meanwhile is seen). */
function committedByGtrid(rt: Runtime): Map<string, CommitRecord> {
  const map = new Map<string, CommitRecord>();
  for (const r of rt.log.live()) if (r.type === 'commit') map.set(r.gtrid, r);
  return map;
}

function describe(rt: Runtime, participant: string, xid: Xid, committed: ReadonlyMap<string, CommitRecord>): InDoubtBranch {
  const owner = coordinatorOf(xid.gtrid) ?? '';
  const t = gtridTime(xid.gtrid);
  return {
    participant,
    gtrid: xid.gtrid,
    bqual: xid.bqual,
    coordinatorId: owner,
    decision: owner !== rt.id ? 'unknown' : committed.has(xid.gtrid) ? 'commit' : 'rollback',
    inFlight: rt.inFlight.has(xid.gtrid),
    ...(t !== undefined ? { ageMs: Math.max(0, rt.clock.now() - t) } : {}),
  };
}

/** Every txcoord branch prepared in any participant, with what this coordinator's log decides for it. */
export async function listInDoubt(rt: Runtime): Promise<{ branches: InDoubtBranch[]; failures: Scan['failures'] }> {
  const scan = await scanParticipants(rt);
  const committed = committedByGtrid(rt);
  const branches = [...scan.found].flatMap(([name, xids]) => xids.map((x) => describe(rt, name, x, committed)));
  return { branches, failures: scan.failures };
}

/**
 * One recovery pass (the same function the start-up, the interval timer, `coord.recover()` and
 * the CLI call). Presumed abort: an owned, not-in-flight branch is committed when a commit record
 * exists and rolled back otherwise; commit records whose branches are all finished get an end record.
 */
export async function recoverOnce(rt: Runtime, options: RecoverOptions = {}): Promise<RecoveryReport> {
  const { branches, failures } = await listInDoubt(rt);
  // Only where the scan succeeded is "not prepared" a fact.
  const scanned = new Set([...rt.participants.keys()].filter((n) => !failures.some((f) => f.participant === n)));
  const committed = committedByGtrid(rt);
  const heuristic: HeuristicReport[] = [];
  const remaining: InDoubtBranch[] = [];
  let committedCount = 0;
  let rolledBack = 0;
  let ended = 0;
  // Branches of a commit record that recovery could not finish keep that record live.
  const unfinished = new Set<string>();

  const actionable = branches.filter((b) => {
    const act = b.coordinatorId === rt.id && !rt.inFlight.has(b.gtrid);
    if (!act) remaining.push(b);
    return act;
  });
  let progress = 0;
  const total = actionable.length;
  for (const b of actionable) {
    const xid: Xid = { formatId: TXC_FORMAT_ID, gtrid: b.gtrid, bqual: b.bqual };
    const record = committed.get(b.gtrid);
    if (options.dryRun) {
      remaining.push(b);
      if (record) unfinished.add(b.gtrid);
    } else if (rt.inFlight.has(b.gtrid)) {
      // Started driving it since the scan (e.g. a retry): leave it to its driver.
      remaining.push(b);
    } else if (record) {
      const br = record.branches.find((x) => x.bqual === b.bqual) ?? { participant: b.participant, bqual: b.bqual };
      const outcome = await commitBranch(rt, record, { ...br, participant: b.participant });
      if (outcome.kind === 'committed') committedCount++;
      else if (outcome.kind === 'heuristic') heuristic.push(outcome.report);
      else {
        unfinished.add(b.gtrid);
        remaining.push(b);
        failures.push({ participant: b.participant, code: errorCode(outcome.error), message: `commit of ${xidKey(xid)} not acknowledged yet` });
      }
    } else {
      try {
        await rt.participants.get(b.participant)?.rollbackPrepared(xid);
        rolledBack++;
      } catch (err) {
        remaining.push(b);
        failures.push({ participant: b.participant, code: errorCode(err), message: (err as Error).message });
      }
    }
    options.onProgress?.(++progress, total);
  }

  for (const record of committed.values()) {
    if (rt.inFlight.has(record.gtrid) || unfinished.has(record.gtrid) || options.dryRun) continue;
    if (!record.branches.every((br) => scanned.has(br.participant))) continue;
    const stillPrepared = (br: BranchRecord) => branches.some((x) => x.gtrid === record.gtrid && x.bqual === br.bqual && x.participant === br.participant);
    const recordHeuristics = heuristic.filter((h) => h.gtrid === record.gtrid);
    // Branches that were already gone before this pass: committed earlier, or rolled back by hand?
    let pending = false;
    for (const br of record.branches.filter((x) => !stillPrepared(x))) {
      const outcome = await confirmFinished(rt, record, br).catch((error: unknown) => ({ kind: 'retry' as const, error }));
      if (outcome.kind === 'heuristic') {
        heuristic.push(outcome.report);
        recordHeuristics.push(outcome.report);
      } else if (outcome.kind === 'retry') pending = true;
    }
    if (pending) continue;
    await endCommitted(rt, record, recordHeuristics);
    ended++;
  }

  const report: RecoveryReport = { committed: committedCount, rolledBack, ended, heuristic, remaining, failures };
  rt.stats.recovered.committed += committedCount;
  rt.stats.recovered.rolledBack += rolledBack;
  if (committedCount || rolledBack || heuristic.length || failures.length) {
    rt.logger.info({ committed: committedCount, rolledBack, ended, heuristic: heuristic.length, remaining: remaining.length, failures }, 'recovery pass');
  }
  return report;
}
