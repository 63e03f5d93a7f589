import type { TediousDataType, TediousParameterOptions, TediousTypes } from './driver.js';

/** One value ready for `Request.addParameter`. */
export interface TediousParameter {
  readonly type: TediousDataType;
  readonly value: unknown;
  readonly options?: TediousParameterOptions;
}

const INT_MIN = -2_147_483_648;
const INT_MAX = 2_147_483_647;
const BIGINT_MIN = -(2n ** 63n);
const BIGINT_MAX = 2n ** 63n - 1n;

/**
 * The tedious type for one positional value of `query()`: null/undefined → NVarChar NULL (SQL
 * Server converts a typed NULL to any column type), boolean → Bit, integer → Int or BigInt by
 * range, other number → Float, bigint → BigInt, string → NVarChar, Date → DateTime2 (UTC),
 * Buffer/Uint8Array → VarBinary. Anything else throws a TypeError (RangeError when out of
 * range) before anything is sent, rather than letting tedious coerce it silently.
 */
export function tediousParameter(value: unknown, types: TediousTypes): TediousParameter {
  if (value === null || value === undefined) return { type: types.NVarChar, value: null };
  switch (typeof value) {
    case 'boolean':
      return { type: types.Bit, value };
    case 'number':
      if (!Number.isFinite(value)) throw new RangeError(`SQL Server has no ${value}: only finite numbers can be bound`);
      if (Number.isInteger(value)) {
        if (value >= INT_MIN && value <= INT_MAX) return { type: types.Int, value };
        // Beyond 2^53 a JS number is no longer an exact integer: bind it as the float it is.
        if (Number.isSafeInteger(value)) return { type: types.BigInt, value: BigInt(value) };
      }
      return { type: types.Float, value };
    case 'bigint':
      if (value < BIGINT_MIN || value > BIGINT_MAX) throw new RangeError(`${value} does not fit a SQL Server bigint`);
      return { type: types.BigInt, value };
    case 'string':
      return { type: types.NVarChar, value };
    case 'object':
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new RangeError('Cannot bind an invalid Date');
        return { type: types.DateTime2, value };
      }
      if (Buffer.isBuffer(value)) return { type: types.VarBinary, value };
      if (value instanceof Uint8Array) return { type: types.VarBinary, value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
      break;
    default:
      break;
  }
  const what = typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
  throw new TypeError(`Cannot bind a value of type ${what}: pass null, boolean, number, bigint, string, Date or Buffer`);
}

/** A varchar key parameter of fixed declared length, for txcoord's own tables (varchar columns). */
export function varcharParameter(value: string, length: number, types: TediousTypes): TediousParameter {
  // Matching the column's type keeps index seeks (an nvarchar parameter against a varchar column
  // can force a scan), and with it key-range locks on exactly the one key.
  return { type: types.VarChar, value, options: { length } };
}
