import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { TxcError } from '../../coordinator/errors.js';
import { inspectLogDir, type LogInspection } from '../../log/file/inspect-log.js';
import { verifyLogDir, type LogVerification } from '../../log/file/verify-log.js';
import type { LogRecord } from '../../log/log-record.js';
import type { LogConfig, PostgresLogConfig } from '../../log/decision-log.js';
import { openLog } from '../../log/open-log.js';
import { loadConfigFile } from '../../coordinator/config.js';
import { EXIT, verifyExitCode, type ExitCode } from '../exit-codes.js';
import { formatJson, plural, renderFacts, renderTable, type CliIO } from '../output.js';

/** The shared log named by `--config`, if that config uses one; undefined for a file log. */
async function sharedLogOf(options: { dir?: string; config?: string }, io: CliIO): Promise<PostgresLogConfig | undefined> {
  if (options.dir !== undefined && options.config !== undefined) throw new TxcError('TXC_USAGE', 'Give --dir or --config, not both');
  if (options.config === undefined) return undefined;
  const log = (await loadConfigFile(options.config, io.env)).log;
  if (log.type === 'postgres') return log;
  if (log.type === 'file') {
    (options as { dir?: string }).dir = log.dir;
    return undefined;
  }
  throw new TxcError('TXC_USAGE', `The config's log is of type ${log.type}, which keeps nothing to inspect`);
}

function requireDirOption(options: { dir?: string }): string {
  if (options.dir === undefined) throw new TxcError('TXC_USAGE', 'Give --dir <log directory> or --config <file>');
  return options.dir;
}

/** A wrong `--dir` is a usage error (exit 2), not a damaged log (exit 1). */
async function requireLogDir(dir: string): Promise<string> {
  const full = resolve(dir);
  const st = await stat(full).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new TxcError('TXC_USAGE', `No decision log directory at ${full}`, { details: { dir: full } });
  }
  return full;
}

function time(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

/** One-line summary of a record's content, after its type and gtrid. */
export function describeRecord(r: LogRecord): string {
  switch (r.type) {
    case 'commit': {
      const branches = r.branches.map((b) => `${b.participant}/${b.bqual}`).join(',');
      const meta = r.meta ? ` meta=${JSON.stringify(r.meta)}` : '';
      return `decided ${time(r.decidedAt)} branches=${branches} by ${r.coordinatorId} pid ${r.pid}@${r.host}${meta}`;
    }
    case 'heuristic':
      return `${r.participant}/${r.bqual} expected ${r.expected}, actual ${r.actual} at ${time(r.at)}`;
    case 'saga':
      return `saga ${r.kind}${r.name ? ` ${r.name}` : ''} started ${time(r.startedAt)}${r.steps ? ` steps=${r.steps.map((st) => st.name).join(',')}` : ''} by ${r.coordinatorId} pid ${r.pid}@${r.host}`;
    case 'saga-step':
      return `step ${r.step} ${r.op} ${r.phase}${r.error ? ` (${r.error.code})` : ''} at ${time(r.at)}`;
    case 'end':
      return `ended${r.status ? ` ${r.status}` : ''} ${time(r.at)}`;
  }
}

/** Human form of `log verify`. */
export function renderVerification(dir: string, v: LogVerification): string {
  let text = v.ok
    ? `Decision log ${dir}: OK\n`
    : `Decision log ${dir}: CORRUPT at ${basename(v.corruption?.file ?? '?')}:${v.corruption?.offset ?? '?'} (${v.corruption?.reason ?? 'unknown damage'})\n`;
  text += renderFacts([
    ['segments', v.segments.length],
    ['records', v.records],
    ['live', `${plural(v.liveTransactions, 'transaction')} (${plural(v.live, 'record')})`],
  ]);
  if (v.segments.length > 0) {
    text += '\n';
    text += renderTable(
      [
        { header: 'SEGMENT', cell: (s: LogVerification['segments'][number]) => basename(s.file) },
        { header: 'KIND', cell: (s) => s.kind },
        { header: 'BYTES', cell: (s) => String(s.bytes), align: 'right' },
        { header: 'RECORDS', cell: (s) => String(s.records), align: 'right' },
        { header: 'NOTE', cell: (s) => (s.superseded ? 'superseded by a snapshot' : '') },
      ],
      v.segments,
    );
  }
  if (v.notes.length > 0) text += `\nNotes:\n${v.notes.map((n) => `  - ${n}\n`).join('')}`;
  if (!v.ok) {
    text += `\nOpening this log fails with TXC_LOG_CORRUPT: restore it from backup, or see what it still holds with \`txcoord log inspect --dir ${dir}\`.\n`;
  }
  return text;
}

/** JSON form of `log verify`: absent findings are `null`, file names are relative to `dir`. */
export function verificationJson(dir: string, v: LogVerification): unknown {
  return {
    dir,
    ok: v.ok,
    segments: v.segments.map((s) => ({ file: basename(s.file), kind: s.kind, bytes: s.bytes, records: s.records, superseded: s.superseded })),
    records: v.records,
    live: v.live,
    liveTransactions: v.liveTransactions,
    tornTail: v.tornTail ? { ...v.tornTail, file: basename(v.tornTail.file) } : null,
    corruption: v.corruption ? { ...v.corruption, file: basename(v.corruption.file) } : null,
    notes: v.notes,
  };
}

/** Human form of `log inspect`: every record, then the live transactions recovery would finish. */
export function renderInspection(dir: string, ins: LogInspection): string {
  const superseded = ins.records.filter((r) => r.superseded).length;
  const liveGtrids = new Set(ins.live.map((r) => r.gtrid));
  let text = `Decision log ${dir}: ${plural(ins.records.length, 'record')}${superseded ? ` (${superseded} superseded)` : ''}, ${plural(liveGtrids.size, 'live transaction')}\n`;
  if (ins.records.length > 0) {
    text += '\n';
    text += renderTable(
      [
        { header: 'SEGMENT', cell: (r: LogInspection['records'][number]) => basename(r.file) },
        { header: 'OFFSET', cell: (r) => String(r.offset), align: 'right' },
        { header: 'TYPE', cell: (r) => r.record.type + (r.superseded ? '*' : '') },
        { header: 'GTRID', cell: (r) => r.record.gtrid },
        { header: 'DETAILS', cell: (r) => describeRecord(r.record) },
      ],
      ins.records,
    );
    if (superseded) text += '(* in a segment superseded by a compaction snapshot)\n';
  }
  text += '\nLive transactions (commit decided, not yet ended: recovery finishes them):\n';
  if (ins.live.length === 0) text += '  none\n';
  else {
    text += '\n';
    text += renderTable(
      [
        { header: 'TYPE', cell: (r: LogRecord) => r.type },
        { header: 'GTRID', cell: (r) => r.gtrid },
        { header: 'DETAILS', cell: (r) => describeRecord(r) },
      ],
      ins.live,
    );
  }
  const damage = [...ins.gaps.map((g) => `skipped ${g.bytes} damaged bytes at ${basename(g.file)}:${g.offset} (${g.reason})`)];
  if (ins.tornTail) damage.push(`torn tail of ${ins.tornTail.bytes} bytes at ${basename(ins.tornTail.file)}:${ins.tornTail.offset} (${ins.tornTail.reason}); the next open cuts it off`);
  if (ins.corruption) damage.push(`the log is corrupt at ${basename(ins.corruption.file)}:${ins.corruption.offset}: opening it fails with TXC_LOG_CORRUPT, so the live set above is a best effort`);
  if (damage.length > 0) text += `\nDamage:\n${damage.map((d) => `  - ${d}\n`).join('')}`;
  return text;
}

/** JSON form of `log inspect`. */
export function inspectionJson(dir: string, ins: LogInspection): unknown {
  return {
    dir,
    records: ins.records.map((r) => ({ file: basename(r.file), offset: r.offset, superseded: r.superseded, record: r.record })),
    live: ins.live,
    gaps: ins.gaps.map((g) => ({ ...g, file: basename(g.file) })),
    tornTail: ins.tornTail ? { ...ins.tornTail, file: basename(ins.tornTail.file) } : null,
    corruption: ins.corruption ? { ...ins.corruption, file: basename(ins.corruption.file) } : null,
  };
}

/** `txcoord log verify --dir D [--json]`: read-only check; exit 0 when the log opens cleanly, 1 when corrupt. */
export async function runLogVerify(options: { dir?: string; config?: string; json?: boolean }, io: CliIO): Promise<ExitCode> {
  const shared = await sharedLogOf(options, io);
  if (shared) {
    const { verifyPostgresLog } = await import('../../log/postgres/index.js');
    const v = await verifyPostgresLog(shared);
    io.out(
      options.json
        ? formatJson(v)
        : `Shared decision log (PostgreSQL, schema ${shared.schema ?? 'public'}): ${v.ok ? 'OK' : 'PROBLEMS FOUND'}\n` +
            renderFacts([
              ['records', v.records],
              ['live', `${plural(v.liveTransactions, 'transaction')} (${plural(v.live, 'record')})`],
              ['bad rows', v.bad.length],
            ]) +
            v.bad.map((b) => `  seq ${b.seq} (${b.gtrid}): ${b.reason}\n`).join('') +
            v.notes.map((n) => `  note: ${n}\n`).join(''),
    );
    return v.ok ? EXIT.OK : EXIT.ATTENTION;
  }
  const dir = await requireLogDir(requireDirOption(options));
  const v = await verifyLogDir(dir);
  io.out(options.json ? formatJson(verificationJson(dir, v)) : renderVerification(dir, v));
  return verifyExitCode(v);
}

/** `txcoord log inspect --dir D [--json]`: every readable record and the live set; exit 1 when the log is corrupt. */
export async function runLogInspect(options: { dir?: string; config?: string; json?: boolean }, io: CliIO): Promise<ExitCode> {
  const shared = await sharedLogOf(options, io);
  if (shared) {
    const { inspectPostgresLog } = await import('../../log/postgres/index.js');
    const ins = await inspectPostgresLog(shared);
    if (options.json) io.out(formatJson(ins));
    else {
      let text = `Shared decision log (PostgreSQL, schema ${shared.schema ?? 'public'}): ${plural(ins.records, 'record')}, ${plural(ins.transactions.length, 'live transaction')}\n\nCoordinator processes:\n`;
      text += renderTable(
        [
          { header: 'ID', cell: (i) => i.coordinatorId },
          { header: 'HOST', cell: (i) => `${i.host ?? '?'}:${i.pid ?? '?'}` },
          { header: 'ALIVE', cell: (i) => (i.alive ? 'yes' : 'no') },
          { header: 'LEASE UNTIL', cell: (i) => i.leaseUntil },
          { header: 'CLAIMED BY', cell: (i) => i.claimedBy ?? '' },
        ],
        ins.instances,
      );
      if (ins.transactions.length) {
        text += '\nLive transactions:\n';
        text += renderTable(
          [
            { header: 'GTRID', cell: (t) => t.gtrid },
            { header: 'OWNER', cell: (t) => t.owner },
            { header: 'LEASE', cell: (t) => (t.expired ? `expired ${t.leaseUntil}` : `until ${t.leaseUntil}`) },
          ],
          ins.transactions,
        );
        text += '\nLive records:\n';
        text += renderTable(
          [
            { header: 'TYPE', cell: (r) => r.type },
            { header: 'GTRID', cell: (r) => r.gtrid },
            { header: 'DETAILS', cell: (r) => describeRecord(r) },
          ],
          ins.live,
        );
      }
      io.out(text);
    }
    return EXIT.OK;
  }
  const dir = await requireLogDir(requireDirOption(options));
  const ins = await inspectLogDir(dir);
  io.out(options.json ? formatJson(inspectionJson(dir, ins)) : renderInspection(dir, ins));
  return ins.corruption ? EXIT.ATTENTION : EXIT.OK;
}

/**
 * `txcoord log compact --dir D` (file log; takes its lock, so the coordinator must be stopped) or
 * `--config F` (either log type): rewrites the log so it holds only what recovery still needs.
 */
export async function runLogCompact(opts: { dir?: string; config?: string; json?: boolean }, io: CliIO): Promise<ExitCode> {
  let config: LogConfig;
  let id: string | undefined;
  if (opts.config) ({ log: config, id } = await loadConfigFile(opts.config, io.env));
  else if (opts.dir) config = { type: 'file', dir: await requireLogDir(opts.dir) };
  else throw new TxcError('TXC_USAGE', 'Give --dir <log directory> or --config <file>');
  const log = await openLog(config, id ? { coordinatorId: id } : {});
  try {
    const before = log.live().length;
    await log.compact();
    const after = log.live().length;
    io.out(opts.json ? formatJson({ ok: true, liveRecords: after }) : `Compacted the ${config.type} decision log: ${plural(after, 'live record')} kept${before !== after ? ` (was ${before})` : ''}.\n`);
    return EXIT.OK;
  } finally {
    await log.close();
  }
}
