import type { LogRecord } from '../log-record.js';
import { crc32c } from './crc32c.js';

/**
 * On-disk framing of one record: `[u32 LE payload length][u32 LE crc32c(payload)][payload]`,
 * the payload being the record as UTF-8 JSON.
 */
export const FRAME_HEADER_BYTES = 8;

/**
 * Largest payload the log writes or accepts. Real records are a few hundred bytes; the bound
 * exists so a damaged length field is recognised as damage instead of a request to read 4 GiB.
 */
export const MAX_RECORD_BYTES = 4 * 1024 * 1024;

/** Why a frame could not be decoded although all its declared bytes are present. */
export type CorruptReason = 'bad-length' | 'crc-mismatch' | 'bad-json' | 'bad-record';

/** Result of decoding the frame that starts at some offset. */
export type DecodeResult =
  /** A whole, checksummed, well-formed record; the next frame starts at `end`. */
  | { readonly kind: 'complete'; readonly record: LogRecord; readonly end: number }
  /** The bytes ran out inside the header or before the declared payload length. */
  | { readonly kind: 'torn'; readonly reason: string }
  /**
   * The frame is damaged. `crcValid` says the payload checksum matched (so the bytes are exactly
   * what a writer wrote, and the damage is not a torn write); `end` is where the frame would end
   * if its length field is believed.
   */
  | {
      readonly kind: 'corrupt';
      readonly reason: CorruptReason;
      readonly detail: string;
      readonly crcValid: boolean;
      readonly end?: number;
    };

const RECORD_TYPES: ReadonlySet<string> = new Set(['commit', 'heuristic', 'saga', 'saga-step', 'end']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Frames one record. Throws a RangeError when its JSON exceeds {@link MAX_RECORD_BYTES} and
 * whatever `JSON.stringify` throws for values JSON cannot hold.
 */
export function encodeRecord(record: LogRecord): Buffer {
  const json = recordJson(record);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + Buffer.byteLength(json, 'utf8'));
  frameJson(frame, 0, json);
  return frame;
}

/** The record's JSON, the payload of its frame. Throws what `JSON.stringify` throws. */
export function recordJson(record: LogRecord): string {
  const json = JSON.stringify(record);
  if (typeof json !== 'string') throw new TypeError('the record is not representable as JSON');
  return json;
}

/**
 * Room {@link frameJson} may need for `json`: UTF-8 takes at most three bytes per UTF-16 unit,
 * so this bound needs no pass over the string.
 */
export function maxFrameBytes(json: string): number {
  return FRAME_HEADER_BYTES + json.length * 3;
}

/**
 * Writes the frame of `json` into `target` at `offset`, which must have room for the whole frame
 * (its UTF-8 length plus the header; {@link maxFrameBytes} bounds that without a pass over the
 * string), and returns the offset after it. Lets the writer
 * frame records straight into one reused buffer instead of allocating one per record. Throws a
 * RangeError, leaving `target` before `offset` untouched, when the payload exceeds
 * {@link MAX_RECORD_BYTES}.
 */
export function frameJson(target: Buffer, offset: number, json: string): number {
  const start = offset + FRAME_HEADER_BYTES;
  const bytes = target.write(json, start, 'utf8');
  if (bytes > MAX_RECORD_BYTES) {
    throw new RangeError(`the record is ${bytes} bytes of JSON, over the ${MAX_RECORD_BYTES}-byte limit`);
  }
  target.writeUInt32LE(bytes, offset);
  target.writeUInt32LE(crc32c(target, 0, start, start + bytes), offset + 4);
  return start + bytes;
}

/** Decodes the frame starting at `offset` in `bytes`, which must be a frame boundary. */
export function decodeRecord(bytes: Uint8Array, offset: number): DecodeResult {
  const available = bytes.length - offset;
  if (available < FRAME_HEADER_BYTES) {
    return { kind: 'torn', reason: `only ${available} of the ${FRAME_HEADER_BYTES} header bytes are present` };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_BYTES);
  const length = view.getUint32(0, true);
  const storedCrc = view.getUint32(4, true);
  if (length === 0 || length > MAX_RECORD_BYTES) {
    return {
      kind: 'corrupt',
      reason: 'bad-length',
      detail: `declared payload length ${length} is outside 1..${MAX_RECORD_BYTES}`,
      crcValid: false,
    };
  }
  const start = offset + FRAME_HEADER_BYTES;
  const end = start + length;
  if (end > bytes.length) {
    return { kind: 'torn', reason: `declared payload length ${length} but only ${bytes.length - start} bytes follow` };
  }
  const actualCrc = crc32c(bytes, 0, start, end);
  if (actualCrc !== storedCrc) {
    return {
      kind: 'corrupt',
      reason: 'crc-mismatch',
      detail: `payload crc32c is ${hex(actualCrc)} but the header says ${hex(storedCrc)}`,
      crcValid: false,
      end,
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(bytes.subarray(start, end)));
  } catch (err) {
    return { kind: 'corrupt', reason: 'bad-json', detail: `payload is not UTF-8 JSON (${String(err)})`, crcValid: true, end };
  }
  if (!isLogRecord(parsed)) {
    return { kind: 'corrupt', reason: 'bad-record', detail: 'payload is JSON but not a log record (needs type and gtrid)', crcValid: true, end };
  }
  return { kind: 'complete', record: parsed, end };
}

/**
 * The first offset in `[from, bytes.length)` where a complete, valid frame starts, or -1.
 * Used to tell a torn tail (nothing valid after the damage) from damage in the middle.
 */
export function findNextRecord(bytes: Uint8Array, from: number): number {
  const OPEN_BRACE = 0x7b;
  const CLOSE_BRACE = 0x7d;
  for (let p = from; p + FRAME_HEADER_BYTES < bytes.length; p++) {
    // Cheap filters first: JSON.stringify of an object always yields `{...}`, so most offsets are
    // rejected without computing a checksum, keeping this linear in practice.
    const length = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
    if (length <= 0 || length > MAX_RECORD_BYTES) continue;
    const end = p + FRAME_HEADER_BYTES + length;
    if (end > bytes.length) continue;
    if (bytes[p + FRAME_HEADER_BYTES] !== OPEN_BRACE || bytes[end - 1] !== CLOSE_BRACE) continue;
    if (decodeRecord(bytes, p).kind === 'complete') return p;
  }
  return -1;
}

function isLogRecord(value: unknown): value is LogRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const rec = value as Record<string, unknown>;
  return typeof rec['type'] === 'string' && RECORD_TYPES.has(rec['type']) && typeof rec['gtrid'] === 'string' && rec['gtrid'] !== '';
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
