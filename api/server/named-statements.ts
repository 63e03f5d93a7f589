import type { JsonValue } from '../../log/log-record.js';

/**
 * How a driver writes positional parameters: `$1` (PostgreSQL, PGlite), `?` (MySQL / MariaDB),
 * `@p1` (SQL Server), `:name` (Oracle, which binds by position of occurrence).
 */
export type PlaceholderStyle = 'dollar' | 'question' | 'at' | 'colon';

/** The placeholder style of a driver; drivers it does not know (custom adapters) get PostgreSQL's `$n`. */
export function placeholderStyleFor(driver: string): PlaceholderStyle {
  switch (driver) {
    case 'mysql':
      return 'question';
    case 'mssql':
      return 'at';
    case 'oracle':
      return 'colon';
    default:
      return 'dollar';
  }
}

/** A named statement translated to one driver's placeholders. */
export interface CompiledStatement {
  /** The SQL as the driver takes it. */
  readonly sql: string;
  /** For each positional value the driver expects, in order, the name whose value goes there. */
  readonly slots: readonly string[];
  /** Distinct parameter names, in order of first use. */
  readonly names: readonly string[];
}

/** A statement the compiler cannot translate safely; the message says why (the caller names the config field). */
export class NamedStatementError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NamedStatementError';
  }
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;
const PLSQL = /^\s*(?:begin|declare|call)\b/i;

function isIdentPart(c: string | undefined): boolean {
  return c !== undefined && IDENT_PART.test(c);
}

/** Index just past the end of a quoted run opened at `start` by `quote`, where a doubled quote escapes it. */
function skipQuoted(sql: string, start: number, quote: string, backslash: boolean): number {
  for (let i = start + 1; i < sql.length; i++) {
    const c = sql[i];
    if (backslash && c === '\\') {
      i++;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        i++;
        continue;
      }
      return i + 1;
    }
  }
  throw new NamedStatementError(`has an unterminated ${quote} quote`);
}

function skipBlockComment(sql: string, start: number, nested: boolean): number {
  let depth = 0;
  for (let i = start; i < sql.length - 1; i++) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      if (depth > 0 && !nested) continue;
      depth++;
      i++;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i++;
      if (depth === 0) return i + 1;
    }
  }
  throw new NamedStatementError('has an unterminated /* comment');
}

function skipLine(sql: string, start: number): number {
  const nl = sql.indexOf('\n', start);
  return nl < 0 ? sql.length : nl + 1;
}

/** Oracle's alternative quoting: q'[...]', q'{...}', q'<...>', q'(...)' or q'X...X'. */
function skipOracleQ(sql: string, start: number): number {
  const open = sql[start + 2];
  if (open === undefined) throw new NamedStatementError("has an unterminated q' quote");
  const close = ({ '[': ']', '{': '}', '<': '>', '(': ')' } as Record<string, string>)[open] ?? open;
  const end = sql.indexOf(`${close}'`, start + 3);
  if (end < 0) throw new NamedStatementError("has an unterminated q' quote");
  return end + 2;
}

/** PostgreSQL dollar quoting `$tag$...$tag$`, or undefined when `$` at `start` does not open one. */
function skipDollarQuote(sql: string, start: number): number | undefined {
  const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(start, start + 66));
  if (!m) return undefined;
  const tag = m[0];
  const end = sql.indexOf(tag, start + tag.length);
  if (end < 0) throw new NamedStatementError(`has an unterminated ${tag} quote`);
  return end + tag.length;
}

/**
 * Translates a statement written with `:name` parameters into `style`'s placeholders. Quoted
 * strings, quoted identifiers, comments, `::` casts and `:=` are left alone, and so is a colon
 * right after an identifier character (`arr[lo:hi]`), so only a real parameter is replaced.
 *
 * PostgreSQL and SQL Server reuse one number per name; MySQL's `?` and Oracle's positional
 * binds take one value per occurrence (Oracle PL/SQL blocks one per distinct name, as the driver does).
 * Text that would be taken as a positional placeholder already (`$1`, `@p1`, any `?` for mysql2,
 * which substitutes `?` even inside quotes) is refused: the statement must use `:name` only.
 */
export function compileNamedStatement(sql: string, style: PlaceholderStyle): CompiledStatement {
  const pg = style === 'dollar';
  const mysql = style === 'question';
  const mssql = style === 'at';
  const oracle = style === 'colon';
  if (mysql && sql.includes('?')) {
    throw new NamedStatementError("contains '?', which mysql2 takes as a placeholder even inside quotes or comments: use :name parameters (or CHAR(63))");
  }
  const occurrences: string[] = [];
  let out = '';
  let i = 0;
  const copyTo = (end: number) => {
    out += sql.slice(i, end);
    i = end;
  };
  while (i < sql.length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    const prev = sql[i - 1];
    if (c === '-' && next === '-') copyTo(skipLine(sql, i));
    else if (c === '#' && mysql) copyTo(skipLine(sql, i));
    else if (c === '/' && next === '*') copyTo(skipBlockComment(sql, i, pg));
    else if (c === "'") {
      // MySQL always, PostgreSQL only in E'...' strings, treat a backslash as an escape.
      const eString = pg && (prev === 'E' || prev === 'e') && !isIdentPart(sql[i - 2]);
      copyTo(skipQuoted(sql, i, "'", mysql || eString));
    } else if (c === '"') copyTo(skipQuoted(sql, i, '"', mysql));
    else if (c === '`' && mysql) copyTo(skipQuoted(sql, i, '`', false));
    else if (c === '[' && mssql) copyTo(skipQuoted(sql, i, ']', false));
    else if (oracle && (c === 'q' || c === 'Q') && next === "'" && !isIdentPart(prev)) copyTo(skipOracleQ(sql, i));
    else if (pg && c === '$' && !isIdentPart(prev)) {
      if (next !== undefined && /[0-9]/.test(next)) throw new NamedStatementError(`uses a positional $${next} placeholder: use :name parameters`);
      const end = skipDollarQuote(sql, i);
      if (end !== undefined) copyTo(end);
      else copyTo(i + 1);
    } else if (mssql && c === '@' && /^@p[0-9]/i.test(sql.slice(i, i + 3)) && !isIdentPart(prev) && prev !== '@') {
      throw new NamedStatementError(`uses ${sql.slice(i, i + 3)}, which is how parameters are numbered for SQL Server: use :name parameters`);
    } else if (c === ':' && next === ':') copyTo(i + 2);
    else if (c === ':' && next !== undefined && IDENT_START.test(next) && !isIdentPart(prev)) {
      let end = i + 2;
      while (isIdentPart(sql[end])) end++;
      const name = sql.slice(i + 1, end);
      occurrences.push(name);
      if (oracle) out += `:${name}`;
      else if (mysql) out += '?';
      else {
        const distinct = [...new Set(occurrences)];
        const n = distinct.indexOf(name) + 1;
        out += pg ? `$${n}` : `@p${n}`;
      }
      i = end;
    } else copyTo(i + 1);
  }
  const names = [...new Set(occurrences)];
  const perOccurrence = mysql || (oracle && !PLSQL.test(sql));
  return { sql: out, slots: perOccurrence ? occurrences : names, names };
}

/**
 * The positional values for `statement` from named `values`. Throws `NamedStatementError`
 * naming the first parameter that has no value (the caller checks for extra names).
 */
export function bindNamedParams(statement: CompiledStatement, values: Readonly<Record<string, JsonValue>>): JsonValue[] {
  return statement.slots.map((name) => {
    if (!Object.hasOwn(values, name)) throw new NamedStatementError(`has no value for :${name}`);
    return values[name] as JsonValue;
  });
}
