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
  const payload = recordPayload(record);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.bytes);
  writeFrame(frame, 0, payload);
  return frame;
}

/** A record as JSON, with its UTF-8 length: what {@link writeFrame} puts on disk. */
export interface RecordPayload {
  readonly json: string;
  readonly bytes: number;
}

/**
 * The record's JSON and its UTF-8 length, checked against {@link MAX_RECORD_BYTES}. Throws as
 * {@link encodeRecord} does.
 */
export function recordPayload(record: LogRecord): RecordPayload {
  const json = JSON.stringify(record);
  if (typeof json !== 'string') throw new TypeError('the record is not representable as JSON');
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_RECORD_BYTES) {
    throw new RangeError(`the record is ${bytes} bytes of JSON, over the ${MAX_RECORD_BYTES}-byte limit`);
  }
  return { json, bytes };
}

/**
 * Writes the frame of `payload` into `target` at `offset` (which must have room for
 * FRAME_HEADER_BYTES + payload.bytes); returns the offset after it. Lets the writer frame a whole
 * batch into one reused buffer instead of allocating a buffer per record and concatenating.
 */
export function writeFrame(target: Buffer, offset: number, payload: RecordPayload): number {
  const start = offset + FRAME_HEADER_BYTES;
  target.write(payload.json, start, payload.bytes, 'utf8');
  target.writeUInt32LE(payload.bytes, offset);
  target.writeUInt32LE(crc32c(target, 0, start, start + payload.bytes), offset + 4);
  return start + payload.bytes;
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
