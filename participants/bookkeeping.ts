import { TxcError } from '../coordinator/errors.js';
import type { BarrierRange, BarrierRow, MarkerOutcome } from './participant.js';

/*
 * Checks on the values written to txcoord_markers / txcoord_barrier, the same in every database
 * adapter (one file for every adapter) so that a key valid
 * on one database is valid on all. The values travel only as bind parameters; these rules exist
 * so that two different keys can never collide in a column: no truncation (lengths), nothing a
 * MySQL PAD SPACE collation would equate ('a' and 'a '), no characters a driver would replace
 * (lone surrogates) or a server would refuse (NUL).
 */

/** Longest gtrid a marker row holds (`varchar(64)`). */
export const MAX_GTRID_LENGTH = 64;
/** Longest barrier gid and step (`varchar(128)`, in characters). */
export const MAX_BARRIER_KEY_LENGTH = 128;
/** Most rows one listMarkers call returns. */
export const MAX_LIST_LIMIT = 10_000;

// Printable ASCII without space: the marker column is ASCII on MySQL.
const GTRID = /^[\x21-\x7e]+$/;
// Control characters, and lone surrogates (a well-formed pair is one astral code point in /u mode).
const FORBIDDEN = /[\p{Cc}\p{Cs}]/u;

/** Whether `value` is a marker outcome. */
export function isMarkerOutcome(value: unknown): value is MarkerOutcome {
  return value === 'commit' || value === 'abort';
}

/** Whether `value` is a barrier operation or origin. */
export function isBarrierOrigin(value: unknown): value is BarrierRow['origin'] {
  return value === 'action' || value === 'compensate';
}

/** Throws TXC_ID_INVALID unless `gtrid` fits a marker row. */
export function checkGtrid(participant: string, gtrid: unknown): asserts gtrid is string {
  if (typeof gtrid !== 'string' || gtrid.length > MAX_GTRID_LENGTH || !GTRID.test(gtrid)) {
    throw invalid(participant, `marker gtrid ${JSON.stringify(gtrid)} must be 1-${MAX_GTRID_LENGTH} printable ASCII characters without spaces`);
  }
}

/** Throws TXC_ID_INVALID unless the marker's key and outcome can be written. */
export function checkMarker(participant: string, gtrid: unknown, outcome: unknown): void {
  checkGtrid(participant, gtrid);
  if (!isMarkerOutcome(outcome)) throw invalid(participant, `marker outcome ${JSON.stringify(outcome)} must be 'commit' or 'abort'`);
}

/** Throws TXC_ID_INVALID unless the barrier row's key and origin can be written. */
export function checkBarrier(participant: string, row: BarrierRow): void {
  for (const field of ['gid', 'step'] as const) {
    const value: unknown = row[field];
    const length = typeof value === 'string' ? [...value].length : 0;
    if (typeof value !== 'string' || length === 0 || length > MAX_BARRIER_KEY_LENGTH || FORBIDDEN.test(value) || value.endsWith(' ')) {
      throw invalid(
        participant,
        `barrier ${field} ${JSON.stringify(value)} must be 1-${MAX_BARRIER_KEY_LENGTH} characters, without control characters and not ending in a space`,
      );
    }
  }
  if (!isBarrierOrigin(row.op)) throw invalid(participant, `barrier op ${JSON.stringify(row.op)} must be 'action' or 'compensate'`);
  if (!isBarrierOrigin(row.origin)) throw invalid(participant, `barrier origin ${JSON.stringify(row.origin)} must be 'action' or 'compensate'`);
}

/**
 * The LIKE pattern matching every gtrid that starts with `prefix`, with `!` as the escape
 * character (not backslash, whose meaning in a MySQL literal depends on NO_BACKSLASH_ESCAPES).
 * Throws TXC_ID_INVALID for a prefix no gtrid could start with, or a limit out of range.
 */
export function markerPrefixPattern(participant: string, prefix: unknown, limit: unknown): string {
  if (typeof prefix !== 'string' || prefix.length > MAX_GTRID_LENGTH || (prefix !== '' && !GTRID.test(prefix))) {
    throw invalid(participant, `marker prefix ${JSON.stringify(prefix)} must be at most ${MAX_GTRID_LENGTH} printable ASCII characters without spaces`);
  }
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw invalid(participant, `marker list limit ${String(limit)} must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  return `${prefix.replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

const BARRIER_FROM = /^txc1\.[A-Za-z0-9_-]{1,24}\.$/;

/** Throws TXC_ID_INVALID unless `range` is one coordinator's gids before a time (see BarrierRange). */
export function checkBarrierRange(participant: string, range: BarrierRange): void {
  const { from, before } = range;
  if (typeof from !== 'string' || !BARRIER_FROM.test(from) || typeof before !== 'string' || !before.startsWith(from) || !/^[0-9a-f]{12}$/.test(before.slice(from.length))) {
    throw invalid(participant, `barrier range ${JSON.stringify(range)} must be txc1.<coordinator>. up to that prefix and 12 hex digits`);
  }
}

/**
 * One database's statements for the bookkeeping rows, parameters by position: a marker is
 * (gtrid, outcome), read back by (gtrid); a barrier row is (gid, step, op, origin), read back by
 * (gid, step, op). Each insert does nothing when the key exists (waiting for an uncommitted one);
 * each read returns the existing row's `outcome` / `origin` column.
 */
export interface BookkeepingStatements {
  readonly insertMarker: string;
  readonly selectMarker: string;
  readonly insertBarrier: string;
  readonly selectBarrier: string;
}

/** One bookkeeping row's insert and read with their values, checked and ready to run. */
export interface BookkeepingRow<T extends string> {
  /** The row, for messages: "marker txc1.…", "barrier txc1.…/charge/action". */
  readonly row: string;
  readonly insert: readonly [string, unknown[]];
  readonly select: readonly [string, unknown[]];
  /** The column the read returns (lower case). */
  readonly column: string;
  /** Whether a value read back is one the row may hold. */
  readonly accept: (value: unknown) => value is T;
}

/** The marker row of `gtrid`; throws TXC_ID_INVALID (checkMarker) for values that cannot be written. */
export function markerRow(participant: string, sql: BookkeepingStatements, gtrid: string, outcome: MarkerOutcome): BookkeepingRow<MarkerOutcome> {
  checkMarker(participant, gtrid, outcome);
  return { row: `marker ${gtrid}`, insert: [sql.insertMarker, [gtrid, outcome]], select: [sql.selectMarker, [gtrid]], column: 'outcome', accept: isMarkerOutcome };
}

/** The barrier row `row`; throws TXC_ID_INVALID (checkBarrier) for values that cannot be written. */
export function barrierRow(participant: string, sql: BookkeepingStatements, row: BarrierRow): BookkeepingRow<BarrierRow['origin']> {
  checkBarrier(participant, row);
  return {
    row: `barrier ${row.gid}/${row.step}/${row.op}`,
    insert: [sql.insertBarrier, [row.gid, row.step, row.op, row.origin]],
    select: [sql.selectBarrier, [row.gid, row.step, row.op]],
    column: 'origin',
    accept: isBarrierOrigin,
  };
}

function invalid(participant: string, fact: string): TxcError {
  return new TxcError('TXC_ID_INVALID', `Participant ${participant}: ${fact}`, { details: { participant } });
}
