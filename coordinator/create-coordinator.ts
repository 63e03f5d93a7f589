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
import { lastResourcesOf, markerHoldersOf } from './in-doubt-decision.js';
import { listInDoubt, recoverOnce } from './recovery.js';
import { runTransaction, type BackgroundWork } from './run-transaction.js';
import { SagaEngine } from '../sagas/saga-engine.js';
import type { SagaHandlerStep } from '../sagas/saga-types.js';
import { guardParticipant } from './guard-participant.js';
import { MarkerCollector } from './marker-collector.js';
import { ExternalTransactionManager } from './external-transactions.js';
import { resolveByHand } from './resolve-by-hand.js';
import { ParticipantBreaker } from './participant-breaker.js';
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
  const log = options.decisionLog ?? (await (await import('../log/open-log.js')).openLog(config.log, { logger, coordinatorId: config.id }));
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
  const breakers = new Map<string, ParticipantBreaker>();
  const guarded = new Map<string, Participant>();
  const finishing = new Map<string, Participant>();
  for (const [name, p] of participants) {
    const breaker = new ParticipantBreaker(name, config.participants[name]?.breaker, logger);
    breakers.set(name, breaker);
    guarded.set(name, guardParticipant(p, breaker));
    finishing.set(name, guardParticipant(p, breaker, true));
  }
  const backoff = resolveBackoff(config.backoff);
  const perParticipantBackoff = new Map(Object.entries(config.participants).map(([n, pc]) => [n, resolveBackoff({ ...config.backoff, ...pc.backoff })]));
  const oneFirst = lastResourcesOf(participants.values());
  if (config.decisionIn !== undefined) {
    const holder = participants.get(config.decisionIn);
    if (!holder?.beginLocal || !holder.capabilities.localTransactions) {
      await closeAll(participants.values(), log);
      throw new TxcError('TXC_CONFIG_INVALID', `Config field \`decisionIn\` names ${config.decisionIn}, which cannot hold commit markers (it has no local transactions)`, { details: { field: 'decisionIn' } });
    }
  }
  const markerHolders = markerHoldersOf(participants.values(), config.decisionIn);
  await Promise.all(
    markerHolders.map((n) =>
      participants
        .get(n)
        ?.ensureBookkeeping?.()
        .catch((err: unknown) => logger.warn({ participant: n, err }, 'could not create the marker tables yet; will retry on use')),
    ),
  );
  const rt: Runtime = {
    id: config.id,
    log,
    participants: guarded,
    finishing,
    inFlight: new Set(),
    logger,
    clock,
    random: options.random ?? Math.random,
    uuid: options.uuid,
    backoff,
    backoffFor: (name) => (name === undefined ? backoff : (perParticipantBackoff.get(name) ?? backoff)),
    decisionIn: config.decisionIn,
    // Name the marker holder in branch qualifiers when it is known before the branch starts.
    markerHint: (decisionIn) => decisionIn ?? (oneFirst.length === 1 ? oneFirst[0] : undefined),
    markerHolders,
    markerRetentionMs: config.markerRetentionMs ?? 86_400_000,
    barrierSweep: { retentionMs: config.barrierRetentionMs ?? 604_800_000, lastAt: 0 },
    markers: new MarkerCollector(participants, clock, logger),
    breakers,
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
  const sagas = new SagaEngine(rt, background);
  const external = new ExternalTransactionManager(rt, background, logger);

  let recovering: Promise<RecoveryReport> | undefined;
  const recover: Coordinator['recover'] = (opts) => {
    if (opts?.dryRun) return recoverOnce(rt, opts);
    // One pass at a time: a timer tick during a manual recover joins it instead of racing it.
    recovering ??= recoverOnce(rt, opts, (waitMs) => sagas.resume(waitMs)).finally(() => (recovering = undefined));
    return recovering;
  };

  if (config.recovery?.onStart !== false) {
    try {
      // Resumed sagas go on in the background: a service that is down must not hold up the start.
      const report = await recover({ sagaWaitMs: 0 });
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
    saga(definition, sagaOptions) {
      if (closed) return Promise.reject(new TxcError('TXC_COORDINATOR_CLOSED'));
      const p = sagas.runData(definition, sagaOptions);
      track(p);
      return p;
    },
    defineSaga(name, steps) {
      sagas.define(name, steps as readonly SagaHandlerStep[]);
    },
    runSaga(name, input, sagaOptions) {
      if (closed) return Promise.reject(new TxcError('TXC_COORDINATOR_CLOSED'));
      const p = sagas.runDefined(name, input, sagaOptions);
      track(p);
      return p;
    },
    submitSaga(definition, sagaOptions) {
      if (closed) return Promise.reject(new TxcError('TXC_COORDINATOR_CLOSED'));
      return sagas.submit(definition, sagaOptions).then((s) => {
        track(s.result.catch(() => undefined));
        return s;
      });
    },
    sagaStatus: (id) => sagas.status(id),
    external,
    resolve(xid, outcome, resolveOptions) {
      if (closed) return Promise.reject(new TxcError('TXC_COORDINATOR_CLOSED'));
      return resolveByHand(rt, xid, outcome, resolveOptions?.force === true);
    },
    stats: () =>
      snapshotStats(
        rt.stats,
        rt.inFlight.size,
        Object.fromEntries([...breakers].map(([n, b]) => [n, { state: b.state, opened: b.opened }])),
      ),
    async inDoubt(options) {
      if (closed) throw new TxcError('TXC_COORDINATOR_CLOSED');
      const { branches, failures } = await listInDoubt(rt);
      for (const f of failures) logger.warn(f, 'could not list in-doubt branches of a participant');
      if (failures.length > 0 && options?.allowPartial !== true) {
        const names = failures.map((f) => f.participant).join(', ');
        throw new TxcError('TXC_SCAN_INCOMPLETE', `Could not list the in-doubt branches of ${names} (${failures.map((f) => `${f.participant}: ${f.code}`).join('; ')})`, {
          retryable: true,
          details: { participants: names, listed: branches.length },
        });
      }
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
      await rt.markers.flush();
      for (const b of breakers.values()) b.shutdown();
      await closeAll(participants.values(), log);
    },
  };
}
