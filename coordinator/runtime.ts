import type { Logger } from 'pino';
import type { DecisionLog } from '../log/decision-log.js';
import type { Participant } from '../participants/participant.js';
import type { Backoff } from './backoff.js';
import type { StatsCounters } from './stats.js';
import type { Clock, ProtocolPoint, ProtocolPointInfo } from './types.js';

/** Everything the protocol, phase-two retries and recovery share inside one coordinator. */
export interface Runtime {
  readonly id: string;
  readonly log: DecisionLog;
  readonly participants: ReadonlyMap<string, Participant>;
  /** Global ids being driven by this process right now; recovery leaves them alone. */
  readonly inFlight: Set<string>;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly random: () => number;
  readonly uuid: (() => string) | undefined;
  readonly backoff: Backoff;
  readonly prepareTimeoutMs: number;
  /** How long the caller waits for the first phase-two attempt before it continues in the background. */
  readonly phaseTwoTimeoutMs: number;
  readonly host: string;
  readonly pid: number;
  /** Counters reported by `coord.stats()`. */
  readonly stats: StatsCounters;
  /** Protocol hook (crash injection); resolves immediately when none is set. */
  point(point: ProtocolPoint, info: ProtocolPointInfo): Promise<void>;
}
