import { TxcError } from '../coordinator/errors.js';
import type { Runtime } from '../coordinator/runtime.js';
import type { JsonValue, SagaOperation, SagaStepSpec } from '../log/log-record.js';
import type { InvokeRequest, InvokeResult, Participant, QueryResult } from '../participants/participant.js';
import { runAction } from './barrier.js';
import type { SagaHandlerStep, SagaStepContext } from './saga-types.js';

type Query = (sql: string, params?: readonly unknown[]) => Promise<QueryResult>;

/** What running one compensation attempt did. */
export type CompensationRun = 'done' | 'null' | 'duplicate';

/** One step as the runner executes it, whatever it was defined as. */
export interface PlanStep {
  readonly name: string;
  readonly participant?: string;
  /** Steps that must be done first. */
  readonly after: readonly string[];
  readonly timeoutMs?: number;
  /** One attempt of the action (idempotent: by key or barrier). */
  action(signal: AbortSignal, results: Readonly<Record<string, JsonValue | undefined>>): Promise<JsonValue | undefined>;
  /** One attempt of the compensation, or undefined when the step has nothing to undo. */
  readonly compensate?: (signal: AbortSignal, result: JsonValue | undefined, results: Readonly<Record<string, JsonValue | undefined>>) => Promise<CompensationRun>;
  /** Compensation runs behind the database barrier (compensateStep), not as plain retries. */
  readonly barrier: boolean;
  /** For barrier steps with something to undo: the statements of the compensation. */
  readonly barrierWork?: (signal: AbortSignal, result: JsonValue | undefined, results: Readonly<Record<string, JsonValue | undefined>>) => (query: Query) => Promise<void>;
}

/** The idempotency key of one operation of one step: the same on every retry, in every process. */
export function idempotencyKey(gtrid: string, step: string, op: 'action' | 'compensate', index = 0): string {
  return index === 0 ? `${gtrid}:${step}:${op}` : `${gtrid}:${step}:${op}:${index}`;
}

function participantOf(rt: Runtime, name: string, step: string): Participant {
  const p = rt.participants.get(name);
  if (!p) throw new TxcError('TXC_PARTICIPANT_UNKNOWN', `Saga step '${step}' names participant '${name}', which is not configured`, { details: { participant: name } });
  return p;
}

function asList(c: SagaOperation | readonly SagaOperation[] | undefined): readonly SagaOperation[] {
  if (c === undefined) return [];
  return Array.isArray(c) ? (c as readonly SagaOperation[]) : [c as SagaOperation];
}

/**
 * Calls a service through its circuit breaker: an action is new work (refused while the breaker
 * is open), a compensation finishes work (never refused; its success closes the breaker).
 */
function invokeGuarded(rt: Runtime, p: Participant, op: 'action' | 'compensate', req: InvokeRequest): Promise<InvokeResult> {
  const invoke = p.invoke;
  if (!invoke) return Promise.reject(new TxcError('TXC_UNSUPPORTED', `Participant ${p.name} (${p.driver}) takes SQL steps, not HTTP paths`, { details: { participant: p.name } }));
  const call = () => invoke.call(p, req);
  const breaker = rt.breakers.get(p.name);
  return breaker ? breaker.run(op, call, op === 'compensate') : call();
}

async function runOps(rt: Runtime, p: Participant, gtrid: string, step: string, op: 'action' | 'compensate', ops: readonly SagaOperation[], signal: AbortSignal, query?: Query): Promise<JsonValue | undefined> {
  let last: JsonValue | undefined;
  for (const [i, o] of ops.entries()) {
    if ('path' in o) {
      const r = await invokeGuarded(rt, p, op, { path: o.path, ...(o.body !== undefined ? { body: o.body } : {}), idempotencyKey: idempotencyKey(gtrid, step, op, i), signal });
      last = (r.body ?? null) as JsonValue;
    } else {
      if (!query) throw new TxcError('TXC_UNSUPPORTED', `Participant ${p.name} (${p.driver}) takes HTTP paths, not SQL`, { details: { participant: p.name } });
      const r = await query(o.sql, o.params);
      last = { rowCount: r.rowCount };
    }
  }
  return last;
}

function isSql(ops: readonly SagaOperation[]): boolean {
  return ops.some((o) => 'sql' in o);
}

/** The executable form of a step given as data. */
export function planDataStep(rt: Runtime, gtrid: string, spec: SagaStepSpec, previous: string | undefined): PlanStep {
  const p = participantOf(rt, spec.participant, spec.name);
  const actionOps = spec.action ? [spec.action] : [];
  const compOps = asList(spec.compensate);
  const sql = isSql(actionOps) || isSql(compOps);
  return {
    name: spec.name,
    participant: spec.participant,
    after: spec.after ?? (previous === undefined ? [] : [previous]),
    ...(spec.timeoutMs !== undefined ? { timeoutMs: spec.timeoutMs } : {}),
    barrier: sql,
    async action(signal) {
      if (!sql) return runOps(rt, p, gtrid, spec.name, 'action', actionOps, signal);
      const r = await runAction(p, gtrid, spec.name, (query) => runOps(rt, p, gtrid, spec.name, 'action', actionOps, signal, query));
      if (r.kind === 'hanging') throw new TxcError('TXC_STEP_REJECTED', `Step ${spec.name} was already compensated before its action arrived, so the action did nothing`);
      return r.kind === 'applied' ? r.value : null;
    },
    ...(compOps.length > 0 && sql ? { barrierWork: () => dataCompensationWork(spec) } : {}),
    ...(compOps.length > 0 && !sql
      ? {
          compensate: async (signal: AbortSignal) => {
            // Barrier compensations run through compensateStep; this path is for HTTP services.
            await runOps(rt, p, gtrid, spec.name, 'compensate', compOps, signal);
            return 'done' as const;
          },
        }
      : {}),
  };
}

/** SQL compensation work of a data step, for compensateStep (behind the barrier). */
export function dataCompensationWork(spec: SagaStepSpec): (query: Query) => Promise<void> {
  const ops = asList(spec.compensate);
  return async (query) => {
    for (const o of ops) if ('sql' in o) await query(o.sql, o.params);
  };
}

/** The executable form of a handler step of a defined saga. */
export function planHandlerStep(rt: Runtime, gtrid: string, input: JsonValue, def: SagaHandlerStep, previous: string | undefined): PlanStep {
  const p = def.participant === undefined ? undefined : participantOf(rt, def.participant, def.name);
  const db = p?.beginLocal !== undefined && p.invoke === undefined;
  const context = (op: 'action' | 'compensate', signal: AbortSignal, results: Readonly<Record<string, JsonValue | undefined>>, query?: Query): SagaStepContext => ({
    sagaId: gtrid,
    step: def.name,
    input,
    results,
    idempotencyKey: idempotencyKey(gtrid, def.name, op),
    signal,
    query: query ?? (() => Promise.reject(new TxcError('TXC_UNSUPPORTED', `Step ${def.name} names no database participant, so ctx.query is not available`))),
    async call(path, body) {
      if (!p?.invoke) throw new TxcError('TXC_UNSUPPORTED', `Step ${def.name} names no HTTP participant, so ctx.call is not available`);
      const r = await invokeGuarded(rt, p, op, { path, ...(body !== undefined ? { body } : {}), idempotencyKey: idempotencyKey(gtrid, def.name, op), signal });
      return (r.body ?? null) as JsonValue;
    },
  });
  const compensate = def.compensate;
  return {
    name: def.name,
    ...(def.participant !== undefined ? { participant: def.participant } : {}),
    after: def.after ?? (previous === undefined ? [] : [previous]),
    ...(def.timeoutMs !== undefined ? { timeoutMs: def.timeoutMs } : {}),
    barrier: db,
    async action(signal, results) {
      if (!db || !p) return (await def.action(context('action', signal, results))) ?? null;
      const r = await runAction(p, gtrid, def.name, async (query) => (await def.action(context('action', signal, results, query))) ?? null);
      if (r.kind === 'hanging') throw new TxcError('TXC_STEP_REJECTED', `Step ${def.name} was already compensated before its action arrived, so the action did nothing`);
      return r.kind === 'applied' ? r.value : null;
    },
    ...(compensate && db
      ? { barrierWork: (signal: AbortSignal, result: JsonValue | undefined, results: Readonly<Record<string, JsonValue | undefined>>) => handlerCompensationWork(gtrid, input, def, result, results, signal) as (query: Query) => Promise<void> }
      : {}),
    ...(compensate && !db
      ? {
          compensate: async (signal: AbortSignal, result: JsonValue | undefined, results: Readonly<Record<string, JsonValue | undefined>>) => {
            await compensate({ ...context('compensate', signal, results), result });
            return 'done' as const;
          },
        }
      : {}),
  };
}

/** SQL compensation work of a handler step on a database, for compensateStep. */
export function handlerCompensationWork(gtrid: string, input: JsonValue, def: SagaHandlerStep, result: JsonValue | undefined, results: Readonly<Record<string, JsonValue | undefined>>, signal: AbortSignal): ((query: Query) => Promise<void>) | undefined {
  const compensate = def.compensate;
  if (!compensate) return undefined;
  return async (query) => {
    await compensate({
      sagaId: gtrid,
      step: def.name,
      input,
      results,
      idempotencyKey: idempotencyKey(gtrid, def.name, 'compensate'),
      signal,
      query,
      call: () => Promise.reject(new TxcError('TXC_UNSUPPORTED', `Step ${def.name} runs on a database; ctx.call is not available`)),
      result,
    });
  };
}
