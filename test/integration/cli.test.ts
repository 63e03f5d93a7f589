/**
 * The built `txcoord` executable, spawned as users run it (`node dist/api/cli.js ...`).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLog } from '../../log/open-log.js';
import { encodeRecord } from '../../log/file/record-framing.js';
import { APPEND_MAGIC, segmentFileName } from '../../log/file/segment-file.js';
import type { CommitRecord, LogRecord } from '../../log/log-record.js';
import { ROOT, runCli, runNode } from './run-node.js';

const CHILD = join(ROOT, 'dist/test/fixtures/crash-child.js');
const work = mkdtempSync(join(tmpdir(), 'txc-cli-'));

afterAll(async () => {
  if (process.env['TXCOORD_KEEP_TEST_DATA'] !== '1') await rm(work, { recursive: true, force: true });
});

/** Exactly one line, in the `txcoord: CODE: ...` shape, with no stack frame. */
function expectOneErrorLine(stderr: string, code: string): void {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^txcoord: ${code}: `));
  expect(stderr).not.toMatch(/^\s+at /m);
}

function writeConfig(name: string, config: unknown): string {
  const file = join(work, name);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

const gtrid = (n: number) => `txc1.clitest.0190a1b2c3d47e5f8a9b0c1d2e3f4a${String(n).padStart(2, '0')}`;
const commit = (n: number): CommitRecord => ({
  type: 'commit',
  gtrid: gtrid(n),
  branches: [
    { participant: 'a', bqual: 'b0' },
    { participant: 'b', bqual: 'b1' },
  ],
  coordinatorId: 'clitest',
  host: 'h',
  pid: 1,
  startedAt: 1_700_000_000_000,
  decidedAt: 1_700_000_000_005,
});

/** A log directory with one append segment holding `records`, framed exactly as the log writes them. */
function writeLog(name: string, records: readonly LogRecord[], mangle?: (bytes: Buffer) => Buffer): { dir: string } {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  let bytes: Buffer = Buffer.concat([APPEND_MAGIC, ...records.map(encodeRecord)]);
  if (mangle) bytes = mangle(bytes);
  writeFileSync(join(dir, segmentFileName(1)), bytes);
  return { dir };
}

// commit 1 ended, commit 2 live: 3 records, 1 live transaction.
const RECORDS: LogRecord[] = [commit(1), { type: 'end', gtrid: gtrid(1), at: 1_700_000_000_010 }, commit(2)];

describe('usage and configuration errors', () => {
  it('a config with an unknown driver: exit 2, one line naming the field, no stack', async () => {
    const file = writeConfig('bad-driver.json', { id: 'x', log: { type: 'memory' }, participants: { erp: { driver: 'db2' } } });
    for (const verb of ['recover', 'in-doubt']) {
      const r = await runCli([verb, '--config', file]);
      expect(r.code).toBe(2);
      expectOneErrorLine(r.stderr, 'TXC_CONFIG_INVALID');
      expect(r.stderr).toContain('Config field `participants.erp.driver` must be one of');
      expect(r.stdout).toBe('');
    }
  });

  it('a config using an unset ${ENV} variable names the field and the variable', async () => {
    const file = writeConfig('missing-env.json', {
      id: 'x',
      log: { type: 'memory' },
      participants: { erp: { driver: 'postgres', connectionString: 'postgres://app:${TXC_TEST_UNSET_PW}@db/erp' } },
    });
    const env = { ...process.env };
    delete env['TXC_TEST_UNSET_PW'];
    const r = await runCli(['in-doubt', '--config', file], { env });
    expect(r.code).toBe(2);
    expectOneErrorLine(r.stderr, 'TXC_CONFIG_INVALID');
    expect(r.stderr).toContain('participants.erp.connectionString');
    expect(r.stderr).toContain('TXC_TEST_UNSET_PW');
  });

  it('invalid JSON and a missing flag are exit 2 with one line', async () => {
    const file = join(work, 'not-json.json');
    writeFileSync(file, '{ "id": ');
    const r = await runCli(['recover', '--config', file]);
    expect(r.code).toBe(2);
    expectOneErrorLine(r.stderr, 'TXC_CONFIG_INVALID');
    const u = await runCli(['log', 'verify']);
    expect(u.code).toBe(2);
    expectOneErrorLine(u.stderr, 'TXC_USAGE');
  });

  it('an unreachable participant is reported without its password: exit 1', async () => {
    const file = writeConfig('unreachable.json', {
      id: 'x',
      log: { type: 'memory' },
      participants: { erp: { driver: 'postgres', connectionString: 'postgres://app:topsecret@127.0.0.1:9/erp' } },
    });
    for (const args of [['in-doubt'], ['recover'], ['in-doubt', '--json']]) {
      const r = await runCli([...args, '--config', file], { timeoutMs: 30_000 });
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout + r.stderr).not.toContain('topsecret');
      expect(r.stdout + r.stderr).toMatch(/erp/);
    }
  });
});

describe('log verify / log inspect', () => {
  it('verify: a good log is OK (exit 0), with its counts in JSON', async () => {
    const { dir } = writeLog('good', RECORDS);
    const human = await runCli(['log', 'verify', '--dir', dir]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout.split('\n')[0]).toBe(`Decision log ${dir}: OK`);
    const r = await runCli(['log', 'verify', '--dir', dir, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, records: 3, live: 1, liveTransactions: 1, corruption: null, tornTail: null });
  });

  it('verify: a torn tail (a crash mid-write) is not corruption: exit 0 with a note', async () => {
    const { dir } = writeLog('torn', RECORDS, (b) => b.subarray(0, b.length - 7));
    const r = await runCli(['log', 'verify', '--dir', dir, '--json']);
    expect(r.code, r.stdout).toBe(0);
    const v = JSON.parse(r.stdout) as { ok: boolean; records: number; tornTail: unknown };
    expect(v.ok).toBe(true);
    expect(v.records).toBe(2);
    expect(v.tornTail).not.toBeNull();
  });

  it('verify: damage followed by a valid record is corruption: exit 1, says where and what to do', async () => {
    const first = encodeRecord(commit(1));
    // Flip a payload byte of the first record; two valid records follow it.
    const { dir } = writeLog('corrupt', RECORDS, (b) => {
      const c = Buffer.from(b);
      const at = APPEND_MAGIC.length + Math.floor(first.length / 2);
      c[at] = (c[at] ?? 0) ^ 0xff;
      return c;
    });
    const r = await runCli(['log', 'verify', '--dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^Decision log ${dir}: CORRUPT at seg-0000000000000001\\.log:8 `));
    expect(r.stdout).toContain('txcoord log inspect');
    const j = await runCli(['log', 'verify', '--dir', dir, '--json']);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, corruption: { file: 'seg-0000000000000001.log', offset: 8 } });
    // Inspect skips the damage and still shows what follows it.
    const ins = await runCli(['log', 'inspect', '--dir', dir, '--json']);
    expect(ins.code).toBe(1);
    const parsed = JSON.parse(ins.stdout) as { records: { record: LogRecord }[]; gaps: unknown[] };
    expect(parsed.records.map((x) => x.record.type)).toEqual(['end', 'commit']);
    expect(parsed.gaps).toHaveLength(1);
  });

  it('inspect: lists every record and the live set', async () => {
    const { dir } = writeLog('inspect', RECORDS);
    const r = await runCli(['log', 'inspect', '--dir', dir, '--json']);
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout) as { records: { offset: number; record: LogRecord }[]; live: LogRecord[] };
    expect(parsed.records.map((x) => x.record)).toEqual(RECORDS);
    expect(parsed.records[0]?.offset).toBe(8);
    expect(parsed.live).toEqual([commit(2)]);
    const human = await runCli(['log', 'inspect', '--dir', dir]);
    expect(human.stdout).toContain('3 records, 1 live transaction');
    expect(human.stdout).toMatch(/commit\s+txc1\.clitest\.\S+02\s+decided/);
  });

  it('verify and inspect work while another process owns the log (no lock taken, nothing changed)', async () => {
    const dir = join(work, 'owned');
    const log = await openLog({ type: 'file', dir });
    try {
      await log.append(commit(3), true);
      const v = await runCli(['log', 'verify', '--dir', dir, '--json']);
      expect(v.code, v.stderr).toBe(0);
      expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, liveTransactions: 1 });
      const i = await runCli(['log', 'inspect', '--dir', dir, '--json']);
      expect(i.code, i.stderr).toBe(0);
      expect((JSON.parse(i.stdout) as { live: LogRecord[] }).live).toEqual([commit(3)]);
      // The owner still works: verify took no lock from it.
      await log.append({ type: 'end', gtrid: gtrid(3), at: 1 }, true);
    } finally {
      await log.close();
    }
  });
});

describe('in-doubt / recover with a PGlite-only config', () => {
  const dir = join(work, 'pglite');
  const configFile = join(work, 'pglite.json');
  const config = {
    id: 'clitest',
    log: { type: 'file', dir: join(dir, 'txlog') },
    participants: { lite_a: { driver: 'pglite', dataDir: join(dir, 'lite_a') }, lite_b: { driver: 'pglite', dataDir: join(dir, 'lite_b') } },
    recovery: { intervalMs: 0 },
  };

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(configFile, JSON.stringify(config));
    const setup = await runNode(CHILD, [configFile, 'setup'], { env: { ...process.env, TXC_CRASH_PREFIX: 'txc_cli' }, timeoutMs: 60_000 });
    expect(setup.code, setup.stderr).toBe(0);
  });

  it('nothing in doubt on clean databases: exit 0', async () => {
    const r = await runCli(['in-doubt', '--config', configFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('No prepared txcoord branches in any participant.\n');
  });

  it('after a SIGKILL past the decision: in-doubt lists, dry run changes nothing, recover commits', async () => {
    const ackFile = join(work, 'pglite.acked');
    writeFileSync(ackFile, '');
    const child = await runNode(CHILD, [configFile, 'after-decision'], {
      env: { ...process.env, TXC_ACK_FILE: ackFile, TXC_CRASH_AT: '1', TXC_CRASH_PREFIX: 'txc_cli', TXC_CRASH_RUN: 'cli' },
    });
    expect(child.signal, child.stderr).toBe('SIGKILL');

    const listed = await runCli(['in-doubt', '--config', configFile, '--json']);
    expect(listed.code, listed.stderr).toBe(1);
    const view = JSON.parse(listed.stdout) as { branches: { participant: string; decision: string; coordinatorId: string; inFlight: boolean }[] };
    expect(view.branches.map((b) => [b.participant, b.decision, b.coordinatorId, b.inFlight])).toEqual([
      ['lite_a', 'commit', 'clitest', false],
      ['lite_b', 'commit', 'clitest', false],
    ]);
    const table = await runCli(['in-doubt', '--config', configFile]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^PARTICIPANT\s+GTRID\s+BQUAL\s+OWNER\s+DECISION\s+IN-FLIGHT\s+AGE$/m);
    expect(table.stdout).toMatch(/^lite_a\s+txc1\.clitest\.\S+\s+b0\s+clitest\s+commit\s+no\s+\S+$/m);

    const dry = await runCli(['recover', '--config', configFile, '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(1);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, committed: 0, remaining: [{ action: 'commit' }, { action: 'commit' }] });
    expect((await runCli(['in-doubt', '--config', configFile])).code).toBe(1);

    const rec = await runCli(['recover', '--config', configFile]);
    expect(rec.code, rec.stdout + rec.stderr).toBe(0);
    expect(rec.stdout).toMatch(/committed\s+2/);
    expect(rec.stdout).toMatch(/ended\s+1/);
    expect(rec.stdout).toContain("Nothing owned by 'clitest' is left in doubt.");

    const after = await runCli(['in-doubt', '--config', configFile, '--json']);
    expect(after.code).toBe(0);
    expect(JSON.parse(after.stdout)).toEqual({ coordinatorId: 'clitest', branches: [], failures: [] });
    const verify = await runCli(['log', 'verify', '--dir', config.log.dir, '--json']);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, liveTransactions: 0 });
  });
});
