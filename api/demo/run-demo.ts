import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { TxcError } from '../../coordinator/errors.js';
import { createCoordinator } from '../../coordinator/create-coordinator.js';
import { createDefaultLogger } from '../../coordinator/logger.js';
import type { Coordinator, CoordinatorConfig } from '../../coordinator/types.js';
import type { FileLogConfig } from '../../log/decision-log.js';
import { inspectLogDir } from '../../log/file/inspect-log.js';
import { verifyLogDir } from '../../log/file/verify-log.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { plural, renderFacts, renderTable, type CliIO } from '../output.js';
import { renderBranchTable } from '../render-branches.js';
import {
  describeTransfer,
  InsufficientFunds,
  money,
  openBanks,
  peekBooks,
  planTransfers,
  readBooks,
  totalMoney,
  transfer,
  transferId,
  type Books,
  type TransferPlan,
} from './bank.js';
import { BANKS, demoConfig, type Bank } from './demo-config.js';
import { checkInvariants } from './invariants.js';
import { seededRandom } from './prng.js';
import { runWorker } from './run-worker.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Working directory; emptied first (only if empty or made by an earlier demo). */
  readonly dir: string;
  /** Transfers in the batch of step 2. */
  readonly transfers: number;
  /** PRNG seed for balances and transfers. */
  readonly seed: number;
}

/** Dropped into the working directory so a later run only ever deletes a directory the demo made. */
const MARKER = 'TXCOORD-DEMO-DATA';

/** How many transfers of the batch are shown one by one before the summary. */
const SHOWN_TRANSFERS = 5;

const [FIRST, SECOND] = BANKS;

async function freshDir(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (entries.length > 0 && !entries.includes(MARKER)) {
    throw new TxcError('TXC_USAGE', `The demo directory ${dir} is not empty and was not created by the demo; refusing to delete it`, {
      details: { dir },
    });
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, MARKER), 'Scratch data of `txcoord demo`; deleted by the next run.\n');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '    ');
}

/** What step 2 produced. */
interface BatchResult {
  readonly acknowledged: TransferPlan[];
  readonly refused: TransferPlan[];
  readonly books: Books;
}

/** Walks through the five steps, printing as it goes; the exit status says whether the invariants held. */
class Demo {
  private readonly logger: Logger;
  private readonly config: CoordinatorConfig;
  private readonly logDir: string;
  private readonly random: () => number;

  constructor(
    private readonly options: DemoOptions,
    private readonly io: CliIO,
  ) {
    // The demo tells the story itself; the library's log only speaks up for errors (or when asked).
    this.logger = createDefaultLogger(io.env['TXCOORD_LOG_LEVEL'] ?? 'error');
    this.config = demoConfig(options.dir);
    this.logDir = (this.config.log as FileLogConfig).dir;
    this.random = seededRandom(options.seed);
  }

  private out(text: string): void {
    this.io.out(text);
  }

  private heading(n: number, title: string): void {
    this.out(`\n== ${n}. ${title} ==\n\n`);
  }

  /** A coordinator over the demo's databases; `recovery.onStart` is off, so nothing is resolved behind the story's back. */
  private async withCoordinator<T>(fn: (coord: Coordinator) => Promise<T>): Promise<T> {
    const coord = await createCoordinator({ ...this.config, logger: this.logger });
    try {
      return await fn(coord);
    } finally {
      await coord.close();
    }
  }

  private totals(books: Books, note = ''): string {
    return `  bank_a ${money(books.bank_a.total)} + bank_b ${money(books.bank_b.total)} = total money ${money(totalMoney(books))}${note}\n`;
  }

  private whereIs(books: Books, id: string): string {
    return `  transfer ${id}: in bank_a ${yesNo(books.bank_a.transferIds.has(id))}, in bank_b ${yesNo(books.bank_b.transferIds.has(id))}\n`;
  }

  async run(): Promise<ExitCode> {
    const t0 = Date.now();
    this.out(
      'txcoord demo: money moves between two banks, each its own embedded PostgreSQL (PGlite), in\n' +
        'transactions that commit in both banks or in neither, even when the coordinator is killed mid-commit.\n' +
        `Working directory: ${this.options.dir} (emptied first); seed ${this.options.seed}.\n`,
    );
    const initial = await this.setUp();
    const startMoney = totalMoney(initial);
    const batch = await this.batch(startMoney);
    const crashed = this.crashPlan(batch.books, this.options.transfers + 1);
    if (!(await this.crash(crashed))) return EXIT.ATTENTION;
    const after = await this.recover(crashed, startMoney);

    this.heading(5, 'Invariant check');
    const log = await verifyLogDir(this.logDir);
    const checks = checkInvariants({
      startMoney,
      books: after,
      acknowledged: batch.acknowledged.map((p) => p.id),
      refused: batch.refused.map((p) => p.id),
      crashed: crashed.id,
      log,
    });
    for (const c of checks) this.out(`  ${c.ok ? 'PASS' : 'FAIL'}  ${c.text}\n`);
    const pass = checks.every((c) => c.ok);
    this.out(`\nINVARIANTS: ${pass ? 'PASS' : 'FAIL'} (demo took ${seconds(Date.now() - t0)})\n`);
    const configFile = join(this.options.dir, 'txcoord.json');
    await writeFile(configFile, `${JSON.stringify(this.config, null, 2)}\n`);
    this.out(
      `\nThe data stays in ${this.options.dir}. Look around with:\n` +
        `  txcoord log inspect --dir ${this.logDir}\n` +
        `  txcoord in-doubt --config ${configFile}\n`,
    );
    return pass ? EXIT.OK : EXIT.ATTENTION;
  }

  /** Step 1: two fresh databases with accounts. */
  private async setUp(): Promise<Books> {
    this.heading(1, 'Set up two banks');
    this.out(`Creating two PGlite databases (bank_a, bank_b) and a file decision log (${this.logDir}) ...\n`);
    const t = Date.now();
    const books = await this.withCoordinator(async (coord) => {
      await openBanks(coord, this.random);
      return readBooks(coord);
    });
    this.out(`Ready in ${seconds(Date.now() - t)}.\n\n`);
    const rows = BANKS.flatMap((bank) => books[bank].accounts.map((a) => ({ bank, ...a })));
    this.out(
      renderTable(
        [
          { header: 'BANK', cell: (r: (typeof rows)[number]) => r.bank },
          { header: 'ACCOUNT', cell: (r) => String(r.id), align: 'right' },
          { header: 'OWNER', cell: (r) => r.owner },
          { header: 'BALANCE', cell: (r) => money(r.balance), align: 'right' },
        ],
        rows,
      ),
    );
    this.out(`\n${this.totals(books)}`);
    return books;
  }

  /** Step 2: the batch of transfers, some refused. */
  private async batch(startMoney: number): Promise<BatchResult> {
    const plans = planTransfers(this.options.transfers, this.random);
    this.heading(2, `${plans.length} atomic transfers between the banks`);
    this.out(
      'Each transfer debits one bank and credits the other inside ONE coord.transaction: two writers, so\n' +
        'two-phase commit with a forced decision record. When the source account is short, the callback\n' +
        'throws and the transaction rolls back in both banks.\n\n',
    );
    const acknowledged: TransferPlan[] = [];
    const refused: TransferPlan[] = [];
    const modes = new Map<string, number>();
    const t = Date.now();
    const books = await this.withCoordinator(async (coord) => {
      for (const [i, plan] of plans.entries()) {
        let outcome: string;
        try {
          const r = await transfer(coord, plan);
          acknowledged.push(plan);
          modes.set(r.mode, (modes.get(r.mode) ?? 0) + 1);
          outcome = `committed (${r.mode})`;
        } catch (err) {
          if (!(err instanceof InsufficientFunds)) throw err;
          refused.push(plan);
          outcome = 'REFUSED: insufficient funds, rolled back in both banks';
        }
        if (i < SHOWN_TRANSFERS) this.out(`  ${plan.id}  ${describeTransfer(plan)}: ${outcome}\n`);
      }
      return readBooks(coord);
    });
    const ms = Date.now() - t;
    if (plans.length > SHOWN_TRANSFERS) this.out(`  ... and ${plans.length - SHOWN_TRANSFERS} more.\n`);
    const toB = acknowledged.filter((p) => p.from === 'bank_a').length;
    this.out('\n');
    this.out(
      renderFacts([
        ['committed', `${acknowledged.length} (${toB} bank_a -> bank_b, ${acknowledged.length - toB} bank_b -> bank_a; ${[...modes].map(([m, n]) => `${n} by ${m}`).join(', ')})`],
        ['refused', `${refused.length} (insufficient funds: nothing written in either bank)`],
        ['time', `${seconds(ms)} (${Math.round((plans.length * 1000) / Math.max(1, ms))} transfers/s, one at a time)`],
      ]),
    );
    this.out(`\n${this.totals(books, totalMoney(books) === startMoney ? ' (unchanged)' : ' (CHANGED!)')}`);
    return { acknowledged, refused, books };
  }

  /** Step 3: a worker process dies by SIGKILL between the two banks' commits. False when it did not. */
  private async crash(plan: TransferPlan): Promise<boolean> {
    this.heading(3, 'A real crash in the middle of a commit');
    this.out(
      `A separate Node process opens the same databases and decision log and runs transfer ${plan.id}:\n` +
        `${describeTransfer(plan)}. A protocol hook (onProtocolPoint) kills it with\n` +
        `process.kill(process.pid, 'SIGKILL') at the point \`after-commit\` of ${FIRST}: the commit decision is\n` +
        `durable, ${FIRST} has committed, ${SECOND} is still prepared. No cleanup runs. (So that the kill lands in\n` +
        `that window on every run, the worker sends ${SECOND}'s COMMIT PREPARED only after ${FIRST}'s is acknowledged.)\n\n`,
    );
    const death = await runWorker(this.options.dir, plan, (line, pid) => this.out(`  [worker pid ${pid ?? '?'}] ${line}\n`));
    if (death.signal !== 'SIGKILL') {
      this.out(`\nThe worker did not die by SIGKILL (exit code ${death.code}, signal ${death.signal}).\n${death.stderr}\nINVARIANTS: FAIL (the crash did not happen)\n`);
      return false;
    }
    this.out(`  The worker is dead: killed by ${death.signal}.\n`);
    return true;
  }

  /** Step 3's aftermath, then step 4: look without recovering, recover, look again. */
  private async recover(crashed: TransferPlan, startMoney: number): Promise<Books> {
    const before = await peekBooks(this.config);
    const live = (await inspectLogDir(this.logDir)).live.filter((r) => r.type === 'commit');
    this.out(
      '\nBEFORE recovery, straight from the data directories (no coordinator; plain SELECTs take no row\n' +
        'locks, so they read the last committed balances without waiting for the prepared branch):\n',
    );
    const gap = totalMoney(before) - startMoney;
    this.out(this.totals(before, gap === 0 ? '' : ` (${gap < 0 ? 'short by' : 'over by'} ${money(Math.abs(gap))}: the books are inconsistent)`));
    this.out(this.whereIs(before, crashed.id));
    this.out(`  prepared transactions (pg_prepared_xacts): bank_a ${before.bank_a.prepared.length}, bank_b ${before.bank_b.prepared.length}\n`);
    this.out(`  live commit records in the decision log: ${live.length}${live.length ? ` (${live.map((r) => r.gtrid).join(', ')})` : ''}\n`);

    return this.withCoordinator(async (coord) => {
      const inDoubt = await coord.inDoubt();
      this.out(`\ncoord.inDoubt() on a coordinator opened with recovery.onStart: false: ${plural(inDoubt.length, 'branch', 'branches')}\n`);
      if (inDoubt.length > 0) this.out(`\n${indent(renderBranchTable(inDoubt))}`);

      this.heading(4, 'Recovery');
      this.out(
        'coord.recover() (what `txcoord recover` and every coordinator start run): a prepared branch whose\n' +
          'transaction has a commit record is committed; one without is rolled back (presumed abort).\n\n',
      );
      const t = Date.now();
      const report = await coord.recover();
      this.out(
        renderFacts([
          ['committed', report.committed],
          ['rolled back', report.rolledBack],
          ['ended', `${report.ended} (commit records closed with an end record)`],
          ['heuristic', report.heuristic.length],
          ['still in doubt', report.remaining.length],
          ['failures', report.failures.length ? report.failures.map((f) => `${f.participant}: ${f.code}`).join('; ') : 0],
          ['time', `${Date.now() - t} ms`],
        ]),
      );
      const after = await readBooks(coord);
      this.out('\nAFTER recovery:\n');
      this.out(this.totals(after));
      this.out(this.whereIs(after, crashed.id));
      this.out(`  prepared transactions (pg_prepared_xacts): bank_a ${after.bank_a.prepared.length}, bank_b ${after.bank_b.prepared.length}\n`);
      this.out(`  coord.inDoubt(): ${plural((await coord.inDoubt()).length, 'branch', 'branches')}\n`);
      return after;
    });
  }

  /** The crash transfer: from bank_a's richest account (bank_b's if bank_a is empty), so it cannot be refused. */
  private crashPlan(books: Books, n: number): TransferPlan {
    const richest = (bank: Bank) => books[bank].accounts.reduce((m, a) => (a.balance > m.balance ? a : m));
    const from: Bank = richest('bank_a').balance > 0 ? 'bank_a' : 'bank_b';
    const source = richest(from);
    return {
      id: transferId(n),
      from,
      fromAccount: source.id,
      to: from === 'bank_a' ? 'bank_b' : 'bank_a',
      toAccount: 1,
      amount: Math.max(1, Math.min(250, source.balance)),
    };
  }
}

/**
 * `txcoord demo`: the self-contained showcase (no database server). Returns 0 when every
 * invariant held after the crash and recovery, 1 otherwise.
 */
export async function runDemo(options: DemoOptions, io: CliIO): Promise<ExitCode> {
  const dir = resolve(options.dir);
  await freshDir(dir);
  return new Demo({ ...options, dir }, io).run();
}
