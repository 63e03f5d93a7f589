import { branchXid, newGtrid, toMysqlXid, toPgGid } from '../../../coordinator/xid.js';
import type { TransactionView, WireBranch } from '../../../client/wire-types.js';
import type { FakeDatabase } from './fake-drivers.js';
import { wireError, type FakeReply, type RecordedRequest } from './fake-server.js';

/**
 * The /v1/transactions routes with the server's semantics (coordinator/external-transactions.ts):
 * commit checks that every branch is prepared in the fake database, else rolls back and answers
 * 409 TXC_PREPARE_FAILED; a repeated commit answers from the state; abort rolls back prepared
 * branches; GET shows the view.
 */
export class FakeTransactionsApi {
  readonly views = new Map<string, TransactionView>();
  /** MySQL branches still held by their preparing session when commit ran (should stay empty). */
  readonly attachedAtCommit: string[] = [];
  readonly commits: string[] = [];
  readonly aborts: string[] = [];

  constructor(
    private readonly db: FakeDatabase,
    private readonly drivers: Readonly<Record<string, string>>,
  ) {}

  /** The route function; undefined for a route it does not serve. */
  readonly route = (req: RecordedRequest): FakeReply | undefined => {
    const path = req.url.split('?')[0] ?? '';
    if (req.method === 'POST' && path === '/v1/transactions') return this.begin(req.json as { participants?: string[] });
    const m = /^\/v1\/transactions\/([^/]+)(?:\/(commit|abort))?$/.exec(path);
    if (!m) return undefined;
    const id = decodeURIComponent(m[1] ?? '');
    const view = this.views.get(id);
    if (!view) return wireError(404, 'TXC_NOT_FOUND', `No client-driven transaction ${id} is known here`, { id });
    if (req.method === 'GET' && m[2] === undefined) return { status: 200, body: view };
    if (req.method === 'POST' && m[2] === 'commit') return this.commit(view);
    if (req.method === 'POST' && m[2] === 'abort') return this.abort(view, 'aborted by request');
    return undefined;
  };

  private begin(body: { participants?: string[] }): FakeReply {
    const id = newGtrid('fake');
    const branches: WireBranch[] = (body.participants ?? []).map((participant, i) => {
      const xid = branchXid(id, i);
      const driver = this.drivers[participant] ?? 'postgres';
      return {
        participant,
        driver,
        ...xid,
        ...(driver === 'postgres' ? { gid: toPgGid(xid) } : {}),
        ...(driver === 'mysql' ? { xa: toMysqlXid(xid) } : {}),
      };
    });
    const view: TransactionView = { id, state: 'active', deadlineAt: Date.now() + 60_000, branches };
    this.views.set(id, view);
    return { status: 201, body: view };
  }

  private commit(view: TransactionView): FakeReply {
    this.commits.push(view.id);
    if (view.state === 'committed' || view.state === 'committing') {
      return { status: 200, body: { id: view.id, outcome: 'committed', phaseTwoPending: view.state === 'committing' } };
    }
    if (view.state === 'aborted') return wireError(409, 'TXC_TRANSACTION_CLOSED', `Transaction ${view.id} was aborted (${view.reason ?? ''})`, { state: 'aborted' });
    const missing = view.branches.filter((b) => !this.db.prepared.has(key(b))).map((b) => b.participant);
    if (missing.length > 0) {
      this.rollBack(view, `not prepared on ${missing.join(', ')}`);
      return wireError(409, 'TXC_PREPARE_FAILED', `Transaction ${view.id} was not prepared on ${missing.join(', ')}, so it was rolled back everywhere`, {
        participants: missing.join(','),
      });
    }
    for (const b of view.branches) {
      if (this.db.attached.has(key(b))) this.attachedAtCommit.push(b.participant);
      this.db.prepared.delete(key(b));
    }
    this.views.set(view.id, { ...view, state: 'committed' });
    return { status: 200, body: { id: view.id, outcome: 'committed', phaseTwoPending: false } };
  }

  private abort(view: TransactionView, reason: string): FakeReply {
    this.aborts.push(view.id);
    if (view.state === 'aborted') return { status: 200, body: { id: view.id, outcome: 'aborted' } };
    if (view.state !== 'active') return wireError(409, 'TXC_TRANSACTION_CLOSED', `Transaction ${view.id} is already ${view.state}`, { state: view.state });
    this.rollBack(view, reason);
    return { status: 200, body: { id: view.id, outcome: 'aborted' } };
  }

  private rollBack(view: TransactionView, reason: string): void {
    for (const b of view.branches) this.db.prepared.delete(key(b));
    this.views.set(view.id, { ...view, state: 'aborted', reason });
  }
}

/** How the fake database names a branch: the gid for PostgreSQL, the xa clause for MySQL. */
function key(b: WireBranch): string {
  return b.gid ?? b.xa ?? `${b.gtrid}.${b.bqual}`;
}
