import type { Json } from '../../client/wire-types.js';

/** Nesting past this is cut to null: rows come from our own databases, but a cycle must not hang us. */
const MAX_DEPTH = 64;

/**
 * A driver value as JSON: bigint as a decimal string (it may exceed 2^53), Date as ISO-8601,
 * bytes as base64, non-finite numbers and undefined as null; arrays and plain objects (JSON
 * columns) recursively; other objects through their `toJSON`, else `String()`.
 */
export function toWireJson(value: unknown, depth = 0): Json {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      return String(value);
  }
  if (depth >= MAX_DEPTH) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map((v: unknown) => toWireJson(v, depth + 1));
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    return typeof toJSON === 'function' ? toWireJson((toJSON as () => unknown).call(value), depth + 1) : String(value);
  }
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    // defineProperty: a column named __proto__ must stay a plain key, not replace the prototype.
    Object.defineProperty(out, k, { value: toWireJson(v, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
