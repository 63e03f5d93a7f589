import type { ProtocolPoint } from './types.js';

/**
 * States of one global transaction under presumed abort. This table is the whole protocol:
 *
 *   active ──► preparing ──► deciding ──► committing ──► committed
 *     │  │         │            │
 *     │  └► one-phase ─► committed / aborted / unknown
 *     └──────────┴────────────┴──► aborting ──► aborted
 *
 * `deciding` is the forced write of the commit record: the transaction is committed exactly
 * when that record is durable, and aborted in every other case (presumed abort). If the log
 * cannot tell whether a failed write reached the disk, the outcome is `unknown` until recovery
 * reads the reopened log.
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

/** The crash points, in protocol order (tests iterate over them). */
export const PROTOCOL_POINTS: readonly ProtocolPoint[] = [
  'before-prepare',
  'after-prepare',
  'after-decision',
  'after-commit',
  'before-end',
];
