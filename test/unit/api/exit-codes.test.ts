import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import type { InDoubtBranch, RecoveryReport } from '../../../coordinator/types.js';
import { EXIT, errorExitCode, inDoubtExitCode, recoverExitCode, verifyExitCode } from '../../../api/exit-codes.js';

const branch = (coordinatorId: string, extra: Partial<InDoubtBranch> = {}): InDoubtBranch => ({
  participant: 'a',
  gtrid: `txc1.${coordinatorId}.0190a1b2c3d47e5f8a9b0c1d2e3f4a5b`,
  bqual: 'b0',
  coordinatorId,
  decision: 'commit',
  inFlight: false,
  ...extra,
});

const report = (extra: Partial<RecoveryReport> = {}): RecoveryReport => ({
  committed: 0,
  rolledBack: 0,
  ended: 0,
  heuristic: [],
  remaining: [],
  failures: [],
  sagas: { resumed: 0, committed: 0, compensated: 0, failed: 0, remaining: [] },
  markersRemoved: 0,
  barrierRowsRemoved: 0,
  ...extra,
});

describe('recoverExitCode', () => {
  it('is 0 when nothing owned is left and every participant was checked', () => {
    expect(recoverExitCode(report({ committed: 3, rolledBack: 1 }), 'me')).toBe(EXIT.OK);
  });

  it("ignores other coordinators' branches (this one may not resolve them)", () => {
    expect(recoverExitCode(report({ remaining: [branch('other', { decision: 'unknown' })] }), 'me')).toBe(EXIT.OK);
  });

  it('is 1 when an owned branch is still in doubt', () => {
    expect(recoverExitCode(report({ remaining: [branch('me')] }), 'me')).toBe(EXIT.ATTENTION);
  });

  it('is 1 when a participant could not be checked', () => {
    expect(recoverExitCode(report({ failures: [{ participant: 'a', code: 'TXC_PARTICIPANT_UNAVAILABLE', message: 'down' }] }), 'me')).toBe(EXIT.ATTENTION);
  });

  it('is 1 when a heuristic outcome needs a human', () => {
    const h = { gtrid: 'g', participant: 'a', bqual: 'b0', expected: 'commit', actual: 'rolled-back' } as const;
    expect(recoverExitCode(report({ heuristic: [h] }), 'me')).toBe(EXIT.ATTENTION);
  });
});

describe('inDoubtExitCode / verifyExitCode', () => {
  it('in-doubt is 0 only with no branches and no failures', () => {
    expect(inDoubtExitCode([], [])).toBe(EXIT.OK);
    expect(inDoubtExitCode([branch('other')], [])).toBe(EXIT.ATTENTION);
    expect(inDoubtExitCode([], [{}])).toBe(EXIT.ATTENTION);
  });

  it('verify follows ok', () => {
    expect(verifyExitCode({ ok: true })).toBe(EXIT.OK);
    expect(verifyExitCode({ ok: false })).toBe(EXIT.ATTENTION);
  });
});

describe('errorExitCode', () => {
  it('is 2 for usage and configuration errors', () => {
    expect(errorExitCode(new TxcError('TXC_CONFIG_INVALID'))).toBe(EXIT.USAGE);
    expect(errorExitCode(new TxcError('TXC_USAGE'))).toBe(EXIT.USAGE);
    expect(errorExitCode(new TxcError('TXC_ID_INVALID'))).toBe(EXIT.USAGE);
  });

  it('is 1 for everything else', () => {
    expect(errorExitCode(new TxcError('TXC_LOG_LOCKED'))).toBe(EXIT.ATTENTION);
    expect(errorExitCode(new Error('bug'))).toBe(EXIT.ATTENTION);
  });
});
