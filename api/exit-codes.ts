import { TxcError } from '../coordinator/errors.js';
import type { InDoubtBranch, RecoveryReport } from '../coordinator/types.js';

/**
 * The CLI's exit statuses, the part of its contract scripts and monitors rely on:
 * 0 all is well, 1 something needs attention (in doubt, corrupt, unreachable, failed),
 * 2 the command itself was wrong (usage or configuration).
 */
export const EXIT = {
  OK: 0,
  ATTENTION: 1,
  USAGE: 2,
} as const;

/** One of {@link EXIT}'s values. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * `recover`: 0 only when nothing owned by `coordinatorId` is still in doubt and every participant
 * could be checked. Other coordinators' branches do not count: this one may not resolve them. In a
 * dry run, every branch recovery would act on is still in doubt, so it answers 1 too.
 */
export function recoverExitCode(report: RecoveryReport, coordinatorId: string): ExitCode {
  if (report.failures.length > 0) return EXIT.ATTENTION;
  if (report.heuristic.length > 0) return EXIT.ATTENTION;
  if (report.sagas.remaining.length > 0 || report.sagas.failed > 0) return EXIT.ATTENTION;
  return report.remaining.some((b) => b.coordinatorId === coordinatorId) ? EXIT.ATTENTION : EXIT.OK;
}

/** `in-doubt`: 0 when no prepared txcoord branch was found anywhere and every participant answered. */
export function inDoubtExitCode(branches: readonly InDoubtBranch[], failures: readonly unknown[]): ExitCode {
  return branches.length > 0 || failures.length > 0 ? EXIT.ATTENTION : EXIT.OK;
}

/** `log verify`: 0 for a log that opens cleanly (a torn tail is a normal crash, not damage). */
export function verifyExitCode(result: { readonly ok: boolean }): ExitCode {
  return result.ok ? EXIT.OK : EXIT.ATTENTION;
}

/** Errors that mean the command line or the configuration must change, not the system. */
const USAGE_CODES: ReadonlySet<string> = new Set(['TXC_CONFIG_INVALID', 'TXC_USAGE', 'TXC_ID_INVALID']);

/** Status for a command that failed with `err`: 2 for usage/config errors, 1 for everything else. */
export function errorExitCode(err: unknown): ExitCode {
  return TxcError.is(err) && USAGE_CODES.has(err.code) ? EXIT.USAGE : EXIT.ATTENTION;
}
