import { describe, expect, it } from 'vitest';
import type { BankBooks, Books } from '../../../api/demo/bank.js';
import { checkInvariants, type InvariantInput } from '../../../api/demo/invariants.js';

const bank = (balances: number[], ids: string[], prepared: string[] = []): BankBooks => ({
  accounts: balances.map((balance, i) => ({ id: i + 1, owner: `o${i}`, balance })),
  total: balances.reduce((s, b) => s + b, 0),
  transferIds: new Set(ids),
  prepared,
});

const good: InvariantInput = {
  startMoney: 300,
  books: { bank_a: bank([100, 50], ['t001', 't003']), bank_b: bank([150], ['t001', 't003']) },
  acknowledged: ['t001'],
  refused: ['t002'],
  crashed: 't003',
  log: { ok: true, records: 5, liveTransactions: 0 },
};

const failed = (input: InvariantInput) =>
  checkInvariants(input)
    .filter((c) => !c.ok)
    .map((c) => c.text);

describe('demo invariants', () => {
  it('all pass for consistent books', () => {
    expect(failed(good)).toEqual([]);
    expect(checkInvariants(good)).toHaveLength(8);
  });

  it('catch money created or destroyed', () => {
    expect(failed({ ...good, startMoney: 301 })).toEqual(['total money unchanged: $301 at the start, $300 now']);
  });

  it('catch a transfer on one side only, which is also a lost crashed transfer', () => {
    const books: Books = { ...good.books, bank_b: bank([150], ['t001']) };
    expect(failed({ ...good, books })).toEqual([
      'transfers in one bank only: t003',
      'the crashed transfer t003, decided before the SIGKILL, is in both banks',
    ]);
  });

  it('catch a lost acknowledged transfer, a leaked refused one, leftovers and a dirty log', () => {
    const books: Books = { bank_a: bank([100, 50], ['t002', 't003'], ['g1']), bank_b: bank([150], ['t002', 't003']) };
    expect(failed({ ...good, books, log: { ok: true, records: 5, liveTransactions: 1 } })).toEqual([
      'acknowledged transfers missing: t001',
      'refused transfers present: t002',
      'prepared transactions left: bank_a:g1',
      'decision log intact, no live transactions (5 records, 1 live)',
    ]);
  });

  it('catch a negative balance', () => {
    const books: Books = { bank_a: bank([160, -10], ['t001', 't003']), bank_b: bank([150], ['t001', 't003']) };
    expect(failed({ ...good, books })).toEqual(['negative balances: bank_a#2']);
  });
});
