import { isSharedLog } from '../log/decision-log.js';
import { TxcError } from './errors.js';
import type { Runtime } from './runtime.js';

/**
 * Whether this process may still drive `gtrid`. Always true with a private log; with a shared
 * one, false once another process took it over after our lease expired (a long pause): from then
 * on only the new owner acts, so two processes never drive one transaction at once.
 */
export function stillOwned(rt: Runtime, gtrid: string): boolean {
  return !isSharedLog(rt.log) || rt.log.owns(gtrid);
}

/** Throws (as a stop, like a closing coordinator) when another process owns `gtrid` now. */
export function assertOwned(rt: Runtime, gtrid: string): void {
  if (!stillOwned(rt, gtrid)) {
    throw new TxcError('TXC_COORDINATOR_CLOSED', `Another coordinator process took over ${gtrid} (this one's lease expired); it finishes the work`, { details: { gtrid } });
  }
}
