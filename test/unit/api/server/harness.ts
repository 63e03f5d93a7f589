import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino, type Logger } from 'pino';
import { buildServer } from '../../../../api/server/build-server.js';
import type { LogProbe } from '../../../../api/server/log-probe.js';
import type { AbortAnswer, CommitAnswer, ResolveAnswer, SagaView, TransactionView, WireBranch } from '../../../../client/wire-types.js';
import { TxcError } from '../../../../coordinator/errors.js';
import { snapshotStats, createStatsCounters } from '../../../../coordinator/stats.js';
import type {
  Coordinator,
  CoordinatorConfig,
  ExternalBeginOptions,
  ExternalTransactions,
  InDoubtBranch,
  QueryOptions,
  RecoveryReport,
  TransactionOptions,
  TransactionResult,
  Tx,
} from '../../../../coordinator/types.js';
import type { Participant, QueryResult } from '../../../../participants/participant.js';
import type { SagaDefinition, SagaResult, SagaRunOptions } from '../../../../sagas/saga-types.js';
import { FakeDatabase, FakeParticipant } from '../../../fakes/fake-participant.js';
import { FakeService, FakeServiceParticipant } from '../../../fakes/fake-service.js';

export const CLIENT_TOKEN = 'client-token-0123456789abcdef';
export const ADMIN_TOKEN = 'admin-token-fedcba9876543210';
export const client = { authorization: `Bearer ${CLIENT_TOKEN}` };
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** A well-formed id of coordinator `unit`. */
export const gtrid = (n = 1) => `txc1.unit.${n.toString(16).padStart(32, '0')}`;

/** A stub adapter that only declares what it is (the fake coordinator never calls it). */
export function stubAdapter(name: string, driver: string, twoPhase: boolean): Participant {
  const no = () => Promise.reject(new Error('stub'));
  return {
    name,
    driver,
    capabilities: { twoPhase, localTransactions: true },
    preflight: async () => undefined,
    begin: no,
    listInDoubt: async () => [],
    commitPrepared: no,
    rollbackPrepared: no,
    close: async () => undefined,
  };
}

/**
 * The participants of the route tests: `ledger` (can prepare), `legacy` (one-phase), `billing`
 * (an HTTP service), `crm` (declares itself mysql, for `?` placeholders).
 */
export function testConfig(overrides: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  return {
    id: 'unit',
    log: { type: 'memory' },
    participants: {
      ledger: {
        driver: 'custom',
        adapter: new FakeParticipant('ledger', new FakeDatabase()),
        statements: {
          debit: { sql: 'update accounts set balance = balance - :amount where id = :id', compensate: 'update accounts set balance = balance + :amount where id = :id' },
          read: 'select balance::text from accounts where id = :id',
        },
      },
      legacy: {
        driver: 'custom',
        adapter: new FakeParticipant('legacy', new FakeDatabase(), true),
        statements: { audit: { sql: 'insert into audit(msg) values (:msg)', compensate: 'delete from audit where msg = :msg' }, note: 'insert into notes(msg) values (:msg)' },
      },
      billing: { driver: 'custom', adapter: new FakeServiceParticipant('billing', new FakeService()) },
      crm: { driver: 'custom', adapter: stubAdapter('crm', 'mysql', true), statements: { touch: "update customers set seen = 'y' where id = :id or parent = :id" } },
    },
    api: { tokens: { [CLIENT_TOKEN]: 'client', [ADMIN_TOKEN]: 'admin' } },
    ...overrides,
  };
}

/** One recorded call on the fake coordinator. */
export interface Call {
  readonly method: string;
  readonly args: readonly unknown[];
}

/**
 * A Coordinator that records calls and answers from in-memory state, so every route and error
 * path can be driven without databases. Override any method per test.
 */
export class FakeCoordinator implements Coordinator {
  readonly id = 'unit';
  readonly calls: Call[] = [];
  readonly counters = createStatsCounters();
  readonly queries: { participant: string; sql: string; params: readonly unknown[] | undefined; options: QueryOptions | undefined }[] = [];
  readonly views = new Map<string, TransactionView>();
  readonly sagaViews = new Map<string, SagaView>();
  readonly keys = new Map<string, string>();
  branches: InDoubtBranch[] = [];
  failures: RecoveryReport['failures'] = [];
  breakers: Record<string, { state: string; opened: number }> = { ledger: { state: 'closed', opened: 0 } };
  /** Answers each tx.query. */
  answer: (participant: string, sql: string, params: readonly unknown[] | undefined) => QueryResult = () => ({ rows: [], rowCount: 1 });
  private next = 1;
  closed = false;

  private newId(): string {
    return gtrid(this.next++);
  }

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.closed) throw new TxcError('TXC_COORDINATOR_CLOSED');
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<TransactionResult<T>> {
    this.record('transaction', options);
    const id = this.newId();
    const tx: Tx = {
      id,
      query: async (participant, sql, params, opts) => {
        this.queries.push({ participant, sql, params, options: opts });
        return this.answer(participant, sql, params);
      },
    };
    const value = await fn(tx);
    this.counters.committed['2pc']++;
    return { id, outcome: 'committed', mode: '2pc', guarantee: 'atomic', value, participants: [], phaseTwoPending: false };
  }

  saga(): Promise<SagaResult> {
    return Promise.reject(new Error('not used'));
  }
  defineSaga(): void {}
  runSaga(): Promise<SagaResult> {
    return Promise.reject(new Error('not used'));
  }

  async submitSaga(definition: SagaDefinition, options?: SagaRunOptions): Promise<{ id: string; existing: boolean; result: Promise<SagaResult> }> {
    this.record('submitSaga', definition, options);
    const seen = options?.idempotencyKey !== undefined ? this.keys.get(options.idempotencyKey) : undefined;
    if (seen) return { id: seen, existing: true, result: Promise.resolve({ id: seen, mode: 'saga', status: 'committed', guarantee: 'compensating', steps: [] }) };
    const id = this.newId();
    if (options?.idempotencyKey !== undefined) this.keys.set(options.idempotencyKey, id);
    this.sagaViews.set(id, { id, status: 'running', steps: definition.steps.map((s) => ({ name: s.name, participant: s.participant, action: 'not-run', compensation: 'not-needed' })) });
    this.counters.sagas.committed++;
    return { id, existing: false, result: Promise.resolve({ id, mode: 'saga', status: 'committed', guarantee: 'compensating', steps: [] }) };
  }

  async sagaStatus(id: string): Promise<SagaView | undefined> {
    this.record('sagaStatus', id);
    return this.sagaViews.get(id);
  }

  readonly external: ExternalTransactions = {
    begin: async (options?: ExternalBeginOptions) => {
      this.record('external.begin', options);
      const id = this.newId();
      const view: TransactionView = { id, state: 'active', deadlineAt: 1_700_000_000_000, branches: [] };
      this.views.set(id, view);
      for (const p of options?.participants ?? []) await this.external.addBranch(id, p);
      return this.views.get(id) as TransactionView;
    },
    addBranch: async (id: string, participant: string): Promise<WireBranch> => {
      this.record('external.addBranch', id, participant);
      const view = this.known(id);
      if (view.state !== 'active') throw new TxcError('TXC_TRANSACTION_CLOSED', `Transaction ${id} is already ${view.state}`);
      const branch: WireBranch = { participant, driver: 'postgres', formatId: 0x54584331, gtrid: id, bqual: `b${view.branches.length}`, gid: `${id}.b${view.branches.length}` };
      this.views.set(id, { ...view, branches: [...view.branches, branch] });
      return branch;
    },
    commit: async (id: string): Promise<CommitAnswer> => {
      this.record('external.commit', id);
      const view = this.known(id);
      if (view.state === 'aborted') throw new TxcError('TXC_TRANSACTION_CLOSED', `Transaction ${id} was aborted`);
      this.views.set(id, { ...view, state: 'committed' });
      return { id, outcome: 'committed', phaseTwoPending: false };
    },
    abort: async (id: string, reason?: string): Promise<AbortAnswer> => {
      this.record('external.abort', id, reason);
      const view = this.known(id);
      this.views.set(id, { ...view, state: 'aborted', ...(reason ? { reason } : {}) });
      return { id, outcome: 'aborted' };
    },
    get: (id: string) => this.views.get(id),
  };

  private known(id: string): TransactionView {
    const view = this.views.get(id);
    if (!view) throw new TxcError('TXC_NOT_FOUND', `No transaction ${id}`);
    return view;
  }

  async resolve(xid: string, outcome: 'commit' | 'rollback', options?: { force?: boolean }): Promise<ResolveAnswer> {
    this.record('resolve', xid, outcome, options);
    const targets = this.branches.filter((b) => b.gtrid === xid || `${b.gtrid}.${b.bqual}` === xid);
    if (targets.length === 0) throw new TxcError('TXC_NOT_FOUND', `No prepared branch ${xid}`);
    const decision = targets[0]?.decision ?? 'unknown';
    if (decision !== (outcome === 'commit' ? 'commit' : 'rollback') && !options?.force) {
      throw new TxcError('TXC_RESOLVE_REFUSED', `Refusing to ${outcome} ${xid}: the log decided ${decision}`, { details: { id: xid, logDecision: decision } });
    }
    this.branches = this.branches.filter((b) => !targets.includes(b));
    return { xid, outcome, logDecision: decision, resolved: targets.length };
  }

  async recover(options?: { dryRun?: boolean }): Promise<RecoveryReport> {
    this.record('recover', options);
    return {
      sagas: { resumed: 0, committed: 0, compensated: 0, failed: 0, remaining: [] },
      markersRemoved: 0,
      barrierRowsRemoved: 0,
      committed: 0,
      rolledBack: 0,
      ended: 0,
      heuristic: [],
      remaining: [...this.branches],
      failures: [...this.failures],
    };
  }

  stats() {
    return snapshotStats(this.counters, 0, this.breakers);
  }

  async inDoubt(): Promise<InDoubtBranch[]> {
    this.record('inDoubt');
    return [...this.branches];
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Collects pino lines in memory. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

/** A test server over a fake coordinator (or the one given). */
export interface TestServer {
  readonly app: FastifyInstance;
  readonly coord: FakeCoordinator;
  readonly logs: LogCapture;
  /** `app.inject` with the JSON body parsed. */
  request(options: InjectOptions): Promise<LightMyRequestResponse & { json<T = unknown>(): T }>;
}

/** Builds a server over a {@link FakeCoordinator}, logging at `level` into memory. */
export async function testServer(options: { config?: CoordinatorConfig; coord?: FakeCoordinator; logger?: Logger; level?: string; logProbe?: LogProbe } = {}): Promise<TestServer> {
  const coord = options.coord ?? new FakeCoordinator();
  const logs = new LogCapture();
  const logger = options.logger ?? pino({ level: options.level ?? 'info' }, logs);
  const app = await buildServer({ coord, config: options.config ?? testConfig(), logger, processMetrics: false, logProbe: options.logProbe ?? (async () => 'ok') });
  return { app, coord, logs, request: (o) => app.inject(o) };
}

/** The error body of an answer. */
export function errorOf(res: LightMyRequestResponse): { code: string; message: string; details?: Record<string, unknown> } {
  return (res.json() as { error: { code: string; message: string; details?: Record<string, unknown> } }).error;
}
