import { pino } from 'pino';
import { createCoordinator } from '../../../coordinator/create-coordinator.js';
import type { Coordinator, CoordinatorHooks, ProtocolPoint } from '../../../coordinator/types.js';
import type { DecisionLog } from '../../../log/decision-log.js';
import { createMemoryLog } from '../../../log/memory/memory-log.js';
import { FakeDatabase, FakeParticipant } from '../../fakes/fake-participant.js';

/** Two fake databases that outlive coordinators, and a shared decision log (like a log directory). */
export interface World {
  readonly a: FakeDatabase;
  readonly b: FakeDatabase;
  readonly log: DecisionLog;
  /** A coordinator over the world: a new one after a "crash" sees the same databases and log. */
  coordinator(hooks?: CoordinatorHooks & { prepareTimeoutMs?: number; phaseTwoTimeoutMs?: number; onStart?: boolean; crashAt?: CrashAt }): Promise<Coordinator>;
}

/** Where a simulated SIGKILL hits: every operation of that coordinator stops there, on every branch. */
export interface CrashAt {
  readonly point: ProtocolPoint;
  readonly participant?: string;
}

/** Builds a fresh world. */
export function world(): World {
  const a = new FakeDatabase();
  const b = new FakeDatabase();
  const log = createMemoryLog();
  return {
    a,
    b,
    log,
    coordinator: ({ prepareTimeoutMs, phaseTwoTimeoutMs, onStart, crashAt, ...hooks } = {}) => {
      const pa = new FakeParticipant('a', a);
      const pb = new FakeParticipant('b', b);
      const crash: CoordinatorHooks = crashAt
        ? {
            onProtocolPoint: (point, info) => {
              if (point !== crashAt.point || (crashAt.participant && info.participant !== crashAt.participant)) return;
              // The process is gone: its sessions detach and nothing it started goes further.
              pa.dead = pb.dead = true;
              a.detachAll();
              b.detachAll();
              return halt();
            },
          }
        : {};
      return createCoordinator({
        id: 'unit',
        log: { type: 'memory' },
        participants: {
          a: { driver: 'custom', adapter: pa },
          b: { driver: 'custom', adapter: pb },
        },
        recovery: { intervalMs: 0, onStart: onStart ?? true },
        backoff: { initialMs: 1, maxMs: 5 },
        ...(prepareTimeoutMs ? { prepareTimeoutMs } : {}),
        ...(phaseTwoTimeoutMs ? { phaseTwoTimeoutMs } : {}),
        logger: pino({ level: 'silent' }),
        decisionLog: log,
        ...crash,
        ...hooks,
      });
    },
  };
}

/** A transfer of `amount` from a.x to b.y (both keys start at 100 unless set). */
export async function transfer(coord: Coordinator, amount: number, w: World) {
  return coord.transaction(async (tx) => {
    await tx.query('a', 'set x', [(w.a.data.get('x') ?? 100) - amount]);
    await tx.query('b', 'set y', [(w.b.data.get('y') ?? 100) + amount]);
  });
}

/** Never resolves: the coordinator "process" stops at this point, as if killed. */
export const halt = () => new Promise<void>(() => undefined);
