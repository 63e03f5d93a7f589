import { TxcError } from '../coordinator/errors.js';
import { redactUrl } from '../coordinator/logger.js';

/**
 * Where a command writes. Commands never touch `process` directly, so unit tests can capture
 * their output and pretend to be (or not be) a terminal.
 */
export interface CliIO {
  /** Writes to standard output (the command's result). */
  out(text: string): void;
  /** Writes to standard error (diagnostics, never results). */
  err(text: string): void;
  /** Whether standard output is a terminal (progress indicators and colour-free tables only then). */
  readonly isTTY: boolean;
  /** Environment, for TXCOORD_DEBUG / TXCOORD_LOG_LEVEL. */
  readonly env: NodeJS.ProcessEnv;
}

/** The real process's streams. */
export function processIO(): CliIO {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    isTTY: process.stdout.isTTY === true,
    env: process.env,
  };
}

/** One column of a table: its header, how to get the cell from a row, and its alignment. */
export interface Column<R> {
  readonly header: string;
  readonly cell: (row: R) => string;
  /** Numbers read better right-aligned. Default left. */
  readonly align?: 'left' | 'right';
}

/**
 * Renders rows as an aligned plain-text table (header, dashes, rows), each line ending in a
 * newline. Plain spaces only: the output stays readable when piped into `less` or a log.
 */
export function renderTable<R>(columns: readonly Column<R>[], rows: readonly R[]): string {
  const cells = rows.map((r) => columns.map((c) => c.cell(r)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => {
        const w = widths[i] ?? 0;
        return columns[i]?.align === 'right' ? v.padStart(w) : v.padEnd(w);
      })
      .join('  ')
      .trimEnd() + '\n';
  return line(columns.map((c) => c.header)) + line(widths.map((w) => '-'.repeat(w))) + cells.map(line).join('');
}

/** `1 branch`, `2 branches`: a count with its noun. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Renders `label  value` pairs with the values aligned, one per line, indented by two spaces. */
export function renderFacts(facts: readonly (readonly [string, string | number])[]): string {
  const width = Math.max(0, ...facts.map(([k]) => k.length));
  return facts.map(([k, v]) => `  ${k.padEnd(width)}  ${v}\n`).join('');
}

/** A short human duration: `850ms`, `42s`, `3m 05s`, `2h 07m`, `4d 03h`; `-` when unknown. */
export function formatAge(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d ${two(Math.floor(s / 3600) % 24)}h`;
}

/** Stable machine-readable output: two-space JSON and a final newline. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function causeChain(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  // Bounded: a cause cycle must not hang the error printer.
  for (let depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    parts.push(e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join('\nCaused by: ');
}

/**
 * The error report for stderr. An expected failure (a TxcError) is exactly one line,
 * `txcoord: CODE: message`, whose message already says what to do. Anything else is a bug or an
 * environment problem: one line too, unless `debug` (TXCOORD_DEBUG=1) asks for the stack and
 * causes. Credentials inside URLs are masked either way.
 */
export function formatError(err: unknown, debug = false): string {
  if (TxcError.is(err)) {
    const line = `txcoord: ${err.code}: ${err.message.replace(/\s*\n\s*/g, ' ')}`;
    return redactUrl(debug ? `${line}\n${causeChain(err)}` : line) + '\n';
  }
  if (debug) return redactUrl(`txcoord: unexpected error: ${causeChain(err)}`) + '\n';
  const message = err instanceof Error ? err.message : String(err);
  return redactUrl(`txcoord: unexpected error: ${message.replace(/\s*\n\s*/g, ' ')} (run with TXCOORD_DEBUG=1 for the stack)`) + '\n';
}

/** Whether TXCOORD_DEBUG asks for stacks. */
export function isDebug(env: NodeJS.ProcessEnv): boolean {
  const v = env['TXCOORD_DEBUG'];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}
