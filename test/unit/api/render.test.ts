import { describe, expect, it } from 'vitest';
import { inDoubtJson, renderInDoubt } from '../../../api/commands/in-doubt.js';
import { describeRecord, inspectionJson, renderInspection, renderVerification, verificationJson } from '../../../api/commands/log.js';
import { plannedAction, recoveryJson, renderRecovery } from '../../../api/commands/recover.js';
import type { InDoubtBranch, RecoveryReport } from '../../../coordinator/types.js';
import type { LogInspection } from '../../../log/file/inspect-log.js';
import type { LogVerification } from '../../../log/file/verify-log.js';

const G1 = 'txc1.me.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b';
const G2 = 'txc1.other.0190a1b2c3d47e5f8a9b0c1d2e3f4a5c';

const branches: InDoubtBranch[] = [
  { participant: 'erp', gtrid: G2, bqual: 'b1', coordinatorId: 'other', decision: 'unknown', inFlight: false },
  { participant: 'crm', gtrid: G1, bqual: 'b0', coordinatorId: 'me', decision: 'commit', inFlight: false, ageMs: 65_000 },
];

describe('in-doubt rendering', () => {
  it('prints a sorted, aligned table with every column', () => {
    const text = renderInDoubt({ coordinatorId: 'me', branches, failures: [] });
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^2 prepared branches in doubt/);
    const header = lines.find((l) => l.startsWith('PARTICIPANT')) ?? '';
    expect(header.split(/\s{2,}/)).toEqual(['PARTICIPANT', 'GTRID', 'BQUAL', 'OWNER', 'DECISION', 'IN-FLIGHT', 'AGE']);
    const rows = lines.slice(lines.indexOf(header) + 2).filter(Boolean);
    expect(rows[0]).toMatch(/^crm\s+txc1\.me\.\S+\s+b0\s+me\s+commit\s+no\s+1m 05s$/);
    expect(rows[1]).toMatch(/^erp\s+txc1\.other\.\S+\s+b1\s+other\s+unknown\s+no\s+-$/);
    // Columns line up: every row starts its GTRID where the header does.
    const col = header.indexOf('GTRID');
    for (const r of rows) expect(r.slice(col, col + 5)).toBe('txc1.');
  });

  it('says so when there is nothing, and does not claim "none" for participants it could not check', () => {
    expect(renderInDoubt({ coordinatorId: 'me', branches: [], failures: [] })).toBe('No prepared txcoord branches in any participant.\n');
    const text = renderInDoubt({
      coordinatorId: 'me',
      branches: [],
      failures: [{ participant: 'erp', code: 'TXC_PARTICIPANT_UNAVAILABLE', message: 'connect ECONNREFUSED postgres://u:pw@h/db' }],
    });
    expect(text).toContain('in the participants that answered');
    expect(text).toContain('erp: TXC_PARTICIPANT_UNAVAILABLE');
    expect(text).not.toContain(':pw@');
  });

  it('emits stable JSON: sorted branches, every field present', () => {
    const json = inDoubtJson({ coordinatorId: 'me', branches, failures: [] });
    expect(json).toEqual({
      coordinatorId: 'me',
      branches: [
        { participant: 'crm', gtrid: G1, bqual: 'b0', coordinatorId: 'me', decision: 'commit', inFlight: false, ageMs: 65_000 },
        { participant: 'erp', gtrid: G2, bqual: 'b1', coordinatorId: 'other', decision: 'unknown', inFlight: false, ageMs: null },
      ],
      failures: [],
    });
  });
});

describe('recover rendering', () => {
  const report: RecoveryReport = { committed: 2, rolledBack: 1, ended: 2, heuristic: [], remaining: [], failures: [], sagas: { resumed: 0, committed: 0, compensated: 0, failed: 0, remaining: [] }, markersRemoved: 0, barrierRowsRemoved: 0 };

  it('summarises a clean pass', () => {
    const text = renderRecovery(report, 'me', false);
    expect(text).toMatch(/committed\s+2/);
    expect(text).toMatch(/rolled back\s+1/);
    expect(text).toMatch(/still in doubt\s+0/);
    expect(text).toContain("Nothing owned by 'me' is left in doubt.");
  });

  it('lists what is left, and failures, after an incomplete pass', () => {
    const text = renderRecovery(
      { ...report, remaining: [branches[1] as InDoubtBranch], failures: [{ participant: 'crm', code: 'TXC_PARTICIPANT_UNAVAILABLE', message: 'down' }] },
      'me',
      false,
    );
    expect(text).toContain('Still in doubt:');
    expect(text).toContain('crm: TXC_PARTICIPANT_UNAVAILABLE: down');
    expect(text).toContain("1 branch owned by 'me' still in doubt, 1 participant problem: ");
  });

  it('shows the planned action of each branch in a dry run', () => {
    const dry = { ...report, committed: 0, rolledBack: 0, ended: 0, remaining: branches };
    const text = renderRecovery(dry, 'me', true);
    expect(text).toContain('nothing was changed');
    expect(text).toMatch(/ACTION/);
    expect(text).toMatch(/crm .* commit\s*$/m);
    expect(text).toContain('leave (owned by other)');
    expect(text).toContain('A recovery pass would resolve 1 branch');
    expect(plannedAction({ ...(branches[1] as InDoubtBranch), decision: 'rollback' }, 'me')).toBe('roll back');
    expect(plannedAction({ ...(branches[1] as InDoubtBranch), inFlight: true }, 'me')).toBe('leave (in flight)');
  });

  it('emits stable JSON with the dry-run action per branch', () => {
    const json = recoveryJson({ ...report, remaining: branches }, 'me', true) as { remaining: { action: string }[]; dryRun: boolean };
    expect(json.dryRun).toBe(true);
    expect(json.remaining.map((b) => b.action)).toEqual(['commit', 'leave (owned by other)']);
    expect(Object.keys(json)).toEqual(['coordinatorId', 'dryRun', 'committed', 'rolledBack', 'ended', 'heuristic', 'remaining', 'failures', 'sagas', 'markersRemoved', 'barrierRowsRemoved']);
  });
});

describe('log rendering', () => {
  const commit = {
    type: 'commit',
    gtrid: G1,
    branches: [
      { participant: 'crm', bqual: 'b0' },
      { participant: 'erp', bqual: 'b1', localTxId: '77' },
    ],
    coordinatorId: 'me',
    host: 'h',
    pid: 42,
    startedAt: 0,
    decidedAt: 1_700_000_000_000,
    meta: { user: 'u1' },
  } as const;

  it('describes each record type on one line', () => {
    expect(describeRecord(commit)).toBe('decided 2023-11-14T22:13:20.000Z branches=crm/b0,erp/b1 by me pid 42@h meta={"user":"u1"}');
    expect(describeRecord({ type: 'end', gtrid: G1, at: 0 })).toBe('ended 1970-01-01T00:00:00.000Z');
    expect(describeRecord({ type: 'heuristic', gtrid: G1, participant: 'erp', bqual: 'b1', expected: 'commit', actual: 'rolled-back', at: 0 })).toContain(
      'erp/b1 expected commit, actual rolled-back',
    );
  });

  const ok: LogVerification = {
    ok: true,
    segments: [{ file: '/x/seg-0000000000000001.log', records: 3, bytes: 900, kind: 'append', superseded: false }],
    records: 3,
    live: 1,
    liveTransactions: 1,
    tornTail: { file: '/x/seg-0000000000000001.log', offset: 880, bytes: 20, reason: 'torn record' },
    notes: ['torn tail of 20 bytes'],
  };

  it('renders a healthy verification with its notes, and a corrupt one with what to do', () => {
    const text = renderVerification('/x', ok);
    expect(text.split('\n')[0]).toBe('Decision log /x: OK');
    expect(text).toMatch(/seg-0000000000000001\.log\s+append\s+900\s+3/);
    expect(text).toContain('torn tail of 20 bytes');
    const bad = renderVerification('/x', { ...ok, ok: false, corruption: { file: '/x/seg-0000000000000001.log', offset: 8, reason: 'crc-mismatch' } });
    expect(bad.split('\n')[0]).toBe('Decision log /x: CORRUPT at seg-0000000000000001.log:8 (crc-mismatch)');
    expect(bad).toContain('txcoord log inspect --dir /x');
  });

  it('verification JSON uses null for absent findings and relative file names', () => {
    const json = verificationJson('/x', { ...ok, tornTail: undefined } as unknown as LogVerification) as Record<string, unknown>;
    expect(json['tornTail']).toBeNull();
    expect(json['corruption']).toBeNull();
    expect(json['segments']).toEqual([{ file: 'seg-0000000000000001.log', kind: 'append', bytes: 900, records: 3, superseded: false }]);
  });

  it('renders an inspection with records and live transactions', () => {
    const ins: LogInspection = {
      records: [
        { file: '/x/seg-0000000000000001.log', offset: 8, record: commit, superseded: false },
        { file: '/x/seg-0000000000000001.log', offset: 300, record: { type: 'end', gtrid: G2, at: 0 }, superseded: false },
      ],
      live: [commit],
      gaps: [],
    };
    const text = renderInspection('/x', ins);
    expect(text.split('\n')[0]).toBe('Decision log /x: 2 records, 1 live transaction');
    expect(text).toMatch(/seg-0000000000000001\.log\s+8\s+commit\s+txc1\.me\./);
    expect(text).toMatch(/Live transactions[^\n]*\n\nTYPE/);
    const json = inspectionJson('/x', ins) as { records: { file: string }[]; tornTail: unknown };
    expect(json.records[0]?.file).toBe('seg-0000000000000001.log');
    expect(json.tornTail).toBeNull();
  });
});
