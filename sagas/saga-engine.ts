import type { Logger } from 'pino';
import type { BackgroundWork } from '../coordinator/background-work.js';
import { TxcError } from '../coordinator/errors.js';
import type { Runtime } from '../coordinator/runtime.js';
import type { SagaRecoveryReport } from '../coordinator/types.js';
import { newGtrid } from '../coordinator/xid.js';
import type { JsonValue, LogRecord, SagaRecord } from '../log/log-record.js';
import { compensateTransactionSteps } from './transaction-saga.js';
import { runSaga } from './run-saga.js';
import { planDataStep, planHandlerStep, type PlanStep } from './saga-plan.js';
import { newSagaState, sagaStateFrom } from './saga-state.js';
import type { SagaDefinition, SagaHandlerStep, SagaResult, SagaRunOptions } from './saga-types.js';
import type { SagaView } from '../client/wire-types.js';
import { isSharedLog } from '../log/decision-log.js';
import { viewFromState, viewOf } from './saga-view.js';
import { validateSagaSteps } from './validate-saga.js';

/**
 * Sagas of one coordinator: runs new ones, keeps the registered definitions, and resumes
 * unfinished ones from the log (forward or backward, as their records say).
 */
export class SagaEngine {
  private readonly definitions = new Map<string, readonly SagaHandlerStep[]>();

  constructor(
    private readonly rt: Runtime,
    private readonly background: BackgroundWork,
  ) {}

  /** Registers handler steps under `name`. */
  define(name: string, steps: readonly SagaHandlerStep[]): void {
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new TxcError('TXC_USAGE', `Saga name ${JSON.stringify(name)} is invalid: use 1-64 of A-Z a-z 0-9 _ . -`);
    validateSagaSteps(this.rt, steps.map((s) => ({ name: s.name, ...(s.participant !== undefined ? { participant: s.participant } : {}), ...(s.after ? { after: s.after } : {}) })), 'defineSaga');
    for (const s of steps) if (typeof s.action !== 'function') throw new TxcError('TXC_USAGE', `defineSaga('${name}'): step '${s.name}' needs an action function`);
    this.definitions.set(name, steps);
  }

  /** Runs a saga given as data. */
  async runData(def: SagaDefinition, options: SagaRunOptions = {}): Promise<SagaResult> {
    return (await this.submit(def, options)).result;
  }

  /**
   * Starts a saga given as data; resolves once its first record is durable, with the run's
   * promise. A repeated caller idempotency key returns the saga it started the first time.
   */
  async submit(def: SagaDefinition, options: SagaRunOptions = {}): Promise<{ id: string; existing: boolean; result: Promise<SagaResult> }> {
    validateSagaSteps(this.rt, def.steps, 'saga');
    const key = options.idempotencyKey;
    if (key !== undefined) {
      const seen = await this.findByKey(key);
      if (seen) return { id: seen, existing: true, result: this.running.get(seen) ?? this.finishedResult(seen) };
    }
    const opts = { ...options, ...(def.timeoutMs !== undefined && options.timeoutMs === undefined ? { timeoutMs: def.timeoutMs } : {}), ...(def.meta && !options.meta ? { meta: def.meta } : {}) };
    const started = await this.start({ kind: 'steps', steps: def.steps }, opts);
    return { ...started, existing: false };
  }

  /** Runs the definition registered as `name`. */
  async runDefined(name: string, input: JsonValue, options: SagaRunOptions = {}): Promise<SagaResult> {
    if (!this.definitions.has(name)) throw new TxcError('TXC_SAGA_UNKNOWN', `No saga is defined as '${name}'`);
    // The input is stored in the log; it must be plain JSON.
    const stored = JSON.parse(JSON.stringify(input ?? null)) as JsonValue;
    return (await this.start({ kind: 'defined', name, input: stored }, options)).result;
  }

  /** Sagas running in this process, by id. */
  private readonly running = new Map<string, Promise<SagaResult>>();
  /** Final results of recent sagas (bounded), for status queries after the end record. */
  private readonly finished = new Map<string, SagaResult>();
  private readonly keys = new Map<string, string>();

  private remember(result: SagaResult): void {
    this.finished.set(result.id, result);
    if (this.finished.size > 10_000) this.finished.delete(this.finished.keys().next().value as string);
  }

  private finishedResult(id: string): Promise<SagaResult> {
    const r = this.finished.get(id);
    return r ? Promise.resolve(r) : Promise.reject(new TxcError('TXC_NOT_FOUND', `Saga ${id} ran in another process; ask GET /v1/sagas/${id}`));
  }

  private async findByKey(key: string): Promise<string | undefined> {
    const local = this.keys.get(key);
    if (local) return local;
    const live = this.rt.log.live().find((r) => r.type === 'saga' && r.idempotencyKey === key);
    if (live) return live.gtrid;
    return isSharedLog(this.rt.log) ? this.rt.log.findByIdempotencyKey(key) : undefined;
  }

  /** A saga's state: from this process's memory, the live log, or a shared log's history. */
  async status(id: string): Promise<SagaView | undefined> {
    const done = this.finished.get(id);
    if (done) return viewOf(done);
    const live = this.rt.log.live().filter((r) => r.gtrid === id);
    const history = live.length > 0 ? live : isSharedLog(this.rt.log) ? await this.rt.log.history(id) : [];
    const record = history.find((r): r is SagaRecord => r.type === 'saga');
    if (!record) {
      // The end record leaves the live set once written, before its fsync resolves the run: in
      // that window the saga is in neither place, so its own run is about to answer.
      const run = this.running.get(id);
      return run ? run.then(viewOf, () => undefined) : undefined;
    }
    const names = record.steps?.map((st) => st.name) ?? this.definitions.get(record.name ?? '')?.map((st) => st.name) ?? [...new Set(history.flatMap((r) => (r.type === 'saga-step' ? [r.step] : [])))];
    const state = sagaStateFrom(record, names, history);
    const end = history.find((r) => r.type === 'end');
    return viewFromState(state, end?.type === 'end' ? end.status : undefined, record.steps);
  }

  private async start(what: Pick<SagaRecord, 'kind' | 'steps' | 'name' | 'input'>, options: SagaRunOptions): Promise<{ id: string; result: Promise<SagaResult> }> {
    const rt = this.rt;
    const gtrid = newGtrid(rt.id, rt.uuid);
    const now = rt.clock.now();
    const record: SagaRecord = {
      type: 'saga',
      gtrid,
      ...what,
      coordinatorId: rt.id,
      host: rt.host,
      pid: rt.pid,
      startedAt: now,
      ...(options.meta ? { meta: options.meta } : {}),
      ...(options.timeoutMs !== undefined ? { deadlineAt: now + options.timeoutMs } : {}),
      ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
    };
    const plan = this.plan(record);
    rt.inFlight.add(gtrid);
    try {
      await rt.log.append(record, true);
    } catch (err) {
      rt.inFlight.delete(gtrid);
      throw err;
    }
    if (options.idempotencyKey !== undefined) this.keys.set(options.idempotencyKey, gtrid);
    const result = runSaga(rt, plan, newSagaState(record, plan.map((p) => p.name)), this.background.signal, rt.logger.child({ txid: gtrid, saga: what.name ?? 'steps' }))
      .then((r) => (this.remember(r), r))
      .finally(() => {
        rt.inFlight.delete(gtrid);
        this.running.delete(gtrid);
      });
    this.running.set(gtrid, result);
    return { id: gtrid, result };
  }

  private plan(record: SagaRecord): PlanStep[] {
    if (record.kind === 'steps') {
      const steps = record.steps ?? [];
      return steps.map((s, i) => planDataStep(this.rt, record.gtrid, s, steps[i - 1]?.name));
    }
    const def = this.definitions.get(record.name ?? '');
    if (!def) throw new TxcError('TXC_SAGA_UNKNOWN', `Saga ${record.gtrid} was started as '${record.name}', which is not defined in this process`);
    return def.map((s, i) => planHandlerStep(this.rt, record.gtrid, record.input ?? null, s as SagaHandlerStep, def[i - 1]?.name));
  }

  /**
   * Resumes every unfinished saga in the log that no one in this process is driving, waiting
   * up to `waitMs` for them; the rest go on in the background and are reported as remaining.
   */
  async resume(waitMs: number): Promise<SagaRecoveryReport> {
    const rt = this.rt;
    const live = rt.log.live();
    // live() holds what this process owns: its own sagas, and with a shared log those taken over.
    const sagas = live.filter((r): r is SagaRecord => r.type === 'saga' && !rt.inFlight.has(r.gtrid));
    const committed = new Set(live.filter((r) => r.type === 'commit').map((r) => r.gtrid));
    const counts = { committed: 0, compensated: 0, failed: 0 };
    const remaining: { id: string; reason: string }[] = [];
    const runs: Promise<void>[] = [];
    for (const record of sagas) {
      // A saga-mode transaction with a commit decision is finished by 2PC recovery.
      if (record.kind === 'transaction' && committed.has(record.gtrid)) continue;
      const gtrid = record.gtrid;
      const log = rt.logger.child({ txid: gtrid, saga: record.name ?? record.kind });
      let run: Promise<SagaResult['status']>;
      try {
        run = record.kind === 'transaction' ? this.compensateTransaction(record, live, log) : this.resumeOne(record, live, log);
      } catch (err) {
        remaining.push({ id: gtrid, reason: (err as Error).message });
        continue;
      }
      rt.inFlight.add(gtrid);
      const tracked = run.then(
        (status) => {
          counts[status]++;
          this.rt.logger.info({ txid: gtrid, status }, 'resumed saga finished');
        },
        (err: unknown) => {
          remaining.push({ id: gtrid, reason: (err as Error).message });
        },
      ).finally(() => rt.inFlight.delete(gtrid));
      this.background.track(tracked);
      runs.push(tracked);
    }
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const cancel = rt.clock.setTimeout(() => ((timedOut = true), resolve()), waitMs);
      void Promise.all(runs).then(() => (cancel(), resolve()));
    });
    if (timedOut) {
      for (const r of sagas) if (rt.inFlight.has(r.gtrid)) remaining.push({ id: r.gtrid, reason: 'still running (a participant keeps failing); continuing in the background' });
    }
    return { resumed: runs.length, ...counts, remaining };
  }

  private async resumeOne(record: SagaRecord, live: readonly LogRecord[], log: Logger): Promise<SagaResult['status']> {
    const plan = this.plan(record);
    const state = sagaStateFrom(record, plan.map((p) => p.name), live);
    log.info({ backward: state.backward }, 'resuming saga');
    const r = await runSaga(this.rt, plan, state, this.background.signal, log);
    this.remember(r);
    return r.status;
  }

  /** A saga-mode transaction without a commit decision: undo every local branch (the barrier skips those that never committed). */
  private compensateTransaction(record: SagaRecord, live: readonly LogRecord[], log: Logger): Promise<SagaResult['status']> {
    const done = new Set(live.flatMap((r) => (r.type === 'saga-step' && r.gtrid === record.gtrid && r.op === 'compensate' ? [r.step] : [])));
    return compensateTransactionSteps(this.rt, record, done, this.background.signal, log);
  }
}
