import type { BackoffConfig } from './types.js';

/** Backoff with defaults filled in. */
export type Backoff = Required<BackoffConfig>;

/** Fills in defaults: 100 ms first delay, doubling, capped at 30 s. */
export function resolveBackoff(cfg: BackoffConfig = {}): Backoff {
  return { initialMs: cfg.initialMs ?? 100, maxMs: cfg.maxMs ?? 30_000, factor: cfg.factor ?? 2 };
}

/**
 * Delay before retry number `attempt` (0-based): exponential, capped, with "equal jitter"
 * (half fixed, half random) so many coordinators retrying one database do not stampede it.
 */
export function backoffDelay(attempt: number, cfg: Backoff, random: () => number): number {
  const base = Math.min(cfg.maxMs, cfg.initialMs * cfg.factor ** Math.min(attempt, 60));
  return Math.round(base / 2 + (base / 2) * random());
}
