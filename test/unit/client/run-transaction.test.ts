import { afterEach, describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { TxcoordClient, type BranchHandle, type TxcoordClientOptions } from '../../../client/index.js';
import { FakeDatabase, FakeMysqlConnection, FakePgClient, pgError } from './fake-drivers.js';
import { startFakeServer, wireError, type FakeReply, type FakeServer, type RecordedRequest } from './fake-server.js';
import { FakeTransactionsApi } from './fake-transactions-api.js';
import { txcRejection } from './txc-rejection.js';

let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A fake server with the transactions API; `intercept` may answer a request first (undefined: let the API answer). */
async function setup(intercept: (req: RecordedRequest, api: FakeTransactionsApi) => FakeReply | undefined = () => undefined, options: Partial<TxcoordClientOptions> = {}) {
  const db = new FakeDatabase();
  const api = new FakeTransactionsApi(db, { erp: 'postgres', crm: 'mysql', ledger: 'oracle' });
  server = await startFakeServer((req) => intercept(req, api) ?? api.route(req) ?? wireError(404, 'TXC_NOT_FOUND', 'no route'));
  const client = new TxcoordClient({ baseUrl: server.url, token: 't', retryDelayMs: 1, ...options });
  return { client, api, db, server, pg: new FakePgClient(db), mysql: new FakeMysqlConnection(true, db) };
}

const routes = (s: FakeServer) => s.requests.map((r) => `${r.method} ${r.url.replace(/txc1\.[^/]+/, ':id')}`);

describe('runTransaction', () => {
  it('begins, runs the callback, prepares every branch, closes the MySQL session, then commits', async () => {
    const { client, api, db, server, pg, mysql } = await setup();
    const result = await client.runTransaction(['erp', 'crm'], async (tx) => {
      expect(Object.keys(tx.branches)).toEqual(['erp', 'crm']);
      const erp = await tx.pg('erp', pg);
      await erp.query('update stock set qty = qty - 1');
      const crm = await tx.mysql('crm', mysql);
      await crm.query('insert into orders (sku) values (?)', ['A']);
      return 'done';
    });
    expect(result.value).toBe('done');
    expect(result.phaseTwoPending).toBe(false);
    expect(api.views.get(result.id)?.state).toBe('committed');
    expect(routes(server)).toEqual(['POST /v1/transactions', 'POST /v1/transactions/:id/commit']);
    expect(server.requests[0]?.json).toEqual({ participants: ['erp', 'crm'] });
    const erpGid = api.views.get(result.id)?.branches[0]?.gid;
    expect(pg.sql).toEqual(['BEGIN', 'update stock set qty = qty - 1', `PREPARE TRANSACTION '${erpGid}'`]);
    expect(mysql.sql.slice(-2).map((s) => s.split(' ').slice(0, 2).join(' '))).toEqual(['XA END', 'XA PREPARE']);
    expect(mysql.destroyed).toBe(true);
    // The coordinator's commit found no MySQL branch still held by its preparing session.
    expect(api.attachedAtCommit).toEqual([]);
    expect(db.prepared.size).toBe(0);
  });

  it('passes timeoutMs and meta to begin', async () => {
    const { client, server, pg } = await setup();
    await client.runTransaction(['erp'], async (tx) => void (await tx.pg('erp', pg)), { timeoutMs: 5000, meta: { order: 'o-1' } });
    expect(server.requests[0]?.json).toEqual({ participants: ['erp'], timeoutMs: 5000, meta: { order: 'o-1' } });
  });

  it('rolls back and aborts when the callback throws, and rethrows its error', async () => {
    const { client, api, server, pg, mysql } = await setup();
    const boom = new Error('business rule');
    let id = '';
    await expect(
      client.runTransaction(['erp', 'crm'], async (tx) => {
        id = tx.id;
        await (await tx.pg('erp', pg)).query('update stock set qty = 0');
        await tx.mysql('crm', mysql);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(pg.sql.at(-1)).toBe('ROLLBACK');
    expect(mysql.sql.slice(-1)[0]?.startsWith('XA ROLLBACK')).toBe(true);
    expect(api.views.get(id)?.state).toBe('aborted');
    expect(routes(server)).toEqual(['POST /v1/transactions', 'POST /v1/transactions/:id/abort']);
    expect(api.commits).toEqual([]);
  });

  it('aborts when one branch fails to prepare; the server rolls back the branches that did prepare', async () => {
    const { client, api, db, pg, mysql } = await setup();
    let id = '';
    pg.failOn = (sql) => (sql.startsWith('insert') ? pgError('23505', 'duplicate key') : undefined);
    const err = await txcRejection(
      client.runTransaction(['erp', 'crm'], async (tx) => {
        id = tx.id;
        const erp = await tx.pg('erp', pg);
        // The application swallowed the statement error: PREPARE then answers ROLLBACK.
        await erp.query('insert into t values (1)').catch(() => undefined);
        await (await tx.mysql('crm', mysql)).query('insert into orders values (1)');
      }),
      'TXC_PREPARE_FAILED',
    );
    expect(err.message).toContain('answered ROLLBACK');
    // crm prepared (and its session was closed), then the abort rolled it back from the server.
    expect(mysql.sql.at(-1)?.startsWith('XA PREPARE')).toBe(true);
    expect(api.views.get(id)?.state).toBe('aborted');
    expect(api.commits).toEqual([]);
    expect(db.prepared.size).toBe(0);
  });

  it('aborts when a listed participant was never attached', async () => {
    const { client, api, pg } = await setup();
    let id = '';
    const err = await txcRejection(
      client.runTransaction(['erp', 'crm'], async (tx) => {
        id = tx.id;
        await tx.pg('erp', pg);
      }),
      'TXC_PREPARE_FAILED',
    );
    expect(err.message).toContain('crm');
    expect(pg.sql.at(-1)).toBe('ROLLBACK');
    expect(api.views.get(id)?.state).toBe('aborted');
    expect(api.commits).toEqual([]);
  });

  it('refuses unknown participants, a second connection for a branch, and attaching after the callback', async () => {
    const { client, pg } = await setup();
    let late: (() => Promise<unknown>) | undefined;
    await txcRejection(
      client.runTransaction(['erp'], async (tx) => {
        await txcRejection(tx.pg('crm', new FakePgClient()), 'TXC_PARTICIPANT_UNKNOWN');
        await tx.pg('erp', pg);
        await txcRejection(tx.pg('erp', new FakePgClient()), 'TXC_BAD_REQUEST');
        late = () => tx.pg('erp', new FakePgClient());
        throw new TxcError('TXC_QUERY_FAILED', 'stop here');
      }),
      'TXC_QUERY_FAILED',
    );
    await txcRejection(late!(), 'TXC_TRANSACTION_CLOSED');
    await txcRejection(client.runTransaction([], async () => 1), 'TXC_BAD_REQUEST');
    await txcRejection(client.runTransaction(['erp', 'erp'], async () => 1), 'TXC_BAD_REQUEST');
    await txcRejection(client.runTransaction(['no such name!'], async () => 1), 'TXC_ID_INVALID');
  });

  it('prepares a branch attached with a handle of its own (another driver)', async () => {
    const { client, api, db } = await setup();
    const log: string[] = [];
    const result = await client.runTransaction(['ledger'], async (tx) => {
      const branch = tx.branches['ledger']!;
      const handle: BranchHandle = {
        branch,
        prepare: async () => {
          log.push('prepare');
          db.prepared.add(`${branch.gtrid}.${branch.bqual}`);
        },
        rollback: async () => void log.push('rollback'),
      };
      expect(() => tx.attach('ledger', { ...handle, branch: { ...branch, bqual: 'b9' } })).toThrow(expect.objectContaining({ code: 'TXC_BAD_REQUEST' }));
      tx.attach('ledger', handle);
      return 7;
    });
    expect(result.value).toBe(7);
    expect(log).toEqual(['prepare']);
    expect(api.views.get(result.id)?.state).toBe('committed');
  });

  it('a failed start gives the participant back, so the callback can attach another connection', async () => {
    const { client, pg } = await setup();
    const broken = new FakePgClient();
    broken.failOn = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const result = await client.runTransaction(['erp'], async (tx) => {
      await txcRejection(tx.pg('erp', broken), 'TXC_QUERY_FAILED');
      await tx.pg('erp', pg);
      return 'second try';
    });
    expect(result.value).toBe('second try');
  });
});

describe('runTransaction when the commit answer is lost', () => {
  /** Lets the API process the commit, then drops the connection instead of answering. */
  const commitThenDrop = (req: RecordedRequest, api: FakeTransactionsApi): FakeReply | undefined => {
    if (!req.url.endsWith('/commit')) return undefined;
    api.route(req);
    return 'drop';
  };

  it('reads the state and reports success when the commit was decided', async () => {
    const { client, api, server, pg } = await setup(commitThenDrop);
    const result = await client.runTransaction(['erp'], async (tx) => void (await tx.pg('erp', pg)));
    expect(api.views.get(result.id)?.state).toBe('committed');
    expect(routes(server)).toEqual(['POST /v1/transactions', 'POST /v1/transactions/:id/commit', 'GET /v1/transactions/:id']);
    expect(api.commits).toHaveLength(1);
  });

  it('reports phase two pending when the state is committing', async () => {
    const { client, pg } = await setup((req, api) => {
      if (!req.url.endsWith('/commit')) return undefined;
      const id = decodeURIComponent(req.url.split('/')[3] ?? '');
      const view = api.views.get(id)!;
      api.views.set(id, { ...view, state: 'committing' });
      return 'drop';
    });
    const result = await client.runTransaction(['erp'], async (tx) => void (await tx.pg('erp', pg)));
    expect(result.phaseTwoPending).toBe(true);
  });

  it('aborts a transaction the commit never reached, and says it was rolled back', async () => {
    const { client, api, server, pg } = await setup((req) => (req.url.endsWith('/commit') ? 'drop' : undefined));
    let id = '';
    const err = await txcRejection(
      client.runTransaction(['erp'], async (tx) => {
        id = tx.id;
        await tx.pg('erp', pg);
      }),
      'TXC_PREPARE_FAILED',
    );
    expect(err.details['state']).toBe('aborted');
    expect(TxcError.is(err.cause, 'TXC_PARTICIPANT_UNAVAILABLE')).toBe(true);
    expect(api.views.get(id)?.state).toBe('aborted');
    expect(routes(server)).toEqual(['POST /v1/transactions', 'POST /v1/transactions/:id/commit', 'GET /v1/transactions/:id', 'POST /v1/transactions/:id/abort']);
  });

  it('is TXC_OUTCOME_UNKNOWN when the server cannot say', async () => {
    const { client, pg } = await setup((req, api) => {
      if (req.url.endsWith('/commit')) return commitThenDrop(req, api);
      if (req.method === 'GET') return 'drop';
      return undefined;
    }, { retries: 1 });
    const err = await txcRejection(client.runTransaction(['erp'], async (tx) => void (await tx.pg('erp', pg))), 'TXC_OUTCOME_UNKNOWN');
    expect(TxcError.is(err.cause, 'TXC_PARTICIPANT_UNAVAILABLE')).toBe(true);
  });

  it('with retryCommit, repeats the commit, which the server answers from the state', async () => {
    let dropped = false;
    const { client, api, server, pg } = await setup((req, a) => {
      if (!req.url.endsWith('/commit') || dropped) return undefined;
      dropped = true;
      return commitThenDrop(req, a);
    });
    const result = await client.runTransaction(['erp'], async (tx) => void (await tx.pg('erp', pg)), { retryCommit: true });
    expect(api.views.get(result.id)?.state).toBe('committed');
    expect(routes(server)).toEqual(['POST /v1/transactions', 'POST /v1/transactions/:id/commit', 'POST /v1/transactions/:id/commit']);
  });

  it('rethrows the server refusing the commit (409 TXC_PREPARE_FAILED) without second-guessing it', async () => {
    const { client, api, db, pg } = await setup((req) => {
      // Someone rolled the prepared branch back behind the coordinator's back.
      if (req.url.endsWith('/commit')) db.prepared.clear();
      return undefined;
    });
    let id = '';
    const err = await txcRejection(
      client.runTransaction(['erp'], async (tx) => {
        id = tx.id;
        await tx.pg('erp', pg);
      }),
      'TXC_PREPARE_FAILED',
    );
    expect(err.details['httpStatus']).toBe(409);
    expect(api.views.get(id)?.state).toBe('aborted');
  });
});
