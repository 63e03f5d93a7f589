import type { Coordinator, InDoubtBranch, RecoveryReport } from '../../coordinator/types.js';
import { recoverExitCode, type ExitCode } from '../exit-codes.js';
import { withCoordinator } from '../open-coordinator.js';
import { formatJson, plural, renderFacts, renderTable, type CliIO } from '../output.js';
import { branchJson, cleanFailure, renderBranchTable, renderFailures, sortBranches } from '../render-branches.js';

/** Below this many branches a pass is over before a progress line could be read. */
const PROGRESS_MIN_BRANCHES = 20;

/** What a dry run would do with one branch (a real pass leaves only branches it could not finish). */
export function plannedAction(b: InDoubtBranch, coordinatorId: string): string {
  if (b.coordinatorId !== coordinatorId) return `leave (owned by ${b.coordinatorId || 'unknown'})`;
  if (b.inFlight) return 'leave (in flight)';
  if (b.decision === 'marker') return `commit if a marker in ${(b.markerIn ?? []).join('/')} says so, else roll back`;
  return b.decision === 'commit' ? 'commit' : 'roll back';
}

/** Human form of a recovery report. */
export function renderRecovery(report: RecoveryReport, coordinatorId: string, dryRun: boolean): string {
  const owned = report.remaining.filter((b) => b.coordinatorId === coordinatorId);
  let text = dryRun
    ? `Dry run of recovery for coordinator '${coordinatorId}': nothing was changed.\n\n`
    : `Recovery pass of coordinator '${coordinatorId}':\n`;

  if (dryRun) {
    if (report.remaining.length === 0) text += 'No prepared txcoord branches: there is nothing to recover.\n';
    else {
      text += renderBranchTable(report.remaining, [{ header: 'ACTION', cell: (b) => plannedAction(b, coordinatorId) }]);
    }
  } else {
    text += renderFacts([
      ['committed', report.committed],
      ['rolled back', report.rolledBack],
      ['ended', report.ended],
      ['heuristic', report.heuristic.length],
      ['still in doubt', report.remaining.length],
      ['sagas resumed', report.sagas.resumed],
      ['  committed', report.sagas.committed],
      ['  compensated', report.sagas.compensated],
      ['  failed (heuristic)', report.sagas.failed],
      ['sagas unfinished', report.sagas.remaining.length],
      ['markers removed', report.markersRemoved],
      ['barrier rows removed', report.barrierRowsRemoved],
    ]);
    if (report.remaining.length > 0) text += `\nStill in doubt:\n\n${renderBranchTable(report.remaining)}`;
    if (report.sagas.remaining.length > 0) {
      text += '\nUnfinished sagas:\n\n';
      text += renderTable(
        [
          { header: 'SAGA', cell: (r) => r.id },
          { header: 'REASON', cell: (r) => r.reason },
        ],
        report.sagas.remaining,
      );
    }
  }

  if (report.heuristic.length > 0) {
    text += '\nHeuristic outcomes (a branch did not reach the logged decision; reconcile the data by hand):\n\n';
    text += renderTable(
      [
        { header: 'PARTICIPANT', cell: (h) => h.participant },
        { header: 'GTRID', cell: (h) => h.gtrid },
        { header: 'BQUAL', cell: (h) => h.bqual },
        { header: 'EXPECTED', cell: (h) => h.expected },
        { header: 'ACTUAL', cell: (h) => h.actual },
      ],
      report.heuristic,
    );
  }
  if (report.failures.length > 0) text += `\nParticipant problems (their branches stay as they are until a later pass):\n${renderFailures(report.failures)}`;

  text += '\n';
  if (dryRun) {
    const act = owned.filter((b) => !b.inFlight).length;
    const unchecked = report.failures.length ? ` (${plural(report.failures.length, 'participant')} could not be checked)` : '';
    text +=
      act === 0
        ? `Nothing owned by '${coordinatorId}' needs recovery${unchecked}.\n`
        : `A recovery pass would resolve ${plural(act, 'branch', 'branches')}${unchecked}: run without --dry-run.\n`;
  } else {
    const problems = [
      ...(owned.length ? [`${plural(owned.length, 'branch', 'branches')} owned by '${coordinatorId}' still in doubt`] : []),
      ...(report.failures.length ? [plural(report.failures.length, 'participant problem')] : []),
      ...(report.heuristic.length ? [`${plural(report.heuristic.length, 'heuristic outcome')} to reconcile`] : []),
      ...(report.sagas.remaining.length ? [`${plural(report.sagas.remaining.length, 'saga')} unfinished`] : []),
      ...(report.sagas.failed ? [`${plural(report.sagas.failed, 'saga')} failed to compensate (repair by hand)`] : []),
    ];
    text +=
      problems.length === 0
        ? `Nothing owned by '${coordinatorId}' is left in doubt.\n`
        : `${problems.join(', ')}: fix what is listed above, then run \`txcoord recover\` again.\n`;
  }
  return text;
}

/** JSON form: the report with branches sorted and every field present. */
export function recoveryJson(report: RecoveryReport, coordinatorId: string, dryRun: boolean): unknown {
  return {
    coordinatorId,
    dryRun,
    committed: report.committed,
    rolledBack: report.rolledBack,
    ended: report.ended,
    heuristic: report.heuristic,
    remaining: sortBranches(report.remaining).map((b) => ({ ...branchJson(b), ...(dryRun ? { action: plannedAction(b, coordinatorId) } : {}) })),
    failures: report.failures.map(cleanFailure),
    sagas: report.sagas,
    markersRemoved: report.markersRemoved,
    barrierRowsRemoved: report.barrierRowsRemoved,
  };
}

/** Options of `txcoord recover`. */
export interface RecoverCommandOptions {
  readonly config: string;
  readonly dryRun?: boolean;
  readonly json?: boolean;
}

/**
 * One recovery pass on an open coordinator, then the report. A progress line is drawn only on a
 * terminal, only for human output, and only when the pass is long enough to need one.
 */
export async function recoverWith(coord: Coordinator, options: Omit<RecoverCommandOptions, 'config'>, io: CliIO): Promise<ExitCode> {
  const dryRun = options.dryRun === true;
  let progressShown = false;
  const report = await coord.recover({
    dryRun,
    ...(io.isTTY && !options.json
      ? {
          onProgress: (done: number, total: number) => {
            if (total < PROGRESS_MIN_BRANCHES) return;
            progressShown = true;
            io.out(`\rResolving in-doubt branches: ${done}/${total}`);
          },
        }
      : {}),
  });
  // Erase the progress line so the report starts on a clean line.
  if (progressShown) io.out('\r\x1b[K');
  io.out(options.json ? formatJson(recoveryJson(report, coord.id, dryRun)) : renderRecovery(report, coord.id, dryRun));
  return recoverExitCode(report, coord.id);
}

/**
 * `txcoord recover --config F [--dry-run] [--json]`: one recovery pass, the same function the
 * coordinator runs on start and on its timer, then a report.
 */
export function runRecover(options: RecoverCommandOptions, io: CliIO): Promise<ExitCode> {
  return withCoordinator(options.config, io, (coord) => recoverWith(coord, options, io));
}
