import type { Branch, Participant } from '../participants/participant.js';
import type { ParticipantBreaker } from './participant-breaker.js';

/**
 * `target` with some methods replaced. A Proxy, not a prototype copy: adapters keep state in
 * private fields, so every other method must still run with the adapter itself as `this`.
 */
function override<T extends object>(target: T, replaced: Partial<T>): T {
  // Bound once per method, not on every call: branch.query runs through here per statement.
  const bound = new Map<PropertyKey, { readonly of: unknown; readonly fn: unknown }>();
  return new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(replaced, prop)) return (replaced as Record<PropertyKey, unknown>)[prop];
      const v: unknown = Reflect.get(t, prop, t);
      if (typeof v !== 'function') return v;
      let b = bound.get(prop);
      if (b?.of !== v) bound.set(prop, (b = { of: v, fn: (v as (...a: unknown[]) => unknown).bind(t) }));
      return b.fn;
    },
  });
}

function guardBranch(branch: Branch, breaker: ParticipantBreaker): Branch {
  // Rollback and release are deliberately not guarded: giving locks back must never wait for a breaker.
  return override(branch, {
    prepare: () => breaker.run('prepare', () => branch.prepare()),
    commitPrepared: () => breaker.run('commit', () => branch.commitPrepared(), true),
    commitOnePhase: () => breaker.run('commit', () => branch.commitOnePhase(), true),
  });
}

/**
 * The participant as the coordinator sees it, for new work: begin and prepare go through its
 * circuit breaker (and fail fast while it is open); commits are counted but never refused (see
 * ParticipantBreaker); scans (listInDoubt) and rollbacks bypass it, so recovery always sees and
 * can release what is in doubt. Saga calls are guarded where they are made (action vs compensation).
 * With `finishing`, begin is never refused either: the view used by compensations and recovery.
 */
export function guardParticipant(p: Participant, breaker: ParticipantBreaker, finishing = false): Participant {
  const replaced: Partial<Participant> = {
    begin: async (xid) => guardBranch(await breaker.run('begin', () => p.begin(xid), finishing), breaker),
    commitPrepared: (xid) => breaker.run('commit', () => p.commitPrepared(xid), true),
  };
  if (p.beginLocal) {
    const beginLocal = p.beginLocal.bind(p);
    replaced.beginLocal = async (xid) => guardBranch(await breaker.run('begin', () => beginLocal(xid), finishing), breaker);
  }
  return override(p, replaced);
}
