import type { Branch, Participant } from '../../participants/participant.js';

/**
 * Wraps a participant so that phase-two commits of its branches wait for `gate`. The demo's
 * worker uses it to order phase two (this bank commits only after the other one has), so its
 * SIGKILL lands between the two commits on every run instead of depending on which database
 * answers first. Everything else passes straight through.
 */
export function holdCommitUntil(participant: Participant, gate: Promise<void>): Participant {
  const heldBranch = (branch: Branch): Branch =>
    new Proxy(branch, {
      get(target, key) {
        if (key === 'commitPrepared') return async () => (await gate, target.commitPrepared());
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  return new Proxy(participant, {
    get(target, key) {
      if (key === 'begin') return async (...args: Parameters<Participant['begin']>) => heldBranch(await target.begin(...args));
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
