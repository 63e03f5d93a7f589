import type { CommitMode } from './types.js';

/** Running counters of one coordinator (what `coord.stats()` reports and metrics will export). */
export interface CoordinatorStats {
  /** Transactions committed, by how. */
  readonly committed: Readonly<Record<CommitMode, number>>;
  /** Transactions rolled back (callback threw, a prepare failed or timed out, the log refused the decision). */
  readonly rolledBack: number;
  /** Transactions whose outcome the caller could not be told (connection lost in a one-phase commit, log damage). */
  readonly outcomeUnknown: number;
  /** Branches that ended differently from the logged decision. */
  readonly heuristic: number;
  /** Phase-two commit attempts retried after a failure. */
  readonly phaseTwoRetries: number;
  /** Branches resolved by recovery passes. */
  readonly recovered: { readonly committed: number; readonly rolledBack: number };
  /** Transactions running right now (including phase-two retries). */
  readonly inFlight: number;
  /** Sagas finished, by final state. */
  readonly sagas: { readonly committed: number; readonly compensated: number; readonly failed: number };
  /** Saga actions and compensations retried after a transient failure. */
  readonly sagaRetries: number;
  /** Each participant's circuit breaker state and how many times it opened. */
  readonly breakers: Readonly<Record<string, { readonly state: string; readonly opened: number }>>;
}

/** The mutable counters behind {@link CoordinatorStats}. */
export interface StatsCounters {
  committed: Record<CommitMode, number>;
  rolledBack: number;
  outcomeUnknown: number;
  heuristic: number;
  phaseTwoRetries: number;
  recovered: { committed: number; rolledBack: number };
  sagas: { committed: number; compensated: number; failed: number };
  sagaRetries: number;
}

/** Fresh counters, all zero. */
export function createStatsCounters(): StatsCounters {
  return {
    committed: { 'read-only': 0, 'one-phase': 0, '2pc': 0, 'last-resource': 0, saga: 0 },
    rolledBack: 0,
    outcomeUnknown: 0,
    heuristic: 0,
    phaseTwoRetries: 0,
    recovered: { committed: 0, rolledBack: 0 },
    sagas: { committed: 0, compensated: 0, failed: 0 },
    sagaRetries: 0,
  };
}

/** A snapshot of `counters` that later updates do not change. */
export function snapshotStats(counters: StatsCounters, inFlight: number, breakers: CoordinatorStats['breakers'] = {}): CoordinatorStats {
  return { ...counters, committed: { ...counters.committed }, recovered: { ...counters.recovered }, sagas: { ...counters.sagas }, inFlight, breakers };
}
