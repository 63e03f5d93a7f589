import type { Branch, Participant } from '../participants/participant.js';
import type { ParticipantBreaker } from './participant-breaker.js';

/**
 * `target` with some methods replaced. A Proxy, not a prototype copy: adapters keep state in
 * private fields, so every other method must still run with the adapter itself as `this`.
 */
function override<T extends object>(target: T, replaced: Partial<T>): T {
  // Bound once per method, not on every call: the coordinator reads capabilities and calls begin per branch.
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

/**
 * A branch whose prepare and commits go through the participant's breaker. A class that forwards
 * each method, not a Proxy: its methods run once per statement and per protocol step, and a
 * Proxy trap on every one of those calls was measurable per transaction.
 */
class GuardedBranch implements Branch {
  readonly insertMarker?: Branch['insertMarker'];
  readonly insertBarrier?: Branch['insertBarrier'];

  constructor(
    private readonly inner: Branch,
    private readonly breaker: ParticipantBreaker,
  ) {
    const { insertMarker, insertBarrier } = inner;
    if (insertMarker) this.insertMarker = insertMarker.bind(inner);
    if (insertBarrier) this.insertBarrier = insertBarrier.bind(inner);
  }

  get xid(): Branch['xid'] {
    return this.inner.xid;
  }

  query(sql: string, params?: readonly unknown[]): ReturnType<Branch['query']> {
    return this.inner.query(sql, params);
  }

  hasWritten(): Promise<boolean> {
    return this.inner.hasWritten();
  }

  prepare(): ReturnType<Branch['prepare']> {
    return this.breaker.run('prepare', () => this.inner.prepare());
  }

  commitPrepared(): ReturnType<Branch['commitPrepared']> {
    return this.breaker.run('commit', () => this.inner.commitPrepared(), true);
  }

  commitOnePhase(): Promise<void> {
    return this.breaker.run('commit', () => this.inner.commitOnePhase(), true);
  }

  // Rollback and release are deliberately not guarded: giving locks back must never wait for a breaker.
  rollback(): Promise<void> {
    return this.inner.rollback();
  }

  release(destroy?: boolean): void {
    this.inner.release(destroy);
  }
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
    begin: async (xid) => new GuardedBranch(await breaker.run('begin', () => p.begin(xid), finishing), breaker),
    commitPrepared: (xid) => breaker.run('commit', () => p.commitPrepared(xid), true),
  };
  if (p.beginLocal) {
    const beginLocal = p.beginLocal.bind(p);
    replaced.beginLocal = async (xid) => new GuardedBranch(await breaker.run('begin', () => beginLocal(xid), finishing), breaker);
  }
  return override(p, replaced);
}
