import type { Coordinator, InDoubtBranch } from '../../coordinator/types.js';

/** One look at every participant's prepared branches. */
export interface InDoubtScan {
  readonly branches: readonly InDoubtBranch[];
  /** Participants that could not be listed: for them "nothing in doubt" is not a fact. */
  readonly failures: readonly { readonly participant: string; readonly code: string; readonly message: string }[];
  /** When the scan finished (ms since epoch). */
  readonly at: number;
}

/**
 * Scans for in-doubt branches with a dry-run recovery pass: it lists the same branches as
 * `coord.inDoubt()` but also reports the participants it could not scan, which the answer,
 * readiness and metrics all need. Concurrent callers share one scan, and callers that accept
 * an older answer (metrics, readiness) get the last one while it is fresh enough, so scrapes
 * and probes cannot hammer the databases.
 */
export class InDoubtScanner {
  private last: InDoubtScan | undefined;
  private running: Promise<InDoubtScan> | undefined;
  private generation = 0;

  constructor(
    private readonly coord: Coordinator,
    private readonly now: () => number = Date.now,
  ) {}

  /** A scan at most `maxAgeMs` old (0: a new one, or the one running now). */
  scan(maxAgeMs = 0): Promise<InDoubtScan> {
    const last = this.last;
    if (last && maxAgeMs > 0 && this.now() - last.at <= maxAgeMs) return Promise.resolve(last);
    if (!this.running) {
      const generation = this.generation;
      this.running = this.coord
        .recover({ dryRun: true })
        .then((report) => {
          const scan: InDoubtScan = { branches: report.remaining, failures: report.failures, at: this.now() };
          // A scan that began before a resolution must not be served as fresh after it.
          if (generation === this.generation) this.last = scan;
          return scan;
        })
        .finally(() => (this.running = undefined));
    }
    return this.running;
  }

  /** Forgets the cached scan (after a resolution changed what is in doubt). */
  invalidate(): void {
    this.generation++;
    this.last = undefined;
  }
}
