import { money, totalMoney, type Books } from './bank.js';
import { BANKS } from './demo-config.js';

/** Everything the final check compares. */
export interface InvariantInput {
  /** Total money right after set-up. */
  readonly startMoney: number;
  /** Both banks' books after recovery. */
  readonly books: Books;
  /** Transfers whose `coord.transaction` resolved. */
  readonly acknowledged: readonly string[];
  /** Transfers whose callback threw (insufficient funds). */
  readonly refused: readonly string[];
  /** The transfer whose worker was killed after its commit decision was durable. */
  readonly crashed: string;
  /** What `verifyLogDir` said about the decision log. */
  readonly log: { readonly ok: boolean; readonly records: number; readonly liveTransactions: number };
}

/** One line of the verdict. */
export interface InvariantCheck {
  readonly ok: boolean;
  readonly text: string;
}

function listOrCount(ids: readonly string[], none: string, some: string): [boolean, string] {
  return ids.length === 0 ? [true, none] : [false, `${some}: ${ids.join(', ')}`];
}

/**
 * The demo's promises, checked against the databases' own contents: no money created or
 * destroyed, every transfer in both banks or in neither, every acknowledged transfer kept, every
 * refused one absent, the decided-then-crashed one committed, nothing left prepared, and a clean log.
 */
export function checkInvariants(input: InvariantInput): InvariantCheck[] {
  const { books } = input;
  const [a, b] = BANKS.map((bank) => books[bank].transferIds) as [ReadonlySet<string>, ReadonlySet<string>];
  const both = (id: string) => a.has(id) && b.has(id);
  const either = (id: string) => a.has(id) || b.has(id);
  const oneSided = [...new Set([...a, ...b])].filter((id) => a.has(id) !== b.has(id)).sort();
  const now = totalMoney(books);
  const prepared = BANKS.flatMap((bank) => books[bank].prepared.map((gid) => `${bank}:${gid}`));
  const negative = BANKS.flatMap((bank) => books[bank].accounts.filter((x) => x.balance < 0).map((x) => `${bank}#${x.id}`));
  const checks: [boolean, string][] = [
    [now === input.startMoney, `total money unchanged: ${money(input.startMoney)} at the start, ${money(now)} now`],
    listOrCount(oneSided, `every transfer is in both banks or in neither (${a.size} in each, the same ids)`, 'transfers in one bank only'),
    listOrCount(
      input.acknowledged.filter((id) => !both(id)),
      `all ${input.acknowledged.length} acknowledged transfers are in both banks`,
      'acknowledged transfers missing',
    ),
    listOrCount(input.refused.filter(either), `none of the ${input.refused.length} refused transfers is in either bank`, 'refused transfers present'),
    [both(input.crashed), `the crashed transfer ${input.crashed}, decided before the SIGKILL, is in both banks`],
    listOrCount(prepared, 'no prepared transactions left (pg_prepared_xacts is empty in both banks)', 'prepared transactions left'),
    [
      input.log.ok && input.log.liveTransactions === 0,
      `decision log intact, no live transactions (${input.log.records} records, ${input.log.liveTransactions} live)`,
    ],
    listOrCount(negative, 'no negative balance anywhere', 'negative balances'),
  ];
  return checks.map(([ok, text]) => ({ ok, text }));
}
