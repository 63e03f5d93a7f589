import type { ProtocolPoint } from './types.js';

/**
 * States of one global transaction under presumed abort. This table is the whole protocol:
 *
 *   active ──► preparing ──► deciding ──► committing ──► committed
 *     │  │         │            │
 *     │  └► one-phase ─► committed / aborted / unknown
 *     └──────────┴────────────┴──► aborting ──► aborted
 *
 * `deciding` is where the decision becomes durable: the forced commit record (2PC), the local
 * commit of the marker row in the last resource (last-resource), or the local commits of the
 * saga-mode branches after the forced saga record (saga). The transaction is committed exactly
 * when that decision is durable, and aborted in every other case (presumed abort). If neither
 * the log nor the marker can tell yet, the outcome is `unknown` until recovery settles it.
 */
export const TRANSITIONS = {
  active: ['preparing', 'one-phase', 'committed', 'aborting'],
  preparing: ['deciding', 'aborting'],
  deciding: ['committing', 'aborting', 'unknown'],
  committing: ['committed'],
  'one-phase': ['committed', 'aborted', 'unknown'],
  aborting: ['aborted'],
  committed: [],
  aborted: [],
  unknown: [],
} as const satisfies Record<string, readonly string[]>;

/** A global transaction's state. */
export type TxState = keyof typeof TRANSITIONS;

/** Tracks one transaction's state and refuses any move the protocol does not allow. */
export class TxStateMachine {
  private current: TxState = 'active';

  /** The current state. */
  get state(): TxState {
    return this.current;
  }

  /** Moves to `next`; throws (a bug, not a user error) on an illegal transition. */
  to(next: TxState): void {
    const allowed: readonly string[] = TRANSITIONS[this.current];
    if (!allowed.includes(next)) throw new Error(`txcoord bug: illegal transition ${this.current} -> ${next}`);
    this.current = next;
  }
}

/** Saga step points, in order. */
export const SAGA_POINTS: readonly ProtocolPoint[] = ['saga-before-action', 'saga-after-action', 'saga-before-compensate', 'saga-after-compensate'];

/** The crash points of 2PC, in protocol order (tests iterate over them). */
export const PROTOCOL_POINTS: readonly ProtocolPoint[] = [
  'before-prepare',
  'after-prepare',
  'after-decision',
  'after-commit',
  'before-end',
];

/** The crash points of a last-resource transaction, in protocol order. */
export const LAST_RESOURCE_POINTS: readonly ProtocolPoint[] = ['before-prepare', 'after-prepare', 'before-marker', 'after-decision', 'after-commit', 'before-end'];

/** Every protocol point. */
export const ALL_PROTOCOL_POINTS: readonly ProtocolPoint[] = [...new Set([...PROTOCOL_POINTS, ...LAST_RESOURCE_POINTS, ...SAGA_POINTS])];
