/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every log record.
 * Node 20 ships no CRC32C, and the log must not depend on a native addon for its integrity check.
 */

const POLY = 0x82f63b78;

// Slicing-by-16: 16 tables of 256 entries, back to back in one array (table t at t * 256). Replay
// checks every byte of every segment on open, and the writer checksums every record it appends,
// so the byte-at-a-time loop (table 0 alone) would cost the log measurably.
const SLICES = 16;
const TABLE: Int32Array = buildTable();

function buildTable(): Int32Array {
  const table = new Int32Array(SLICES * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    table[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = table[n]!;
    for (let t = 1; t < SLICES; t++) {
      c = table[c & 0xff]! ^ (c >>> 8);
      table[t * 256 + n] = c;
    }
  }
  return table;
}

/**
 * CRC-32C of `data[start, end)`, as an unsigned 32-bit integer. Pass a previous result as
 * `seed` to continue a checksum over several chunks.
 */
export function crc32c(data: Uint8Array, seed = 0, start = 0, end = data.length): number {
  const t = TABLE;
  let crc = ~seed;
  let i = start;
  // Four little-endian words per step through a DataView: a quarter of the loads (and bounds
  // checks) of reading the 16 bytes one by one.
  const words = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (; i + 16 <= end; i += 16) {
    const a = crc ^ words.getInt32(i, true);
    const b = words.getInt32(i + 4, true);
    const c = words.getInt32(i + 8, true);
    const d = words.getInt32(i + 12, true);
    crc =
      t[3840 + (a & 0xff)]! ^
      t[3584 + ((a >>> 8) & 0xff)]! ^
      t[3328 + ((a >>> 16) & 0xff)]! ^
      t[3072 + (a >>> 24)]! ^
      t[2816 + (b & 0xff)]! ^
      t[2560 + ((b >>> 8) & 0xff)]! ^
      t[2304 + ((b >>> 16) & 0xff)]! ^
      t[2048 + (b >>> 24)]! ^
      t[1792 + (c & 0xff)]! ^
      t[1536 + ((c >>> 8) & 0xff)]! ^
      t[1280 + ((c >>> 16) & 0xff)]! ^
      t[1024 + (c >>> 24)]! ^
      t[768 + (d & 0xff)]! ^
      t[512 + ((d >>> 8) & 0xff)]! ^
      t[256 + ((d >>> 16) & 0xff)]! ^
      t[d >>> 24]!;
  }
  for (; i < end; i++) crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}
