import { loadConfigFile } from '../../coordinator/config.js';
import { createDefaultLogger } from '../../coordinator/logger.js';
import type { CoordinatorConfig } from '../../coordinator/types.js';
import { inDoubtDecision, markerHoldersOf } from '../../coordinator/in-doubt-decision.js';
import { coordinatorOf, gtridTime } from '../../coordinator/xid.js';
import { inspectLogDir } from '../../log/file/inspect-log.js';
import type { CommitRecord, LogRecord, SagaRecord } from '../../log/log-record.js';
import type { Participant } from '../../participants/participant.js';
import { createParticipant } from '../../participants/registry.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { formatAge, formatJson, plural, renderTable, type CliIO } from '../output.js';

/** One prepared branch found in a database, with what the log says about it. */
interface StatusBranch {
  readonly participant: string;
  readonly gtrid: string;
  readonly bqual: string;
  readonly coordinatorId: string;
  readonly decision: 'commit' | 'rollback' | 'marker' | 'unknown';
  readonly ageMs?: number;
}

/** What `txcoord status` reports. */
export interface StatusView {
  readonly coordinatorId: string;
  /** Decided transactions whose phase two is not finished (running, or being retried). */
  readonly committing: readonly { readonly gtrid: string; readonly branches: string; readonly ageMs: number }[];
  /** Sagas without an end record: running, being retried, or waiting for recovery. */
  readonly sagas: readonly { readonly gtrid: string; readonly kind: string; readonly progress: string; readonly ageMs: number }[];
  readonly inDoubt: readonly StatusBranch[];
  readonly failures: readonly { readonly participant: string; readonly message: string }[];
}

/** The live records of the configured log, read without taking it over. */
async function liveRecords(config: CoordinatorConfig): Promise<readonly LogRecord[]> {
  if (config.log.type === 'file') return (await inspectLogDir(config.log.dir)).live;
  if (config.log.type === 'postgres') {
    const { inspectPostgresLog } = await import('../../log/postgres/index.js');
    return (await inspectPostgresLog(config.log)).live;
  }
  return [];
}

function sagaProgress(records: readonly LogRecord[], saga: SagaRecord): string {
  const steps = records.filter((r) => r.type === 'saga-step' && r.gtrid === saga.gtrid);
  const done = new Set(steps.flatMap((r) => (r.type === 'saga-step' && r.op === 'action' && r.phase === 'done' ? [r.step] : [])));
  const backward = steps.some((r) => r.type === 'saga-step' && (r.op === 'compensate' || r.phase === 'failed'));
  const total = saga.steps?.length;
  return `${backward ? 'compensating' : 'forward'}, ${done.size}${total !== undefined ? `/${total}` : ''} steps done`;
}

/**
 * Builds the status without opening the coordinator: reads the log (a file log while its owner
 * runs, or the shared tables) and asks every participant for its prepared branches.
 */
export async function collectStatus(config: CoordinatorConfig, now = Date.now()): Promise<StatusView> {
  const live = await liveRecords(config);
  const commits = new Map(live.filter((r): r is CommitRecord => r.type === 'commit').map((r) => [r.gtrid, r]));
  const logger = createDefaultLogger('silent');
  const inDoubt: StatusBranch[] = [];
  const failures: { participant: string; message: string }[] = [];
  const created = await Promise.all(
    Object.entries(config.participants).map(async ([name, pc]) => {
      try {
        return await createParticipant(name, pc, { logger });
      } catch (err) {
        failures.push({ participant: name, message: (err as Error).message });
        return undefined;
      }
    }),
  );
  const participants = created.filter((p): p is Participant => p !== undefined);
  // The same decision recovery would take (inDoubtDecision), with the same marker holders.
  const markerHolders = markerHoldersOf(participants, config.decisionIn);
  await Promise.all(
    participants.map(async (p) => {
      try {
        for (const xid of await p.listInDoubt()) {
          const owner = coordinatorOf(xid.gtrid) ?? '';
          const t = gtridTime(xid.gtrid);
          const { decision } = inDoubtDecision(xid, { committed: commits.has(xid.gtrid), ours: owner === config.id, markerHolders });
          inDoubt.push({ participant: p.name, gtrid: xid.gtrid, bqual: xid.bqual, coordinatorId: owner, decision, ...(t !== undefined ? { ageMs: now - t } : {}) });
        }
      } catch (err) {
        failures.push({ participant: p.name, message: (err as Error).message });
      } finally {
        await p.close();
      }
    }),
  );
  return {
    coordinatorId: config.id,
    committing: [...commits.values()].map((r) => ({ gtrid: r.gtrid, branches: r.branches.map((b) => b.participant).join(','), ageMs: now - r.decidedAt })),
    sagas: live.filter((r): r is SagaRecord => r.type === 'saga').map((r) => ({ gtrid: r.gtrid, kind: r.name ?? r.kind, progress: sagaProgress(live, r), ageMs: now - r.startedAt })),
    inDoubt: inDoubt.sort((a, b) => a.gtrid.localeCompare(b.gtrid) || a.participant.localeCompare(b.participant)),
    failures,
  };
}

/** Human form of the status. */
export function renderStatus(v: StatusView): string {
  let text = `Status of coordinator '${v.coordinatorId}':\n`;
  text += `\nDecided, phase two unfinished (in flight or retrying): ${v.committing.length}\n`;
  if (v.committing.length) text += renderTable([{ header: 'GTRID', cell: (r) => r.gtrid }, { header: 'BRANCHES', cell: (r) => r.branches }, { header: 'AGE', cell: (r) => formatAge(r.ageMs) }], v.committing);
  text += `\nSagas unfinished: ${v.sagas.length}\n`;
  if (v.sagas.length) text += renderTable([{ header: 'SAGA', cell: (r) => r.gtrid }, { header: 'KIND', cell: (r) => r.kind }, { header: 'PROGRESS', cell: (r) => r.progress }, { header: 'AGE', cell: (r) => formatAge(r.ageMs) }], v.sagas);
  text += `\nPrepared branches in the databases: ${v.inDoubt.length}\n`;
  if (v.inDoubt.length) {
    text += renderTable(
      [
        { header: 'PARTICIPANT', cell: (b) => b.participant },
        { header: 'GTRID', cell: (b) => b.gtrid },
        { header: 'BQUAL', cell: (b) => b.bqual },
        { header: 'DECISION', cell: (b) => b.decision },
        { header: 'AGE', cell: (b) => formatAge(b.ageMs) },
      ],
      v.inDoubt,
    );
  }
  if (v.failures.length) text += `\nCould not check ${plural(v.failures.length, 'participant')}:\n${v.failures.map((f) => `  ${f.participant}: ${f.message}\n`).join('')}`;
  return text;
}

/**
 * `txcoord status --config F [--json]`: what is in flight, retrying and in doubt, read while the
 * coordinator runs (it takes no lock). Exit 0 when nothing is pending, 1 otherwise.
 */
export async function runStatus(options: { config: string; json?: boolean }, io: CliIO): Promise<ExitCode> {
  const config = await loadConfigFile(options.config, io.env);
  const view = await collectStatus(config);
  io.out(options.json ? formatJson(view) : renderStatus(view));
  return view.committing.length || view.sagas.length || view.inDoubt.length || view.failures.length ? EXIT.ATTENTION : EXIT.OK;
}
