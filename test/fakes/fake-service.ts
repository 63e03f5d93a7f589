import { TxcError } from '../../coordinator/errors.js';
import type { Branch, InvokeRequest, InvokeResult, Participant, ResolveResult } from '../../participants/participant.js';
import type { Xid } from '../../coordinator/xid.js';

/** One effect a {@link FakeService} applied. */
export interface Effect {
  readonly key: string;
  readonly path: string;
  readonly body: unknown;
}

/**
 * An HTTP-like service in memory: applies each idempotency key at most once (a repeat gets the
 * first answer), and can be told to fail or refuse; it outlives coordinators, like a real one.
 */
export class FakeService {
  readonly effects: Effect[] = [];
  private readonly answers = new Map<string, InvokeResult>();
  /** Paths answered as a business refusal (409). */
  readonly refuse = new Set<string>();
  /** Next N calls fail as unavailable without applying anything. */
  failNext = 0;
  /** Next N calls apply, then fail as unavailable (the "possibly done" case). */
  applyThenFail = 0;
  /** Every call fails as unavailable (a dead service). */
  down = false;
  /** Paths that always answer 400 (can never succeed). */
  readonly broken = new Set<string>();
  calls = 0;

  async handle(req: InvokeRequest): Promise<InvokeResult> {
    this.calls++;
    const unavailable = () => new TxcError('TXC_PARTICIPANT_UNAVAILABLE', 'fake service unavailable', { retryable: true });
    if (this.down) throw unavailable();
    if (this.failNext > 0) {
      this.failNext--;
      throw unavailable();
    }
    const seen = this.answers.get(req.idempotencyKey);
    if (seen) return seen;
    if (this.broken.has(req.path)) throw new TxcError('TXC_STEP_MISCONFIGURED', `400 on ${req.path}`);
    if (this.refuse.has(req.path)) throw new TxcError('TXC_STEP_REJECTED', `409 on ${req.path}`);
    this.effects.push({ key: req.idempotencyKey, path: req.path, body: req.body });
    const answer = { status: 200, body: { ok: true, seq: this.effects.length } };
    this.answers.set(req.idempotencyKey, answer);
    if (this.applyThenFail > 0) {
      this.applyThenFail--;
      throw unavailable();
    }
    return answer;
  }

  /** Effects on `path`. */
  count(path: string): number {
    return this.effects.filter((e) => e.path === path).length;
  }
}

/** A compensation-only Participant over a {@link FakeService}. */
export class FakeServiceParticipant implements Participant {
  readonly driver = 'fake-http';
  readonly capabilities = { twoPhase: false, localTransactions: false };
  /** Set when the coordinator using it "crashed": its calls never return. */
  dead = false;

  constructor(
    readonly name: string,
    readonly service: FakeService,
  ) {}

  async preflight(): Promise<void> {}
  begin(_xid: Xid): Promise<Branch> {
    return Promise.reject(new TxcError('TXC_UNSUPPORTED', 'a service takes no statements'));
  }
  async listInDoubt(): Promise<Xid[]> {
    return [];
  }
  commitPrepared(): Promise<ResolveResult> {
    return Promise.reject(new TxcError('TXC_UNSUPPORTED', 'a service cannot prepare'));
  }
  rollbackPrepared(): Promise<ResolveResult> {
    return Promise.reject(new TxcError('TXC_UNSUPPORTED', 'a service cannot prepare'));
  }
  async invoke(req: InvokeRequest): Promise<InvokeResult> {
    if (this.dead) await new Promise<void>(() => undefined);
    return this.service.handle(req);
  }
  async close(): Promise<void> {}
}
