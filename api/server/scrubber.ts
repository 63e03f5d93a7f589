import { redactUrl } from '../../coordinator/logger.js';

/** Removes secrets from text before it reaches a log line or an error answer. */
export interface Scrubber {
  /** Scrubs free text: URL credentials, `Bearer` tokens, and every configured secret. */
  text(s: string): string;
  /**
   * Scrubs one serialized JSON log line, string literal by string literal, so a replacement can
   * never run across a quote and leave the line unparseable.
   */
  line(s: string): string;
}

/** Shortest configured secret replaced verbatim; shorter strings would blank ordinary words. */
const MIN_SECRET = 8;
// RFC 6750 token characters (never `"` or `\`, which would end or escape a JSON literal); at
// least 8 of them, so prose such as "Bearer <token>" or "bearer token" is left alone.
const BEARER = /\b([Bb]earer\s+)[A-Za-z0-9._~+/-]{8,}=*/g;
const JSON_STRING = /"(?:[^"\\]|\\.)*"/g;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A scrubber for `secrets` (the API tokens, which are object keys in the config and so escape
 * pino's path redaction). Each secret is matched raw and in its JSON-escaped form.
 */
export function createScrubber(secrets: readonly string[] = []): Scrubber {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (s.length < MIN_SECRET) continue;
    forms.add(s);
    forms.add(JSON.stringify(s).slice(1, -1));
  }
  // Longest first, so a secret containing another is replaced whole.
  const pattern = forms.size ? new RegExp([...forms].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g') : undefined;
  const text = (s: string): string => {
    let out = redactUrl(s).replace(BEARER, '$1[redacted]');
    if (pattern) out = out.replace(pattern, '[redacted]');
    return out;
  };
  return {
    text,
    line: (s) => s.replace(JSON_STRING, (lit) => `"${text(lit.slice(1, -1))}"`),
  };
}

/**
 * `value` with every string inside it scrubbed, copying own enumerable properties (what
 * JSON.stringify would write); depth-bounded, for serialized errors and their causes.
 */
export function scrubDeep(value: unknown, scrub: (s: string) => string, depth = 0): unknown {
  if (typeof value === 'string') return scrub(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v: unknown) => scrubDeep(v, scrub, depth + 1));
  if (value instanceof Date || ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: scrubDeep(v, scrub, depth + 1), enumerable: true, writable: true, configurable: true });
  return out;
}
