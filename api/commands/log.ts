import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { TxcError } from '../../coordinator/errors.js';
import { inspectLogDir, type LogInspection } from '../../log/file/inspect-log.js';
import { verifyLogDir, type LogVerification } from '../../log/file/verify-log.js';
import type { LogRecord } from '../../log/log-record.js';
import { EXIT, verifyExitCode, type ExitCode } from '../exit-codes.js';
import { formatJson, plural, renderFacts, renderTable, type CliIO } from '../output.js';

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
    case 'end':
      return `ended ${time(r.at)}`;
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
export async function runLogVerify(options: { dir: string; json?: boolean }, io: CliIO): Promise<ExitCode> {
  const dir = await requireLogDir(options.dir);
  const v = await verifyLogDir(dir);
  io.out(options.json ? formatJson(verificationJson(dir, v)) : renderVerification(dir, v));
  return verifyExitCode(v);
}

/** `txcoord log inspect --dir D [--json]`: every readable record and the live set; exit 1 when the log is corrupt. */
export async function runLogInspect(options: { dir: string; json?: boolean }, io: CliIO): Promise<ExitCode> {
  const dir = await requireLogDir(options.dir);
  const ins = await inspectLogDir(dir);
  io.out(options.json ? formatJson(inspectionJson(dir, ins)) : renderInspection(dir, ins));
  return ins.corruption ? EXIT.ATTENTION : EXIT.OK;
}
