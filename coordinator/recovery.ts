import type { BranchRecord, CommitRecord } from '../log/log-record.js';
import { TxcError } from './errors.js';
import { commitBranch, confirmFinished, endCommitted } from './phase-two.js';
import type { Runtime } from './runtime.js';
import type { HeuristicReport, InDoubtBranch, RecoverOptions, RecoveryReport } from './types.js';
import { barrierRangeBefore, coordinatorOf, gtridPrefix, gtridTime, TXC_FORMAT_ID, xidKey, type Xid } from './xid.js';
import { settleMarker } from './commit-marker.js';
import { inDoubtDecision } from './in-doubt-decision.js';
import { isSharedLog, type SharedDecisionLog } from '../log/decision-log.js';
import type { SagaRecoveryReport } from './types.js';

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

function describe(rt: Runtime, participant: string, xid: Xid, committed: ReadonlyMap<string, CommitRecord>, owned: ReadonlySet<string>): InDoubtBranch {
  const owner = coordinatorOf(xid.gtrid) ?? '';
  const t = gtridTime(xid.gtrid);
  // A transaction taken over from a dead process is decided by the record now in our live set.
  const decided = inDoubtDecision(xid, { committed: committed.has(xid.gtrid), ours: owned.has(owner), markerHolders: rt.markerHolders });
  return {
    participant,
    gtrid: xid.gtrid,
    bqual: xid.bqual,
    coordinatorId: owner,
    ...decided,
    inFlight: rt.inFlight.has(xid.gtrid),
    ...(t !== undefined ? { ageMs: Math.max(0, rt.clock.now() - t) } : {}),
  };
}

/** Every txcoord branch prepared in any participant, with what this coordinator's log decides for it. */
export async function listInDoubt(rt: Runtime, owned: ReadonlySet<string> = new Set([rt.id])): Promise<{ branches: InDoubtBranch[]; failures: Scan['failures'] }> {
  const scan = await scanParticipants(rt);
  const committed = committedByGtrid(rt);
  const branches = [...scan.found].flatMap(([name, xids]) => xids.map((x) => describe(rt, name, x, committed, owned)));
  return { branches, failures: scan.failures };
}

/**
 * Settles the commit markers that decide `gtrid` (once per pass): 'commit' if any holder has a
 * commit marker, 'abort' once every holder has an abort marker; throws when a holder cannot be reached.
 */
async function decideByMarkers(rt: Runtime, gtrid: string, holders: readonly string[]): Promise<'commit' | 'abort'> {
  // The holder the qualifier names comes first, so the usual case settles one marker only.
  for (const h of holders) if ((await settleMarker(rt, h, gtrid)) === 'commit') return 'commit';
  return 'abort';
}

/** Deletes markers nobody needs any more: commit markers of finished transactions, abort markers past retention. */
async function sweepMarkers(rt: Runtime, stillPrepared: ReadonlySet<string>, scanComplete: boolean): Promise<number> {
  const live = new Set(rt.log.live().map((r) => r.gtrid));
  let removed = 0;
  for (const name of rt.markerHolders) {
    const p = rt.participants.get(name);
    if (!p?.listMarkers || !p.deleteMarkers) continue;
    try {
      const rows = await p.listMarkers(gtridPrefix(rt.id), 1000);
      const now = Date.now();
      const drop = rows
        .filter((m) => !rt.inFlight.has(m.gtrid) && !stillPrepared.has(m.gtrid) && !live.has(m.gtrid))
        // A commit marker may go once no branch it decides is prepared anywhere (every scan
        // answered); an abort marker guards against a late commit, so it is kept for a while.
        .filter((m) => (m.outcome === 'commit' ? scanComplete : now - m.createdAt > rt.markerRetentionMs))
        .map((m) => m.gtrid);
      if (drop.length > 0) await p.deleteMarkers(drop);
      removed += drop.length;
    } catch (err) {
      rt.logger.debug({ participant: name, err }, 'marker sweep failed; next pass retries');
    }
  }
  return removed;
}

/** Barrier rows are swept at most this often (the first pass of a process always sweeps). */
const BARRIER_SWEEP_EVERY_MS = 600_000;

/**
 * Deletes the barrier rows of this coordinator's sagas started more than the retention ago.
 * Rows of a saga still in the log are kept whatever its age: its gid is at least as new as its
 * start, so the range ends before the oldest unfinished transaction. With a shared log that
 * includes the ones another process took over under this coordinator id, which only the log knows.
 */
async function sweepBarriers(rt: Runtime): Promise<number> {
  const sweep = rt.barrierSweep;
  const now = Date.now();
  if (now - sweep.lastAt < BARRIER_SWEEP_EVERY_MS) return 0;
  const elsewhere = isSharedLog(rt.log) ? await rt.log.oldestUnended(rt.id).catch(() => null) : undefined;
  // The log could not say: sweep nothing rather than guess (the next pass asks again).
  if (elsewhere === null) return 0;
  sweep.lastAt = now;
  let cutoff = now - sweep.retentionMs;
  for (const gtrid of [...rt.log.live().map((r) => r.gtrid), ...rt.inFlight, ...(elsewhere !== undefined ? [elsewhere] : [])]) {
    const started = coordinatorOf(gtrid) === rt.id ? gtridTime(gtrid) : undefined;
    if (started !== undefined) cutoff = Math.min(cutoff, started);
  }
  const range = barrierRangeBefore(rt.id, cutoff);
  let removed = 0;
  for (const [name, p] of rt.participants) {
    if (!p.deleteBarriers) continue;
    try {
      removed += await p.deleteBarriers(range);
    } catch (err) {
      rt.logger.debug({ participant: name, err }, 'barrier sweep failed; a later pass retries');
    }
  }
  return removed;
}

const NO_SAGAS: SagaRecoveryReport = { resumed: 0, committed: 0, compensated: 0, failed: 0, remaining: [] };

/**
 * One recovery pass (the same function the start-up, the interval timer, `coord.recover()` and
 * the CLI call). Presumed abort: an owned, not-in-flight branch is committed when a commit record
 * exists and rolled back otherwise; commit records whose branches are all finished get an end record.
 * With a shared log it first takes over the work of dead processes; unfinished sagas are
 * resumed; finished transactions' markers are swept.
 */
export async function recoverOnce(
  rt: Runtime,
  options: RecoverOptions = {},
  resumeSagas?: (waitMs: number) => Promise<SagaRecoveryReport>,
): Promise<RecoveryReport> {
  // With a shared log, first take over what dead processes left: their decided transactions
  // (records now in our live set) and their coordinator ids (presumed abort for the rest).
  const shared = isSharedLog(rt.log) && !options.dryRun ? rt.log : undefined;
  const taken = shared ? await shared.takeOver() : { transactions: [], coordinators: [] };
  if (taken.transactions.length || taken.coordinators.length) rt.logger.warn({ transactions: taken.transactions.length, coordinators: taken.coordinators }, 'took over work of a dead coordinator process');
  try {
    return await recoverPass(rt, options, new Set([rt.id, ...taken.coordinators]), resumeSagas);
  } finally {
    for (const c of taken.coordinators) await shared?.releaseCoordinator(c).catch((err: unknown) => rt.logger.warn({ coordinator: c, err }, 'could not release a claimed coordinator id'));
  }
}

/** Whether the shared log holds a commit record for `gtrid` that this process does not own. */
function decidedElsewhere(shared: SharedDecisionLog, gtrid: string, checked: Map<string, Promise<boolean>>): Promise<boolean> {
  let p = checked.get(gtrid);
  if (!p) checked.set(gtrid, (p = shared.history(gtrid).then((h) => h.some((r) => r.type === 'commit'))));
  return p;
}

async function recoverPass(
  rt: Runtime,
  options: RecoverOptions,
  owned: ReadonlySet<string>,
  resumeSagas: ((waitMs: number) => Promise<SagaRecoveryReport>) | undefined,
): Promise<RecoveryReport> {
  const shared = isSharedLog(rt.log) ? rt.log : undefined;
  const checked = new Map<string, Promise<boolean>>();
  const { branches, failures } = await listInDoubt(rt, owned);
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
  const settled = new Map<string, Promise<'commit' | 'abort'>>();

  const actionable = branches.filter((b) => {
    const act = b.decision !== 'unknown' && !rt.inFlight.has(b.gtrid);
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
        let decision: 'commit' | 'abort' = 'abort';
        // A shared log's live() holds only what this process owns: another live process may own
        // this transaction's commit record and be committing it right now. Never roll that back.
        if (shared && (await decidedElsewhere(shared, b.gtrid, checked))) {
          remaining.push(b);
          continue;
        }
        if (b.decision === 'marker') {
          let pending = settled.get(b.gtrid);
          if (!pending) settled.set(b.gtrid, (pending = decideByMarkers(rt, b.gtrid, b.markerIn ?? [])));
          decision = await pending;
        }
        if (decision === 'commit') {
          const byMarker: CommitRecord = {
            type: 'commit',
            gtrid: b.gtrid,
            protocol: 'last-resource',
            branches: [{ participant: b.participant, bqual: b.bqual }],
            coordinatorId: rt.id,
            host: rt.host,
            pid: rt.pid,
            startedAt: gtridTime(b.gtrid) ?? 0,
            decidedAt: rt.clock.now(),
          };
          const outcome = await commitBranch(rt, byMarker, { participant: b.participant, bqual: b.bqual });
          if (outcome.kind === 'committed') committedCount++;
          else if (outcome.kind === 'heuristic') heuristic.push(outcome.report);
          else throw outcome.error ?? new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `commit of ${xidKey(xid)} not acknowledged yet`, { retryable: true });
        } else {
          await rt.participants.get(b.participant)?.rollbackPrepared(xid);
          rolledBack++;
        }
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

  const sagas = options.dryRun || !resumeSagas ? NO_SAGAS : await resumeSagas(options.sagaWaitMs ?? 30_000);
  const stillPrepared = new Set(remaining.map((b) => b.gtrid));
  const markersRemoved = options.dryRun ? 0 : await sweepMarkers(rt, stillPrepared, failures.length === 0);
  const barrierRowsRemoved = options.dryRun ? 0 : await sweepBarriers(rt);
  const report: RecoveryReport = { committed: committedCount, rolledBack, ended, heuristic, remaining, failures, sagas, markersRemoved, barrierRowsRemoved };
  rt.stats.recovered.committed += committedCount;
  rt.stats.recovered.rolledBack += rolledBack;
  if (committedCount || rolledBack || heuristic.length || failures.length) {
    rt.logger.info({ committed: committedCount, rolledBack, ended, heuristic: heuristic.length, remaining: remaining.length, failures }, 'recovery pass');
  }
  return report;
}
