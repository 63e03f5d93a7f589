import type { ReadyAnswer } from '../../client/wire-types.js';
import { TxcError } from '../../coordinator/errors.js';
import type { InDoubtScanner } from './in-doubt-scanner.js';
import type { LogProbe } from './log-probe.js';

/** How old a scan readiness may reuse: fresh enough for a load balancer, cheap under frequent probes. */
export const READY_SCAN_MAX_AGE_MS = 2_000;

/**
 * `GET /readyz`: every participant answered a scan of its prepared branches, and the decision
 * log can take a write. Checks carry codes only, never messages: the route needs no token.
 */
export async function checkReadiness(scanner: InDoubtScanner, participants: readonly string[], logProbe: LogProbe): Promise<ReadyAnswer> {
  const checks: Record<string, string> = {};
  const [scan, log] = await Promise.allSettled([scanner.scan(READY_SCAN_MAX_AGE_MS), logProbe()]);
  if (scan.status === 'fulfilled') {
    checks['coordinator'] = 'ok';
    for (const p of participants) checks[`participant:${p}`] = scan.value.failures.find((f) => f.participant === p)?.code ?? 'ok';
  } else {
    checks['coordinator'] = TxcError.is(scan.reason) ? scan.reason.code : 'TXC_INTERNAL';
    for (const p of participants) checks[`participant:${p}`] = 'unchecked';
  }
  checks['log'] = log.status === 'fulfilled' ? log.value : 'TXC_LOG_IO';
  return { ok: Object.values(checks).every((c) => c === 'ok'), checks };
}
