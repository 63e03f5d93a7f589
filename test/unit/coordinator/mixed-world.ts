import { pino } from 'pino';
import { createCoordinator } from '../../../coordinator/create-coordinator.js';
import type { Coordinator, CoordinatorHooks, CreateCoordinatorOptions } from '../../../coordinator/types.js';
import type { DecisionLog } from '../../../log/decision-log.js';
import { createMemoryLog } from '../../../log/memory/memory-log.js';
import { FakeDatabase, FakeParticipant } from '../../fakes/fake-participant.js';
import { FakeService, FakeServiceParticipant } from '../../fakes/fake-service.js';
import { halt, type CrashAt } from './setup.js';

/**
 * Databases a, b (2PC), c, d (local transactions only, like SQL Server), services s, t (HTTP-
 * like), and one decision log, all outliving the coordinators built over them.
 */
export interface MixedWorld {
  readonly db: Readonly<Record<'a' | 'b' | 'c' | 'd', FakeDatabase>>;
  readonly svc: Readonly<Record<'s' | 't', FakeService>>;
  readonly log: DecisionLog;
  coordinator(options?: CoordinatorHooks & { crashAt?: CrashAt & { step?: string }; decisionIn?: string; only?: readonly string[]; decisionLog?: DecisionLog }): Promise<Coordinator>;
}

/** Builds a fresh mixed world. */
export function mixedWorld(): MixedWorld {
  const db = { a: new FakeDatabase(), b: new FakeDatabase(), c: new FakeDatabase(), d: new FakeDatabase() };
  const svc = { s: new FakeService(), t: new FakeService() };
  const log = createMemoryLog();
  return {
    db,
    svc,
    log,
    coordinator: ({ crashAt, decisionIn, only, decisionLog, ...hooks } = {}) => {
      const dbs = Object.entries(db).map(([n, d]) => new FakeParticipant(n, d, n === 'c' || n === 'd'));
      const services = Object.entries(svc).map(([n, s]) => new FakeServiceParticipant(n, s));
      const all = [...dbs, ...services].filter((p) => !only || only.includes(p.name));
      const crash: CoordinatorHooks = crashAt
        ? {
            onProtocolPoint: (point, info) => {
              if (point !== crashAt.point) return;
              if (crashAt.participant && info.participant !== crashAt.participant) return;
              if (crashAt.step && info.step !== crashAt.step) return;
              for (const p of all) p.dead = true;
              for (const d of Object.values(db)) d.detachAll();
              return halt();
            },
          }
        : {};
      const options: CreateCoordinatorOptions = {
        id: 'mixed',
        log: { type: 'memory' },
        participants: Object.fromEntries(all.map((p) => [p.name, { driver: 'custom' as const, adapter: p, breaker: { resetTimeoutMs: 20 } }])),
        recovery: { intervalMs: 0, onStart: false },
        backoff: { initialMs: 1, maxMs: 5 },
        ...(decisionIn ? { decisionIn } : {}),
        logger: pino({ level: 'silent' }),
        ...crash,
        ...hooks,
      };
      return createCoordinator({ ...options, decisionLog: decisionLog ?? log });
    },
  };
}
