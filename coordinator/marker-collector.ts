import type { Logger } from 'pino';
import type { Participant } from '../participants/participant.js';
import type { Clock } from './types.js';

const BATCH = 200;
const DELAY_MS = 1_000;

/**
 * Deletes commit markers of finished transactions in batches, off the critical path. Losing a
 * batch (crash, database down) is harmless: recovery's marker sweep deletes what is left.
 */
export class MarkerCollector {
  private readonly queued = new Map<string, Set<string>>();
  private cancel: (() => void) | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly participants: ReadonlyMap<string, Participant>,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Queues the marker of `gtrid` in `participant` for deletion. */
  collect(participant: string, gtrid: string): void {
    let set = this.queued.get(participant);
    if (!set) this.queued.set(participant, (set = new Set()));
    set.add(gtrid);
    if (set.size >= BATCH) void this.flush();
    else this.cancel ??= this.clock.setTimeout(() => void this.flush(), DELAY_MS);
  }

  /** Deletes everything queued now. Never throws. */
  flush(): Promise<void> {
    this.cancel?.();
    this.cancel = undefined;
    const batches = [...this.queued].map(([name, set]) => [name, [...set]] as const);
    this.queued.clear();
    this.flushing = this.flushing.then(() =>
      Promise.all(
        batches.map(async ([name, gtrids]) => {
          try {
            await this.participants.get(name)?.deleteMarkers?.(gtrids);
          } catch (err) {
            this.logger.debug({ participant: name, err, markers: gtrids.length }, 'marker clean-up failed; the recovery sweep will retry');
          }
        }),
      ).then(() => undefined),
    );
    return this.flushing;
  }
}
