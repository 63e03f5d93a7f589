import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Coordinator } from '../../coordinator/types.js';
import type { InDoubtScan, InDoubtScanner } from './in-doubt-scanner.js';

/** How old an in-doubt scan a scrape may reuse (scrapes come every 15-60 s; a scan touches every database). */
export const METRICS_SCAN_MAX_AGE_MS = 5_000;

/** The Prometheus metrics of `txcoord serve`. */
export interface ServerMetrics {
  /** The registry `GET /metrics` renders (its own, not prom-client's global one). */
  readonly registry: Registry;
  /** One HTTP answer: `route` is the route pattern (`/v1/transactions/:id`) or `unmatched`, never the raw URL. */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  /**
   * One transaction or saga as the service ran it: `source` execute | external | saga, `mode`
   * the commit mode (or `none` when it failed before one was chosen), `outcome` committed,
   * aborted, a saga's final status, or the failure's code.
   */
  observeTransaction(source: 'execute' | 'external' | 'saga', mode: string, outcome: string, seconds: number): void;
}

/** Options of {@link createServerMetrics}. */
export interface ServerMetricsOptions {
  /** Also export Node's process metrics (CPU, memory, event loop, GC). Default true. */
  readonly processMetrics?: boolean;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const BREAKER_STATES = ['closed', 'open', 'half-open', 'disabled'] as const;
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Builds the metrics. Counters that the coordinator already keeps (`coord.stats()`) are read at
 * scrape time rather than counted twice; in-doubt figures come from a scan cached
 * {@link METRICS_SCAN_MAX_AGE_MS}; latencies are observed as answers go out.
 */
export function createServerMetrics(coord: Coordinator, scanner: InDoubtScanner, options: ServerMetricsOptions = {}): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });

  new Counter({
    name: 'txcoord_transactions_total',
    help: 'Transactions finished since start, by commit mode and outcome (rolled_back and outcome_unknown are not broken down by mode: mode="none")',
    labelNames: ['mode', 'outcome'] as const,
    registers,
    collect() {
      const s = coord.stats();
      this.reset();
      for (const [mode, n] of Object.entries(s.committed)) this.inc({ mode, outcome: 'committed' }, n);
      this.inc({ mode: 'none', outcome: 'rolled_back' }, s.rolledBack);
      this.inc({ mode: 'none', outcome: 'outcome_unknown' }, s.outcomeUnknown);
    },
  });
  new Gauge({
    name: 'txcoord_transactions_in_flight',
    help: 'Transactions running now, phase-two retries included',
    registers,
    collect() {
      this.set(coord.stats().inFlight);
    },
  });
  new Counter({
    name: 'txcoord_heuristic_outcomes_total',
    help: 'Branches that ended differently from the logged decision',
    registers,
    collect() {
      this.reset();
      this.inc(coord.stats().heuristic);
    },
  });
  new Counter({
    name: 'txcoord_retries_total',
    help: 'Retries after a transient failure: phase-two commits, saga actions and compensations',
    labelNames: ['kind'] as const,
    registers,
    collect() {
      const s = coord.stats();
      this.reset();
      this.inc({ kind: 'phase_two' }, s.phaseTwoRetries);
      this.inc({ kind: 'saga' }, s.sagaRetries);
    },
  });
  new Counter({
    name: 'txcoord_recovered_branches_total',
    help: 'In-doubt branches resolved by recovery passes, by outcome',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      const s = coord.stats();
      this.reset();
      this.inc({ outcome: 'committed' }, s.recovered.committed);
      this.inc({ outcome: 'rolled_back' }, s.recovered.rolledBack);
    },
  });
  new Counter({
    name: 'txcoord_sagas_total',
    help: 'Sagas finished since start, by final status',
    labelNames: ['status'] as const,
    registers,
    collect() {
      const s = coord.stats();
      this.reset();
      for (const [status, n] of Object.entries(s.sagas)) this.inc({ status }, n);
    },
  });
  new Gauge({
    name: 'txcoord_breaker_state',
    help: 'Circuit breaker state per participant: 1 for the current state, 0 for the others',
    labelNames: ['participant', 'state'] as const,
    registers,
    collect() {
      this.reset();
      for (const [participant, b] of Object.entries(coord.stats().breakers)) {
        for (const state of BREAKER_STATES) this.set({ participant, state }, b.state === state ? 1 : 0);
      }
    },
  });
  new Counter({
    name: 'txcoord_breaker_opened_total',
    help: 'Times each participant’s circuit breaker opened',
    labelNames: ['participant'] as const,
    registers,
    collect() {
      this.reset();
      for (const [participant, b] of Object.entries(coord.stats().breakers)) this.inc({ participant }, b.opened);
    },
  });

  // Each in-doubt gauge reads the scan in its own collect (prom-client renders each metric
  // right after collecting it); one scrape shares one lookup, a failed one included.
  let lookup: { at: number; scan: Promise<InDoubtScan | undefined> } | undefined;
  const currentScan = () => {
    if (!lookup || Date.now() - lookup.at > 1_000) {
      lookup = { at: Date.now(), scan: scanner.scan(METRICS_SCAN_MAX_AGE_MS).catch(() => undefined) };
    }
    return lookup.scan;
  };
  const scanGauge = (name: string, help: string, value: (scan: InDoubtScan) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const scan = await currentScan();
        // Scraping must not fail with the coordinator: a stale figure is dropped, and scan_ok says why.
        if (scan) this.set(value(scan));
        else this.reset();
      },
    });
  scanGauge('txcoord_in_doubt_branches', 'Prepared txcoord branches found in the participants (scan cached 5 s)', (s) => s.branches.length);
  scanGauge('txcoord_in_doubt_oldest_age_seconds', 'Age of the oldest in-doubt branch, 0 when none (scan cached 5 s)', (s) => Math.max(0, ...s.branches.map((b) => b.ageMs ?? 0)) / 1000);
  scanGauge('txcoord_in_doubt_unscanned_participants', 'Participants whose prepared branches could not be listed in the last scan', (s) => new Set(s.failures.map((f) => f.participant)).size);
  new Gauge({
    name: 'txcoord_in_doubt_scan_ok',
    help: '1 when the last in-doubt scan ran (the in-doubt gauges are then current), 0 when it failed (they are then absent)',
    registers,
    async collect() {
      this.set((await currentScan()) ? 1 : 0);
    },
  });

  const requests = new Histogram({
    name: 'txcoord_http_request_duration_seconds',
    help: 'HTTP answers by method, route pattern and status',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const transactions = new Histogram({
    name: 'txcoord_transaction_duration_seconds',
    help: 'Transactions and sagas run through the service, by source, commit mode and outcome',
    labelNames: ['source', 'mode', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });

  return {
    registry,
    observeRequest(method, route, status, seconds) {
      requests.observe({ method: METHODS.has(method) ? method : 'OTHER', route, status_code: String(status) }, seconds);
    },
    observeTransaction(source, mode, outcome, seconds) {
      transactions.observe({ source, mode, outcome }, seconds);
    },
  };
}
