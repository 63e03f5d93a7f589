/** Background work (phase-two retries, straggler rollbacks, resumed sagas) the coordinator waits for on close. */
export interface BackgroundWork {
  /** Aborted when the coordinator closes: loops stop and leave the rest to recovery. */
  readonly signal: AbortSignal;
  track(p: Promise<void>): void;
}
