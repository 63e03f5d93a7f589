import { randomFillSync } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { TxcError } from './errors.js';

/**
 * A branch id in X/Open shape. Every part is ASCII built only from validated pieces (coordinator
 * id, a uuid, a branch number), so it can be spliced into SQL where databases forbid parameters.
 */
export interface Xid {
  /** Fixed format id marking txcoord's branches ('TXC1'). */
  readonly formatId: number;
  /** Global transaction id: `txc1.<coordinatorId>.<uuid v7 hex>`, at most 62 bytes. */
  readonly gtrid: string;
  /**
   * Branch qualifier: `b<n>`, unique within the global transaction; `b<n>~<participant>` when
   * the decision is a commit marker in that participant (last resource / `decisionIn`), so a
   * branch found prepared after a crash says by itself where its outcome is recorded.
   */
  readonly bqual: string;
}

/** 'TXC1' as a 32-bit integer: the formatID of every txcoord xid. */
export const TXC_FORMAT_ID = 0x54584331;

const COORD_ID = /^[A-Za-z0-9_-]{1,24}$/;
const PARTICIPANT_NAME = /^[A-Za-z0-9_-]{1,48}$/;
const GTRID = /^txc1\.([A-Za-z0-9_-]{1,24})\.([0-9a-f]{32})$/;
const BQUAL = /^b([0-9]{1,4})(?:~([A-Za-z0-9_-]{1,48}))?$/;

/** Throws TXC_ID_INVALID unless `id` is a valid coordinator id. */
export function assertCoordinatorId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !COORD_ID.test(id)) {
    throw new TxcError('TXC_ID_INVALID', `Coordinator id ${JSON.stringify(id)} is invalid`);
  }
}

/** Throws TXC_ID_INVALID unless `name` is a valid participant name. */
export function assertParticipantName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !PARTICIPANT_NAME.test(name)) {
    throw new TxcError('TXC_ID_INVALID', `Participant name ${JSON.stringify(name)} is invalid`);
  }
}

/** `txc1.<coordinatorId>.`: what every gtrid of that coordinator starts with. */
export function gtridPrefix(coordinatorId: string): string {
  assertCoordinatorId(coordinatorId);
  return `txc1.${coordinatorId}.`;
}

/**
 * Random bytes for uuid v7, from one buffer refilled every 256 ids. uuid's own source calls
 * `crypto.getRandomValues` for each id, which costs ~3 µs on Node 20, about a tenth of the
 * coordinator's own CPU per transaction (`node dist/bench/overhead-bench.js`); Node's
 * `crypto.randomUUID` pools its entropy the same way.
 */
const RANDOM_POOL = new Uint8Array(16 * 256);
let randomUsed = RANDOM_POOL.length;

function pooledRandom16(): Uint8Array {
  if (randomUsed === RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomUsed = 0;
  }
  const bytes = RANDOM_POOL.subarray(randomUsed, randomUsed + 16);
  randomUsed += 16;
  return bytes;
}

/** Last timestamp and counter handed to uuid: see pooledUuidV7Hex. */
const v7State = { msecs: -Infinity, seq: 0 };

/** uuid writes each new id's 16 bytes here; read back at once as hex, so one buffer serves all. */
const UUID_BYTES = Buffer.alloc(16);

/**
 * A uuid v7 as 32 lowercase hex digits, strictly increasing within this process. Given its own
 * random bytes, uuid skips the counter that orders ids minted in the same millisecond, so that
 * counter is kept here, the way uuid keeps it (RFC 9562, method 1): a random 31-bit start each
 * new millisecond, +1 within it. Written as bytes and hex-encoded in one native call: uuid's
 * dashed string, then stripping the dashes, cost several times more.
 */
function pooledUuidV7Hex(): string {
  const random = pooledRandom16();
  const now = Date.now();
  if (now > v7State.msecs) {
    v7State.msecs = now;
    v7State.seq = ((random[6]! & 0x7f) << 24) | (random[7]! << 16) | (random[8]! << 8) | random[9]!;
  } else {
    v7State.seq = (v7State.seq + 1) | 0;
    // The counter wrapped: borrow the next millisecond rather than repeat an id.
    if (v7State.seq === 0) v7State.msecs++;
  }
  uuidv7({ random, msecs: v7State.msecs, seq: v7State.seq }, UUID_BYTES);
  return UUID_BYTES.toString('hex');
}

/** The last coordinator id given to newGtrid and its prefix: validated once, not per transaction. */
let lastPrefix: { readonly id: string; readonly prefix: string } | undefined;

/**
 * A new, time-ordered global transaction id owned by `coordinatorId`. `uuid` replaces the
 * built-in generator (tests, deterministic ids); its uuids may have dashes and upper case.
 */
export function newGtrid(coordinatorId: string, uuid?: () => string): string {
  if (lastPrefix?.id !== coordinatorId) lastPrefix = { id: coordinatorId, prefix: gtridPrefix(coordinatorId) };
  const hex = uuid ? uuid().replace(/-/g, '').toLowerCase() : pooledUuidV7Hex();
  const gtrid = lastPrefix.prefix + hex;
  // Also for the built-in generator: the gtrid is spliced into SQL, so it is checked as it is made.
  if (!GTRID.test(gtrid)) throw new TxcError('TXC_ID_INVALID', `Generated gtrid ${gtrid} is invalid`);
  return gtrid;
}

/**
 * The xid of branch number `index` (0-based) of `gtrid`; with `markerIn`, the qualifier also
 * names the participant holding the transaction's commit marker.
 */
export function branchXid(gtrid: string, index: number, markerIn?: string): Xid {
  if (!GTRID.test(gtrid) || !Number.isInteger(index) || index < 0 || index > 9999) {
    throw new TxcError('TXC_ID_INVALID', `Cannot build a branch xid from ${gtrid} #${index}`);
  }
  if (markerIn !== undefined) assertParticipantName(markerIn);
  return { formatId: TXC_FORMAT_ID, gtrid, bqual: markerIn === undefined ? `b${index}` : `b${index}~${markerIn}` };
}

/** The participant holding the commit marker that decides this branch, if its qualifier names one. */
export function markerParticipantOf(xid: Pick<Xid, 'bqual'>): string | undefined {
  return BQUAL.exec(xid.bqual)?.[2];
}

/** Whether `xid` is a well-formed txcoord xid (anything else found in a database is not ours). */
export function isTxcXid(xid: Xid): boolean {
  return xid.formatId === TXC_FORMAT_ID && GTRID.test(xid.gtrid) && BQUAL.test(xid.bqual);
}

/** The coordinator id embedded in a txcoord gtrid, or undefined for a foreign one. */
export function coordinatorOf(gtrid: string): string | undefined {
  return GTRID.exec(gtrid)?.[1];
}

/** The creation time (ms since epoch) encoded in a gtrid's uuid v7, or undefined. */
export function gtridTime(gtrid: string): number | undefined {
  const hex = GTRID.exec(gtrid)?.[2];
  return hex ? parseInt(hex.slice(0, 12), 16) : undefined;
}

/**
 * The barrier-table range of `coordinatorId`'s sagas started before `beforeMs` (see
 * BarrierRange): uuid v7 puts the start time in the first 12 hex digits of the gtrid.
 */
export function barrierRangeBefore(coordinatorId: string, beforeMs: number): { from: string; before: string } {
  const ms = Math.max(0, Math.min(Math.floor(beforeMs), 0xffffffffffff));
  const from = gtridPrefix(coordinatorId);
  return { from, before: `${from}${ms.toString(16).padStart(12, '0')}` };
}

/** PostgreSQL gid form: `<gtrid>.<bqual>` (under the 200-byte limit). */
export function toPgGid(xid: Xid): string {
  if (!isTxcXid(xid)) throw new TxcError('TXC_ID_INVALID', `Not a txcoord xid: ${JSON.stringify(xid)}`);
  return `${xid.gtrid}.${xid.bqual}`;
}

/** Parses a PostgreSQL gid back to an xid; undefined when the gid is not txcoord's. */
export function fromPgGid(gid: string): Xid | undefined {
  const dot = gid.lastIndexOf('.');
  if (dot < 0) return undefined;
  const xid: Xid = { formatId: TXC_FORMAT_ID, gtrid: gid.slice(0, dot), bqual: gid.slice(dot + 1) };
  return isTxcXid(xid) ? xid : undefined;
}

/** MySQL/MariaDB xid clause: `X'<gtrid hex>',X'<bqual hex>',<formatId>`. */
export function toMysqlXid(xid: Xid): string {
  if (!isTxcXid(xid)) throw new TxcError('TXC_ID_INVALID', `Not a txcoord xid: ${JSON.stringify(xid)}`);
  const hex = (s: string) => Buffer.from(s, 'ascii').toString('hex');
  return `X'${hex(xid.gtrid)}',X'${hex(xid.bqual)}',${xid.formatId}`;
}

/**
 * Parses an `XA RECOVER` row (`data` is gtrid and bqual concatenated, split by the lengths);
 * undefined when the row is not a txcoord branch.
 */
export function fromMysqlRecoverRow(row: {
  formatID: number | string;
  gtrid_length: number | string;
  bqual_length: number | string;
  data: Buffer | string;
}): Xid | undefined {
  const data = typeof row.data === 'string' ? Buffer.from(row.data, 'binary') : row.data;
  const g = Number(row.gtrid_length);
  const b = Number(row.bqual_length);
  if (data.length !== g + b) return undefined;
  const xid: Xid = {
    formatId: Number(row.formatID),
    gtrid: data.subarray(0, g).toString('ascii'),
    bqual: data.subarray(g, g + b).toString('ascii'),
  };
  return isTxcXid(xid) ? xid : undefined;
}

/** A stable printable key for an xid (used in maps and in the CLI). */
export function xidKey(xid: Xid): string {
  return `${xid.gtrid}.${xid.bqual}`;
}
