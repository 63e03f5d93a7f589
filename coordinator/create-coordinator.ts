import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import type { DecisionLog } from '../log/decision-log.js';
import type { Participant } from '../participants/participant.js';
import { createParticipant } from '../participants/registry.js';
import { resolveBackoff } from './backoff.js';
import { systemClock } from './clock.js';
import { validateConfig } from './config.js';
import { TxcError } from './errors.js';
import { createDefaultLogger } from './logger.js';
import { listInDoubt, recoverOnce } from './recovery.js';
import { runTransaction, type BackgroundWork } from './run-transaction.js';
import { createStatsCounters, snapshotStats } from './stats.js';
import type { Runtime } from './runtime.js';
import type { Coordinator, CoordinatorHooks, CreateCoordinatorOptions, RecoveryReport } from './types.js';

/** Code-only extras: an already-open decision log (tests, embedding several coordinators in one process). */
export interface InternalHooks extends CoordinatorHooks {
  readonly decisionLog?: DecisionLog;
}

async function closeAll(participants: Iterable<Participant>, log: DecisionLog | undefined): Promise<void> {
  await Promise.allSettled([...participants].map((p) => p.close()));
  await log?.close().catch(() => undefined);
}

/**
 * Creates an embedded coordinator: opens the decision log, connects the participants, checks each
 * can do 2PC, and (unless `recovery.onStart` is false) resolves every in-doubt branch it owns
 * before resolving, so no new work meets a branch left prepared by a crash.
 */
export async function createCoordinator(options: CreateCoordinatorOptions & InternalHooks): Promise<Coordinator> {
  const config = validateConfig(options);
  const logger = (options.logger ?? createDefaultLogger(config.logLevel)).child({ coordinator: config.id });
  const log = options.decisionLog ?? (await (await import('../log/open-log.js')).openLog(config.log, { logger }));
  const participants = new Map<string, Participant>();
  try {
    await Promise.all(
      Object.entries(config.participants).map(async ([name, pc]) => {
        participants.set(name, await createParticipant(name, pc, { logger: logger.child({ participant: name }) }));
      }),
    );
    await Promise.all(
      [...participants.values()].map(async (p) => {
        try {
          await p.preflight();
        } catch (err) {
          // A database that is merely down must not stop the coordinator (recovery retries it);
          // one that cannot do 2PC at all must, with the fix in the message.
          if (TxcError.is(err) && err.retryable) logger.warn({ participant: p.name, err }, 'participant unavailable at start; will retry');
          else throw err;
        }
      }),
    );
  } catch (err) {
    await closeAll(participants.values(), log);
    throw err;
  }

  const clock = options.clock ?? systemClock;
  const hook = options.onProtocolPoint;
  const rt: Runtime = {
    id: config.id,
    log,
    participants,
    inFlight: new Set(),
    logger,
    clock,
    random: options.random ?? Math.random,
    uuid: options.uuid,
    backoff: resolveBackoff(config.backoff),
    prepareTimeoutMs: config.prepareTimeoutMs ?? 30_000,
    phaseTwoTimeoutMs: config.phaseTwoTimeoutMs ?? 10_000,
    host: hostname(),
    pid: process.pid,
    stats: createStatsCounters(),
    point: hook ? async (point, info) => hook(point, info) : async () => undefined,
  };

  const abort = new AbortController();
  // Every background sleep (phase-two retries, straggler rollbacks) listens on this one signal
  // and removes its listener when done; more than 10 at once is normal under a fault, not a leak.
  setMaxListeners(0, abort.signal);
  const work = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    work.add(p);
    const forget = () => work.delete(p);
    p.then(forget, forget);
  };
  const background: BackgroundWork = { signal: abort.signal, track };

  let recovering: Promise<RecoveryReport> | undefined;
  const recover: Coordinator['recover'] = (opts) => {
    if (opts?.dryRun) return recoverOnce(rt, opts);
    // One pass at a time: a timer tick during a manual recover joins it instead of racing it.
    recovering ??= recoverOnce(rt, opts).finally(() => (recovering = undefined));
    return recovering;
  };

  if (config.recovery?.onStart !== false) {
    try {
      const report = await recover();
      if (report.remaining.some((b) => b.coordinatorId === config.id)) {
        logger.warn({ remaining: report.remaining.length, failures: report.failures }, 'some in-doubt branches could not be resolved at start');
      }
    } catch (err) {
      await closeAll(participants.values(), log);
      throw err;
    }
  }

  let closed = false;
  let cancelTimer: (() => void) | undefined;
  const intervalMs = config.recovery?.intervalMs ?? 60_000;
  const schedule = () => {
    if (closed || intervalMs <= 0) return;
    cancelTimer = clock.setTimeout(() => {
      recover()
        .catch((err: unknown) => logger.error({ err }, 'background recovery pass failed'))
        .finally(schedule);
    }, intervalMs);
  };
  schedule();

  return {
    id: config.id,
    transaction(fn, txOptions) {
      if (closed) return Promise.reject(new TxcError('TXC_COORDINATOR_CLOSED'));
      const p = runTransaction(rt, background, fn, txOptions);
      track(p);
      return p;
    },
    recover(opts) {
      if (closed) return Promise.reject(new TxcError('TXC_COORDINATOR_CLOSED'));
      return recover(opts);
    },
    stats: () => snapshotStats(rt.stats, rt.inFlight.size),
    async inDoubt() {
      if (closed) throw new TxcError('TXC_COORDINATOR_CLOSED');
      const { branches, failures } = await listInDoubt(rt);
      for (const f of failures) logger.warn(f, 'could not list in-doubt branches of a participant');
      return branches;
    },
    async close({ timeoutMs = 10_000 } = {}) {
      if (closed) return;
      closed = true;
      cancelTimer?.();
      const waitAll = (async () => {
        while (work.size > 0) await Promise.allSettled([...work]);
        await recovering?.catch(() => undefined);
      })();
      let timedOut = false;
      await new Promise<void>((resolve) => {
        const cancel = clock.setTimeout(() => ((timedOut = true), resolve()), timeoutMs);
        void waitAll.then(() => (cancel(), resolve()));
      });
      abort.abort();
      if (timedOut) logger.warn({ pending: work.size }, 'closing with work still running; recovery will finish it on the next start');
      await closeAll(participants.values(), log);
    },
  };
}
