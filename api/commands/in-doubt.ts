import type { InDoubtBranch } from '../../coordinator/types.js';
import { inDoubtExitCode, type ExitCode } from '../exit-codes.js';
import { withCoordinator } from '../open-coordinator.js';
import { formatJson, plural, type CliIO } from '../output.js';
import { branchJson, cleanFailure, renderBranchTable, renderFailures, sortBranches, type ParticipantFailure } from '../render-branches.js';

/** What `txcoord in-doubt` found. */
export interface InDoubtView {
  readonly coordinatorId: string;
  readonly branches: readonly InDoubtBranch[];
  /** Participants whose prepared branches could not be listed: "none found" is not a fact for them. */
  readonly failures: readonly ParticipantFailure[];
}

/** Human form: a table of branches, then any participant that could not be checked. */
export function renderInDoubt(view: InDoubtView): string {
  let text = '';
  if (view.branches.length === 0) {
    text += view.failures.length === 0 ? 'No prepared txcoord branches in any participant.\n' : 'No prepared txcoord branches in the participants that answered.\n';
  } else {
    text += `${plural(view.branches.length, 'prepared branch', 'prepared branches')} in doubt (decision = what the log of '${view.coordinatorId}' says; unknown = another coordinator's):\n\n`;
    text += renderBranchTable(view.branches);
  }
  if (view.failures.length > 0) {
    text += `\nCould not check ${plural(view.failures.length, 'participant')}:\n${renderFailures(view.failures)}`;
  }
  return text;
}

/** JSON form: `{ coordinatorId, branches: [...], failures: [...] }`, branches sorted. */
export function inDoubtJson(view: InDoubtView): unknown {
  return {
    coordinatorId: view.coordinatorId,
    branches: sortBranches(view.branches).map(branchJson),
    failures: view.failures.map(cleanFailure),
  };
}

/**
 * `txcoord in-doubt --config F [--json]`: lists every prepared txcoord branch; changes nothing.
 *
 * It uses a dry-run recovery pass rather than `coord.inDoubt()`: both scan the same participants,
 * but only the pass reports which participants could not be scanned, and an unreachable database
 * must not be printed as "nothing in doubt" with exit 0.
 */
export async function runInDoubt(options: { config: string; json?: boolean }, io: CliIO): Promise<ExitCode> {
  return withCoordinator(options.config, io, async (coord) => {
    const report = await coord.recover({ dryRun: true });
    const view: InDoubtView = { coordinatorId: coord.id, branches: report.remaining, failures: report.failures };
    io.out(options.json ? formatJson(inDoubtJson(view)) : renderInDoubt(view));
    return inDoubtExitCode(view.branches, view.failures);
  });
}
