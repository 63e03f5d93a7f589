/**
 * Network faults between the coordinator and its databases, injected by an in-process TCP proxy
 * per database: connection resets at exact protocol steps (prepare, phase two, recovery), added
 * latency under a concurrent workload, and a blackhole that must end in a timeout, not a hang.
 * Every scenario ends with a recovery pass and the bank invariants, read from the databases.
 *
 * TXCOORD_FAULTS_LONG=1 runs more rounds.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { TxcError } from '../../coordinator/errors.js';
import type { Coordinator } from '../../coordinator/types.js';
import { mysqlUrl, pgUrl, requireDbOrSkip } from '../integration/db-env.js';
import { assertInvariants, coordinatorConfig, createBank, makeLogDir, type Bank, type CoordinatorConfigOptions, type InvariantReport } from './bank.js';
import { createTcpProxy, targetOf, viaProxy, type TcpProxy } from './tcp-proxy.js';

const ready = (await requireDbOrSkip('postgres')) && (await requireDbOrSkip('mysql'));
const LONG = process.env.TXCOORD_FAULTS_LONG === '1';
/** Injections per reset scenario. */
const ROUNDS = LONG ? 25 : 4;
const ID = 'fnet';

/**
 * Probe for a fixed bug: a pg client checked out of the pool (recovery, fresh-client COMMIT
 * PREPARED) had no 'error' listener, so a connection reset made `emit('error')` throw and crash
 * the process. Such emits are swallowed and counted here, so one regression fails one assertion
 * instead of killing the whole file.
 */
const unlistenedPgErrors: unknown[] = [];
const originalEmit = pg.Client.prototype.emit;
function installPgErrorProbe(): void {
  pg.Client.prototype.emit = function emit(this: pg.Client, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error' && this.listenerCount('error') === 0) {
      unlistenedPgErrors.push(args[0]);
      return false;
    }
    return originalEmit.call(this, event, ...args);
  };
}

/** Statements, as the adapters send them (participants/{postgres,mysql}/sql.ts). */
const PG_PREPARE = 'PREPARE TRANSACTION';
const PG_COMMIT = 'COMMIT PREPARED';
const MY_PREPARE = 'XA PREPARE';
/** Phase-two XA COMMIT only, not the one-phase form. */
const myCommit = (c: Buffer): boolean => {
  const s = c.toString('latin1');
  return s.includes('XA COMMIT') && !s.includes('ONE PHASE');
};

interface Row {
  scenario: string;
  injected: number;
  transfers: number;
  acknowledged: number;
  rejected: number;
  pending: number;
  recoveryPasses: number;
  ms: number;
  invariants: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rejects if `p` does not settle within `ms`: a hang becomes a test failure with a message. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms (hang)`)), ms);
    }),
  ]);
}

describe.skipIf(!ready)('network faults (TCP proxy between coordinator and databases)', () => {
  let bank: Bank;
  let pgProxy: TcpProxy;
  let myProxy: TcpProxy;
  let logDir: { dir: string; remove: () => Promise<void> };
  const open = new Set<Coordinator>();
  const summary: Row[] = [];
  let seq = 0;
  const nextId = () => `fnet-${Date.now().toString(36)}-${++seq}`;

  async function coordinator(o: Partial<CoordinatorConfigOptions> = {}): Promise<Coordinator> {
    const c = await createCoordinator(
      coordinatorConfig({
        id: ID,
        logDir: logDir.dir,
        pgUrl: viaProxy(pgUrl, pgProxy.port),
        mysqlUrl: viaProxy(mysqlUrl, myProxy.port),
        prepareTimeoutMs: 5_000,
        pool: { max: 8, acquireTimeoutMs: 3_000 },
        ...o,
      }),
    );
    open.add(c);
    return c;
  }

  async function closeCoord(c: Coordinator, timeoutMs = 10_000): Promise<void> {
    open.delete(c);
    await c.close({ timeoutMs });
  }

  /**
   * Recovery passes (through the proxies, faults disarmed or not) until the databases list no
   * branch of ours, then closes the coordinator and checks the invariants.
   */
  async function finish(
    c: Coordinator,
    row: Omit<Row, 'recoveryPasses' | 'invariants' | 'ms'> & { started: number },
    acknowledged: Set<string>,
    refused: Set<string>,
    maxPasses = 10,
  ): Promise<InvariantReport> {
    let passes = 0;
    for (; passes < maxPasses; passes++) {
      await within(c.recover(), 30_000, 'recover()').catch(() => undefined);
      if ((await bank.listPrepared(ID)).length === 0) break;
      await sleep(200);
    }
    await within(closeCoord(c), 30_000, 'close()');
    const report = await bank.checkInvariants({ coordinatorId: ID, acknowledged, refused });
    const { started, ...rest } = row;
    summary.push({ ...rest, recoveryPasses: passes + 1, ms: Date.now() - started, invariants: report.ok ? 'ok' : report.problems.join('; ') });
    return report;
  }

  beforeAll(async () => {
    installPgErrorProbe();
    bank = await createBank({ name: 'fnet', accounts: 10, initialBalance: 1_000_000, cleanupCoordinatorIds: [ID] });
    await bank.rollbackPrepared(ID);
    pgProxy = createTcpProxy(targetOf(pgUrl, 5432));
    myProxy = createTcpProxy(targetOf(mysqlUrl, 3306));
    await pgProxy.listen();
    await myProxy.listen();
  });

  beforeEach(async () => {
    logDir = await makeLogDir('txc-fnet-');
    await bank.reset();
  });

  afterEach(async () => {
    for (const p of [pgProxy, myProxy]) {
      p.blackhole(false);
      p.latency(0);
    }
    // A connection stuck on a dropped packet would keep close() waiting forever: reset them first.
    if (open.size) {
      pgProxy.resetAll();
      myProxy.resetAll();
    }
    for (const c of [...open]) await within(closeCoord(c, 1_000), 15_000, 'close').catch(() => undefined);
    await logDir.remove();
  });

  afterAll(async () => {
    if (bank) {
      await bank.rollbackPrepared(ID);
      await bank.drop();
    }
    await pgProxy?.close();
    await myProxy?.close();
    pg.Client.prototype.emit = originalEmit;
    if (summary.length) {
      console.log(`\nnetwork faults summary (${LONG ? 'long' : 'default'} mode, ${ROUNDS} rounds per reset scenario)`);
      console.table(summary);
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Resets in phase one: the transaction must reject (no commit record), and nothing may remain.

  const prepareCases = [
    { side: 'erp', proxy: () => pgProxy, pattern: PG_PREPARE },
    { side: 'crm', proxy: () => myProxy, pattern: MY_PREPARE },
  ] as const;

  for (const { side, proxy, pattern } of prepareCases) {
    for (const timing of ['before', 'after-reply'] as const) {
      it(`reset during prepare on ${side} (${timing === 'before' ? 'statement never reaches the server' : 'server prepared, reply lost'})`, async () => {
        const started = Date.now();
        const c = await coordinator();
        const acknowledged = new Set<string>();
        const refused = new Set<string>();
        let injected = 0;
        for (let i = 0; i < ROUNDS; i++) {
          const rule = proxy().resetWhen(pattern, { timing });
          const id = nextId();
          const err = await bank.transfer(c, id, i % 10, (i + 3) % 10, 7).then(
            () => undefined,
            (e: unknown) => e,
          );
          rule.cancel();
          injected += rule.fired;
          expect(rule.fired).toBe(1);
          expect(TxcError.is(err, 'TXC_PREPARE_FAILED') || TxcError.is(err, 'TXC_PREPARE_TIMEOUT'), `round ${i}: ${String(err)}`).toBe(true);
          refused.add(id);
          // The pools must heal: the next transfer, with no fault, commits.
          const ok = nextId();
          await bank.transfer(c, ok, (i + 1) % 10, i % 10, 11);
          acknowledged.add(ok);
        }
        const report = await finish(c, { scenario: `reset@prepare ${side} ${timing}`, injected, transfers: 2 * ROUNDS, acknowledged: acknowledged.size, rejected: refused.size, pending: 0, started }, acknowledged, refused);
        assertInvariants(report);
        expect(report.transfers.both).toBe(ROUNDS);
      });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Resets in phase two: the outcome is decided, so the call resolves and the branch commits later.

  const commitCases = [
    { side: 'erp', proxy: () => pgProxy, pattern: PG_COMMIT as string | ((c: Buffer) => boolean) },
    { side: 'crm', proxy: () => myProxy, pattern: myCommit as string | ((c: Buffer) => boolean) },
  ] as const;

  for (const { side, proxy, pattern } of commitCases) {
    for (const timing of ['before', 'after-reply'] as const) {
      it(`reset during phase-two commit on ${side} (${timing === 'before' ? 'commit never reaches the server' : 'server committed, reply lost'})`, async () => {
        const started = Date.now();
        const c = await coordinator();
        const acknowledged = new Set<string>();
        let injected = 0;
        let pending = 0;
        for (let i = 0; i < ROUNDS; i++) {
          const rule = proxy().resetWhen(pattern, { timing });
          const id = nextId();
          const r = await within(bank.transfer(c, id, i % 10, (i + 5) % 10, 13), 15_000, `transfer ${id}`);
          rule.cancel();
          injected += rule.fired;
          expect(rule.fired).toBe(1);
          expect(r.mode).toBe('2pc');
          if (r.phaseTwoPending) pending++;
          acknowledged.add(id);
        }
        // Background phase-two retries (not recovery) should finish every branch.
        await sleep(500);
        const report = await finish(c, { scenario: `reset@commit ${side} ${timing}`, injected, transfers: ROUNDS, acknowledged: acknowledged.size, rejected: 0, pending, started }, acknowledged, new Set());
        assertInvariants(report);
      });
    }
  }

  // ---------------------------------------------------------------------------------------------

  it('reset during recovery: listing and committing in-doubt branches', async () => {
    const started = Date.now();
    const acknowledged = new Set<string>();
    // 1. Leave committed-but-unfinished branches on both sides: every phase-two commit is reset.
    const a = await coordinator();
    const blockPg = pgProxy.resetWhen(PG_COMMIT, { times: Infinity });
    const blockMy = myProxy.resetWhen(myCommit, { times: Infinity });
    // Each held branch keeps its rows locked, so every transfer uses accounts no other one touches.
    const held = Math.min(ROUNDS, bank.accounts);
    for (let i = 0; i < held; i++) {
      const id = nextId();
      const r = await within(bank.transfer(a, id, i, i, 17), 15_000, `transfer ${id}`);
      expect(r.phaseTwoPending).toBe(true);
      acknowledged.add(id);
    }
    await closeCoord(a, 300);
    blockPg.cancel();
    blockMy.cancel();
    const leftPrepared = await bank.listPrepared(ID);
    expect(leftPrepared.length).toBe(2 * held);

    const unlistenedBefore = unlistenedPgErrors.length;
    // 2. A new coordinator on the same log recovers, while its listing and commits are reset.
    const b = await coordinator({ recoverOnStart: false });
    const rules = [
      pgProxy.resetWhen('pg_prepared_xacts', { times: 1 }),
      myProxy.resetWhen(/xa recover/i, { times: 1 }),
      pgProxy.resetWhen(PG_COMMIT, { times: 2 }),
      pgProxy.resetWhen(PG_COMMIT, { times: 1, timing: 'after-reply' }),
      myProxy.resetWhen(myCommit, { times: 2 }),
      myProxy.resetWhen(myCommit, { times: 1, timing: 'after-reply' }),
    ];
    let failures = 0;
    let passes = 0;
    for (; passes < 15 && (await bank.listPrepared(ID)).length > 0; passes++) {
      const report = await b.recover().catch((e: unknown) => {
        failures++;
        return { failures: [String(e)], heuristic: [] };
      });
      failures += report.failures.length;
      expect(report.heuristic).toEqual([]);
    }
    const injected = rules.reduce((n, r) => n + r.fired, 0);
    const unlistened = unlistenedPgErrors.length - unlistenedBefore;
    for (const r of rules) r.cancel();
    console.log(
      `reset during recovery: ${leftPrepared.length} branches in doubt, ${injected} resets, ${failures} participant failures over ${passes} passes; ` +
        `${unlistened} pg 'error' events with no listener (each would crash the process)`,
    );
    const report = await finish(b, { scenario: 'reset@recovery', injected, transfers: held, acknowledged: acknowledged.size, rejected: 0, pending: held, started }, acknowledged, new Set());
    assertInvariants(report);
    expect(injected).toBeGreaterThanOrEqual(4);
    expect(unlistened, "pg clients emitted 'error' with no listener (uncaught exception in production)").toBe(0);
  });

  // ---------------------------------------------------------------------------------------------

  it('latency each way under a concurrent workload, then with random resets', async () => {
    const started = Date.now();
    const c = await coordinator({ pool: { max: 8, acquireTimeoutMs: 10_000 }, prepareTimeoutMs: 10_000 });
    const acknowledged = new Set<string>();
    const refused = new Set<string>();
    const workers = 8;
    const perWorker = LONG ? 25 : 4;
    let pending = 0;
    const codes = new Map<string, number>();
    const run = async (w: number, tolerateErrors: boolean) => {
      for (let i = 0; i < perWorker; i++) {
        const id = nextId();
        try {
          const r = await within(bank.transfer(c, id, (w + i) % 10, (w * 3 + i) % 10, 1 + ((w + i) % 50)), 60_000, `transfer ${id}`);
          if (r.phaseTwoPending) pending++;
          acknowledged.add(id);
        } catch (err) {
          if (!tolerateErrors || (err instanceof Error && err.message.includes('hang'))) throw err;
          // Rejected means rolled back everywhere (no commit record): it must be absent.
          refused.add(id);
          const code = TxcError.is(err) ? err.code : err instanceof Error ? err.message.slice(0, 40) : String(err);
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
    };
    pgProxy.latency(25);
    myProxy.latency(25);
    await Promise.all(Array.from({ length: workers }, (_v, w) => run(w, false)));
    expect(refused.size).toBe(0);

    // Same load, plus a reset of every connection to one database, alternately, every 700 ms.
    let resets = 0;
    let stop = false;
    const chaos = (async () => {
      for (let k = 0; !stop; k++) {
        await sleep(700);
        resets += (k % 2 ? pgProxy : myProxy).resetAll();
      }
    })();
    await Promise.all(Array.from({ length: workers }, (_v, w) => run(w, true)));
    stop = true;
    await chaos;
    pgProxy.latency(0);
    myProxy.latency(0);
    console.log(`latency + resets: ${resets} connections reset, ${acknowledged.size} acknowledged, ${refused.size} rejected`, Object.fromEntries(codes));
    // The pools heal: a transfer with no fault commits.
    const healthy = nextId();
    await within(bank.transfer(c, healthy, 0, 1, 1), 20_000, `transfer ${healthy}`);
    acknowledged.add(healthy);
    const report = await finish(c, { scenario: 'latency 25ms/way (+ resets)', injected: resets, transfers: 2 * workers * perWorker + 1, acknowledged: acknowledged.size, rejected: refused.size, pending, started }, acknowledged, refused);
    assertInvariants(report);
  });

  // ---------------------------------------------------------------------------------------------
  // Blackhole: traffic silently dropped, connections left open. Phase one must time out.

  for (const { side, proxy, pattern } of prepareCases) {
    it(`blackhole during prepare on ${side}: rejects with a timeout, and recovery leaves nothing prepared`, async () => {
      const started = Date.now();
      const prepareTimeoutMs = 1_500;
      const c = await coordinator({ prepareTimeoutMs });
      const refused = new Set<string>();
      const acknowledged = new Set<string>();
      const rounds = LONG ? 5 : 2;
      for (let i = 0; i < rounds; i++) {
        const rule = proxy().blackholeWhen(pattern);
        const id = nextId();
        const t0 = Date.now();
        const err = await within(bank.transfer(c, id, i, i + 1, 19), prepareTimeoutMs + 5_000, `transfer ${id}`).then(
          () => undefined,
          (e: unknown) => e,
        );
        const took = Date.now() - t0;
        expect(rule.fired).toBe(1);
        expect(TxcError.is(err, 'TXC_PREPARE_TIMEOUT'), String(err)).toBe(true);
        expect(took).toBeLessThan(prepareTimeoutMs + 2_000);
        refused.add(id);
        proxy().blackhole(false);
        // Any pooled connection that sent a statement into the blackhole (a straggler rollback, say)
        // waits forever for its answer (no statement timeout: see the report); a reset frees it,
        // as TCP keepalive would, much later, in production.
        proxy().resetAll();
        const ok = nextId();
        await within(bank.transfer(c, ok, i + 2, i, 3), 20_000, `transfer ${ok} after the blackhole`);
        acknowledged.add(ok);
      }
      const report = await finish(c, { scenario: `blackhole@prepare ${side}`, injected: rounds, transfers: 2 * rounds, acknowledged: acknowledged.size, rejected: refused.size, pending: 0, started }, acknowledged, refused);
      assertInvariants(report);
    });
  }


  // A blackhole in phase two: the outcome is decided, so the call must resolve (phaseTwoPending)
  // within a bound: the pool's queryTimeoutMs ends the COMMIT stuck on the pinned connection.
  for (const { side, proxy, pattern } of commitCases) {
    it(`blackhole during phase-two commit on ${side}: the call settles, the transfer commits everywhere`, async () => {
      const started = Date.now();
      const c = await coordinator({ prepareTimeoutMs: 1_500, pool: { max: 8, acquireTimeoutMs: 2_000, queryTimeoutMs: 3_000 } });
      const rule = proxy().blackholeWhen(pattern);
      const id = nextId();
      const bound = 6_000;
      const call = bank.transfer(c, id, 1, 2, 23);
      const settled = await within(call, bound, `transfer ${id}`).then(
        () => true,
        () => false,
      );
      expect(rule.fired).toBe(1);
      if (!settled) console.log(`with phase-two traffic to ${side} blackholed, coord.transaction did not settle within ${bound} ms`);
      // Lift the blackhole and reset the stuck connection: the retry path must finish the transfer.
      proxy().blackhole(false);
      proxy().resetAll();
      const r = await within(call, 20_000, `transfer ${id} after the reset`);
      expect(r.mode).toBe('2pc');
      const acknowledged = new Set([id]);
      const report = await finish(c, { scenario: `blackhole@commit ${side}${settled ? '' : ' (HANG)'}`, injected: 1, transfers: 1, acknowledged: 1, rejected: 0, pending: r.phaseTwoPending ? 1 : 0, started }, acknowledged, new Set());
      assertInvariants(report);
      expect(settled, `coord.transaction settled within ${bound} ms with phase two blackholed`).toBe(true);
    });
  }

  // Blackhole before the transaction starts: idle pooled connections look healthy, so the first
  // statement is sent into the void; queryTimeoutMs must end it.
  for (const { side, proxy } of prepareCases) {
    it(`blackhole before the transaction on ${side}: the call settles within a bound`, async () => {
      const started = Date.now();
      const c = await coordinator({ prepareTimeoutMs: 1_500, pool: { max: 8, acquireTimeoutMs: 2_000, queryTimeoutMs: 3_000 } });
      const warm = nextId();
      await bank.transfer(c, warm, 1, 2, 1);
      proxy().blackhole(true);
      const id = nextId();
      const t0 = Date.now();
      const bound = 6_000;
      const call = bank.transfer(c, id, 1, 2, 29);
      const outcome = await within(call, bound, `transfer ${id}`).then(
        () => 'resolved',
        (e: unknown) => (e instanceof Error && e.message.includes('(hang)') ? 'hang' : `rejected ${TxcError.is(e) ? e.code : String(e)}`),
      );
      console.log(`blackhole before the transaction on ${side}: ${outcome} after ${Date.now() - t0} ms`);
      proxy().blackhole(false);
      proxy().resetAll();
      const acknowledged = new Set([warm]);
      const refused = new Set<string>();
      // After the reset the call must settle; a rejection means rolled back.
      await within(call, 20_000, `transfer ${id} after the reset`).then(
        () => acknowledged.add(id),
        () => refused.add(id),
      );
      const report = await finish(c, { scenario: `blackhole@begin ${side}: ${outcome}`, injected: 1, transfers: 2, acknowledged: acknowledged.size, rejected: refused.size, pending: 0, started }, acknowledged, refused);
      assertInvariants(report);
      expect(outcome, 'a blackholed statement in the callback ends in a timeout').not.toBe('hang');
    });
  }

  it('a dead participant opens its circuit breaker: new transfers fail fast without touching it, and it closes when the participant returns', async () => {
    const started = Date.now();
    const c = await coordinator({ breaker: { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 800 }, pool: { max: 4, acquireTimeoutMs: 2_000, queryTimeoutMs: 2_000 } });
    const refused = new Set<string>();
    const acknowledged = new Set<string>();
    // crm "dies": every byte sent to it resets the connection.
    const dead = myProxy.resetWhen(() => true, { times: Infinity });
    let fastFails = 0;
    for (let i = 0; i < 8; i++) {
      const id = nextId();
      const before = myProxy.stats().connections;
      const t0 = Date.now();
      const err = await within(bank.transfer(c, id, i, i + 1, 5), 10_000, `transfer ${id}`).then(() => undefined, (e: unknown) => e);
      expect(TxcError.is(err), String(err)).toBe(true);
      refused.add(id);
      if (TxcError.is(err) && err.details['breaker'] === 'open') {
        fastFails++;
        // Refused without opening a connection to the dead participant, at once.
        expect(myProxy.stats().connections).toBe(before);
        expect(Date.now() - t0).toBeLessThan(500);
      }
    }
    expect(fastFails, 'the breaker never opened').toBeGreaterThanOrEqual(3);
    expect(c.stats().breakers['crm']).toMatchObject({ state: 'open' });
    dead.cancel();
    await sleep(1_000);
    const ok = nextId();
    await within(bank.transfer(c, ok, 1, 2, 5), 10_000, `transfer ${ok} after the participant returned`);
    acknowledged.add(ok);
    expect(c.stats().breakers['crm']?.state).toBe('closed');
    const report = await finish(c, { scenario: 'breaker: dead crm', injected: dead.fired, transfers: refused.size + 1, acknowledged: 1, rejected: refused.size, pending: 0, started }, acknowledged, refused);
    assertInvariants(report);
  });

  it("no pg client emitted 'error' with no listener (an uncaught exception in production)", () => {
    console.log(`pg client 'error' events with no listener over the whole file: ${unlistenedPgErrors.length}`);
    expect(unlistenedPgErrors.length).toBe(0);
  });
});
