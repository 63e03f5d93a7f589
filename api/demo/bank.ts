import type { Coordinator, CoordinatorConfig, TransactionResult } from '../../coordinator/types.js';
import type { PgliteParticipantConfig } from '../../participants/participant-config.js';
import { openPglite, type PgliteDriver } from '../../participants/pglite/index.js';
import { BANKS, DEMO_MAX_PREPARED, type Bank } from './demo-config.js';
import { randomInt } from './prng.js';

/** One planned transfer: `amount` from an account of `from` to an account of the other bank. */
export interface TransferPlan {
  readonly id: string;
  readonly from: Bank;
  readonly fromAccount: number;
  readonly to: Bank;
  readonly toAccount: number;
  readonly amount: number;
}

/** Thrown inside a transfer's callback when the source account cannot cover it; the whole transaction rolls back. */
export class InsufficientFunds extends Error {
  constructor(readonly plan: TransferPlan) {
    super(`account ${plan.from}#${plan.fromAccount} cannot cover ${plan.amount}`);
    this.name = 'InsufficientFunds';
  }
}

/** What one bank's books hold. */
export interface BankBooks {
  readonly accounts: readonly { readonly id: number; readonly owner: string; readonly balance: number }[];
  readonly total: number;
  /** Ids of the transfers this bank took part in. */
  readonly transferIds: ReadonlySet<string>;
  /** Gids in the database's own `pg_prepared_xacts`. */
  readonly prepared: readonly string[];
}

/** Both banks' books. */
export type Books = Readonly<Record<Bank, BankBooks>>;

const OWNERS: Record<Bank, readonly string[]> = {
  bank_a: ['alice', 'bob', 'carol', 'dave', 'erin', 'fay'],
  bank_b: ['gus', 'heidi', 'ivan', 'judy', 'karl', 'lena'],
};

const SCHEMA = [
  'CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL CHECK (balance >= 0))',
  "CREATE TABLE transfers (id text PRIMARY KEY, amount bigint NOT NULL, side text NOT NULL CHECK (side IN ('debit', 'credit')))",
];

/** Accounts per bank. */
export const ACCOUNTS_PER_BANK = OWNERS.bank_a.length;

/**
 * Creates both banks' tables and accounts with random opening balances, one local transaction
 * per bank (each writes one database only, so the coordinator commits it in one phase).
 */
export async function openBanks(coord: Coordinator, random: () => number): Promise<void> {
  for (const bank of BANKS) {
    await coord.transaction(async (tx) => {
      for (const sql of SCHEMA) await tx.query(bank, sql);
      for (const [i, owner] of OWNERS[bank].entries()) {
        await tx.query(bank, 'INSERT INTO accounts (id, owner, balance) VALUES ($1, $2, $3)', [i + 1, owner, randomInt(random, 100, 1000)]);
      }
    });
  }
}

/** Id of the `n`th transfer (1-based): `t001`. */
export function transferId(n: number): string {
  return `t${String(n).padStart(3, '0')}`;
}

/** `count` transfers in both directions with amounts large enough that some must be refused. */
export function planTransfers(count: number, random: () => number): TransferPlan[] {
  return Array.from({ length: count }, (_, i) => {
    const from: Bank = random() < 0.5 ? 'bank_a' : 'bank_b';
    return {
      id: transferId(i + 1),
      from,
      fromAccount: randomInt(random, 1, ACCOUNTS_PER_BANK),
      to: from === 'bank_a' ? 'bank_b' : 'bank_a',
      toAccount: randomInt(random, 1, ACCOUNTS_PER_BANK),
      amount: randomInt(random, 10, 400),
    };
  });
}

/**
 * Moves money between the banks in ONE global transaction: the debit, the credit and a row in
 * each bank's `transfers` table commit together or not at all. Throws {@link InsufficientFunds}
 * from inside the callback when the source account is short, which rolls back both banks.
 */
export function transfer(coord: Coordinator, plan: TransferPlan): Promise<TransactionResult<void>> {
  return coord.transaction(
    async (tx) => {
      // Always bank_a before bank_b: each PGlite has a single connection, so two transfers taking
      // the banks in opposite orders could each hold one and wait forever for the other.
      for (const bank of BANKS) {
        if (bank === plan.from) {
          const debit = await tx.query(bank, 'UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1', [plan.amount, plan.fromAccount]);
          if (debit.rowCount !== 1) throw new InsufficientFunds(plan);
          await tx.query(bank, "INSERT INTO transfers (id, amount, side) VALUES ($1, $2, 'debit')", [plan.id, plan.amount]);
        } else {
          await tx.query(bank, 'UPDATE accounts SET balance = balance + $1 WHERE id = $2', [plan.amount, plan.toAccount]);
          await tx.query(bank, "INSERT INTO transfers (id, amount, side) VALUES ($1, $2, 'credit')", [plan.id, plan.amount]);
        }
      }
    },
    { meta: { transfer: plan.id } },
  );
}

/** Runs one read-only statement against one bank. */
type BankReader = (bank: Bank, sql: string) => Promise<readonly Record<string, unknown>[]>;

async function booksOf(read: BankReader): Promise<Books> {
  const books = {} as Record<Bank, BankBooks>;
  for (const bank of BANKS) {
    const accounts = (await read(bank, 'SELECT id, owner, balance FROM accounts ORDER BY id')).map((r) => ({
      id: Number(r['id']),
      owner: String(r['owner']),
      balance: Number(r['balance']),
    }));
    const transfers = (await read(bank, 'SELECT id FROM transfers ORDER BY id')).map((r) => String(r['id']));
    const prepared = (await read(bank, 'SELECT gid FROM pg_prepared_xacts ORDER BY gid')).map((r) => String(r['gid']));
    books[bank] = { accounts, total: accounts.reduce((s, a) => s + a.balance, 0), transferIds: new Set(transfers), prepared };
  }
  return books;
}

/** Reads both banks' books in one read-only global transaction (nothing to commit, so no protocol work). */
export async function readBooks(coord: Coordinator): Promise<Books> {
  return (await coord.transaction((tx) => booksOf(async (bank, sql) => (await tx.query(bank, sql)).rows))).value;
}

/**
 * Reads both banks' books straight from their data directories, without a coordinator: the
 * PGlite adapter refuses new transactions while a prepared one exists (a statement touching its
 * rows would hang), so a look at the books *before* recovery has to bypass it. Plain SELECTs take
 * no row locks, so they cannot wait for the prepared branch: they see the last committed values,
 * which is exactly the inconsistency a crash leaves behind. Never call it while a coordinator has
 * the same directories open (two PGlite instances on one directory would corrupt it).
 */
export async function peekBooks(config: CoordinatorConfig): Promise<Books> {
  const open = new Map<Bank, PgliteDriver>();
  try {
    for (const bank of BANKS) {
      const p = config.participants[bank] as PgliteParticipantConfig;
      open.set(bank, await openPglite({ dataDir: p.dataDir, maxPreparedTransactions: p.maxPreparedTransactions ?? DEMO_MAX_PREPARED }));
    }
    return await booksOf(async (bank, sql) => (await (open.get(bank) as PgliteDriver).query(sql)).rows);
  } finally {
    for (const db of open.values()) await db.close();
  }
}

/** Money in both banks together. */
export function totalMoney(books: Books): number {
  return BANKS.reduce((sum, bank) => sum + books[bank].total, 0);
}

/** `$250 from bank_a#6 (fay) to bank_b#1 (gus)` */
export function describeTransfer(plan: TransferPlan): string {
  const who = (bank: Bank, id: number) => `${bank}#${id} (${OWNERS[bank][id - 1] ?? '?'})`;
  return `${money(plan.amount)} from ${who(plan.from, plan.fromAccount)} to ${who(plan.to, plan.toAccount)}`;
}

/** `$12,345` */
export function money(n: number): string {
  return `${n < 0 ? '-' : ''}$${Math.abs(n).toLocaleString('en-US')}`;
}
