import type { Logger } from 'pino';
import type { DecisionLog } from '../log/decision-log.js';
import type { Participant } from '../participants/participant.js';
import type { Backoff } from './backoff.js';
import type { MarkerCollector } from './marker-collector.js';
import type { ParticipantBreaker } from './participant-breaker.js';
import type { StatsCounters } from './stats.js';
import type { Clock, ProtocolPoint, ProtocolPointInfo } from './types.js';

/** Everything the protocol, phase-two retries and recovery share inside one coordinator. */
export interface Runtime {
  readonly id: string;
  readonly log: DecisionLog;
  /** Participants for new work: begin and prepare fail fast while a breaker is open. */
  readonly participants: ReadonlyMap<string, Participant>;
  /** The same participants for finishing work (compensations, marker settling): never refused by a breaker. */
  readonly finishing: ReadonlyMap<string, Participant>;
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
  /** The configured `decisionIn` participant, if any. */
  readonly decisionIn: string | undefined;
  /** Participant to name in branch qualifiers as the possible marker holder (see xid.ts). */
  markerHint(decisionIn: string | undefined): string | undefined;
  /** Participants that may hold commit markers of this coordinator's transactions. */
  readonly markerHolders: readonly string[];
  readonly markerRetentionMs: number;
  /** Garbage collection of saga barrier rows: their retention, and when recovery last swept them. */
  readonly barrierSweep: { readonly retentionMs: number; lastAt: number };
  /** Deletes commit markers of finished transactions, in batches. */
  readonly markers: MarkerCollector;
  /** One circuit breaker per participant. */
  readonly breakers: ReadonlyMap<string, ParticipantBreaker>;
  /** Backoff for retries against `participant` (its own setting, else the coordinator's). */
  backoffFor(participant: string | undefined): Backoff;
}
