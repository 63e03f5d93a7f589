import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { FetchLike } from '../../../../client/fetch-like.js';
import { TxcoordClient } from '../../../../client/txcoord-client.js';
import { TxcError } from '../../../../coordinator/errors.js';
import { ADMIN_TOKEN, CLIENT_TOKEN, gtrid, testServer } from './harness.js';

/** The client's fetch, answered by `app.inject` (no socket). */
function injectFetch(app: FastifyInstance): FetchLike {
  return async (url, init) => {
    const res = await app.inject({ method: init.method, url: new URL(url).pathname + new URL(url).search, headers: init.headers, ...(init.body !== undefined ? { payload: init.body } : {}) });
    return { status: res.statusCode, headers: { get: (name: string) => (res.headers[name.toLowerCase()] as string | undefined) ?? null }, text: async () => res.body };
  };
}

async function clients() {
  const s = await testServer();
  const make = (token: string) => new TxcoordClient({ baseUrl: 'http://txcoord.test', token, fetch: injectFetch(s.app), retries: 0 });
  return { s, client: make(CLIENT_TOKEN), admin: make(ADMIN_TOKEN) };
}

const caught = async (p: Promise<unknown>): Promise<TxcError> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!TxcError.is(err)) throw new Error(`expected a TxcError, got ${String(err)}`);
  return err;
};

describe('the TypeScript client against the server', () => {
  it('every call round-trips', async () => {
    const { s, client, admin } = await clients();
    const saga = await client.submitSaga({ steps: [{ name: 'a', participant: 'billing', action: { path: '/x' } }] }, { idempotencyKey: 'key with inner space' });
    expect(saga).toEqual({ id: gtrid(1), existing: false });
    expect((await client.getSaga(saga.id)).status).toBe('running');
    const tx = await client.beginTransaction({ participants: ['ledger'] });
    expect((await client.addBranch(tx.id, 'crm')).participant).toBe('crm');
    expect(await client.commit(tx.id)).toEqual({ id: tx.id, outcome: 'committed', phaseTwoPending: false });
    expect((await client.getTransaction(tx.id)).state).toBe('committed');
    const other = await client.beginTransaction();
    expect(await client.abort(other.id)).toEqual({ id: other.id, outcome: 'aborted' });
    expect((await client.execute({ steps: [{ participant: 'ledger', statement: 'read', params: { id: 1 } }] })).outcome).toBe('committed');
    s.coord.branches = [{ participant: 'ledger', gtrid: gtrid(9), bqual: 'b0', coordinatorId: 'unit', decision: 'commit', inFlight: false }];
    expect((await admin.inDoubt()).branches[0]?.xid).toBe(`${gtrid(9)}.b0`);
    expect(await admin.resolve(`${gtrid(9)}.b0`, { outcome: 'commit' })).toMatchObject({ resolved: 1 });
    await client.health();
    expect((await client.ready()).ok).toBe(true);
    expect(await client.metrics()).toContain('txcoord_transactions_total');
  });

  it('server errors become the same TxcError codes and details on the client side', async () => {
    const { client } = await clients();
    const bad = await caught(client.execute({ steps: [{ participant: 'ledger', statement: 'nope' }] }));
    expect(bad.code).toBe('TXC_BAD_REQUEST');
    expect(bad.details).toMatchObject({ field: 'steps[0].statement', httpStatus: 400 });
    expect(bad.message).toContain('steps[0].statement');
    expect((await caught(client.getTransaction(gtrid(77)))).code).toBe('TXC_NOT_FOUND');
    expect((await caught(client.inDoubt())).code).toBe('TXC_FORBIDDEN');
    const wrongToken = new TxcoordClient({ baseUrl: 'http://txcoord.test', token: 'x'.repeat(20), fetch: injectFetch((await testServer()).app), retries: 0 });
    expect((await caught(wrongToken.getSaga(gtrid(1)))).code).toBe('TXC_UNAUTHORIZED');
  });
});
