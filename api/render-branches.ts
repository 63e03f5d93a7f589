import type { InDoubtBranch } from '../coordinator/types.js';
import { redactUrl } from '../coordinator/logger.js';
import { formatAge, renderTable, type Column } from './output.js';

/** A participant that could not be checked, as the coordinator reports it. */
export interface ParticipantFailure {
  readonly participant: string;
  readonly code: string;
  readonly message: string;
}

/** Branches in a stable order (participant, gtrid, bqual), so output diffs cleanly between runs. */
export function sortBranches(branches: readonly InDoubtBranch[]): InDoubtBranch[] {
  return [...branches].sort(
    (x, y) => x.participant.localeCompare(y.participant) || x.gtrid.localeCompare(y.gtrid) || x.bqual.localeCompare(y.bqual),
  );
}

const BRANCH_COLUMNS: readonly Column<InDoubtBranch>[] = [
  { header: 'PARTICIPANT', cell: (b) => b.participant },
  { header: 'GTRID', cell: (b) => b.gtrid },
  { header: 'BQUAL', cell: (b) => b.bqual },
  { header: 'OWNER', cell: (b) => b.coordinatorId || '?' },
  { header: 'DECISION', cell: (b) => b.decision },
  { header: 'IN-FLIGHT', cell: (b) => (b.inFlight ? 'yes' : 'no') },
  { header: 'AGE', cell: (b) => formatAge(b.ageMs), align: 'right' },
];

/** The in-doubt table: participant, gtrid, bqual, owner, decision, in-flight, age. */
export function renderBranchTable(branches: readonly InDoubtBranch[], extra: readonly Column<InDoubtBranch>[] = []): string {
  return renderTable([...BRANCH_COLUMNS, ...extra], sortBranches(branches));
}

/** A failure safe to show: one line, credentials inside URLs masked (driver messages may quote them). */
export function cleanFailure(f: ParticipantFailure): ParticipantFailure {
  return { participant: f.participant, code: f.code, message: redactUrl(f.message.replace(/\s*\n\s*/g, ' ')) };
}

/** One indented line per participant that could not be checked. */
export function renderFailures(failures: readonly ParticipantFailure[]): string {
  return failures.map(cleanFailure).map((f) => `  ${f.participant}: ${f.code}: ${f.message}\n`).join('');
}

/** The JSON shape of a branch: every field always present (`ageMs` null when unknown), for stable parsing. */
export function branchJson(b: InDoubtBranch): Record<string, string | number | boolean | null> {
  return {
    participant: b.participant,
    gtrid: b.gtrid,
    bqual: b.bqual,
    coordinatorId: b.coordinatorId,
    decision: b.decision,
    inFlight: b.inFlight,
    ageMs: b.ageMs ?? null,
  };
}
