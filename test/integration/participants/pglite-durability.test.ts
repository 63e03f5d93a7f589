// SIGKILL right after an acknowledged PGlite operation: the acknowledged outcome must be there
// on reopen. Why nothing beyond awaiting the statement is needed: docs/pglite-durability.md.
// TXC_PGLITE_KILL_ROUNDS raises the number of rounds per mode (default 3).
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromPgGid } from '../../../coordinator/xid.js';
import type { Participant } from '../../../participants/participant.js';
import { createPgliteParticipant } from '../../../participants/pglite/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CHILD = join(ROOT, 'test/fixtures/pglite-kill-child.mjs');
const ROUNDS = Number(process.env['TXC_PGLITE_KILL_ROUNDS'] ?? 3);
const logger = pino({ level: 'silent' });

let work: string;
let adapterRoot: string;
/** One data directory for every test (initdb costs seconds); each transaction has its own gid. */
let dataDir: string;
let uuidCounter = 0;

/** Unique uuid v7-shaped ids for the child's transactions. */
const nextUuid = () => `0190d5a8-7b3c-7def-8123-${String(++uuidCounter).padStart(12, '0')}`;

interface Ack {
  readonly gid: string;
  readonly localTxId?: string;
  readonly result?: string;
}

/** Runs the child to its self-inflicted SIGKILL and returns its acknowledgement. */
function runChild(dataDir: string, mode: string, gid?: string): Promise<Ack> {
  return new Promise((resolvePromise, reject) => {
    const args = [CHILD, adapterRoot, dataDir, mode, nextUuid(), ...(gid ? [gid] : [])];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').at(-1);
      if (signal !== 'SIGKILL' || !line) {
        reject(new Error(`child ${mode} ended with code ${code} signal ${signal}: ${stderr}`));
        return;
      }
      resolvePromise(JSON.parse(line) as Ack);
    });
  });
}

/** Opens the directory in this process, runs `fn`, closes (the child must not be running). */
async function inspect<T>(dataDir: string, fn: (p: Participant) => Promise<T>): Promise<T> {
  const participant = createPgliteParticipant('check', { driver: 'pglite', dataDir }, { logger });
  try {
    return await fn(participant);
  } finally {
    await participant.close();
  }
}

async function rowExists(p: Participant, gid: string): Promise<boolean> {
  const xid = fromPgGid(gid)!;
  // A read-only branch: begin is only allowed with nothing prepared, which is itself part of the check.
  const branch = await p.begin({ ...xid, bqual: 'b9' });
  try {
    const { rowCount } = await branch.query('select 1 from kill_test where gid = $1', [gid]);
    return rowCount === 1;
  } finally {
    await branch.rollback();
  }
}


beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'txc-pglite-kill-'));
  // Compile just this adapter (and the contract files it imports) so the child runs the real
  // code with plain `node`; a full build could trip over other folders' work in progress.
  adapterRoot = join(work, 'adapter');
  await mkdir(adapterRoot);
  await writeFile(join(adapterRoot, 'package.json'), '{ "type": "module" }\n');
  await symlink(join(ROOT, 'node_modules'), join(adapterRoot, 'node_modules'), 'dir');
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const flags = ['--outDir', adapterRoot, '--rootDir', ROOT, '--module', 'nodenext', '--moduleResolution', 'nodenext'];
  flags.push('--target', 'es2022', '--strict', '--skipLibCheck', '--types', 'node');
  await promisify(execFile)(process.execPath, [tsc, join(ROOT, 'participants/pglite/index.ts'), ...flags], { cwd: ROOT });
  dataDir = join(work, 'data');
  await inspect(dataDir, async (p) => {
    const branch = await p.begin(fromPgGid(`txc1.setup.${'0'.repeat(32)}.b0`)!);
    await branch.query('create table kill_test (gid text primary key)');
    await branch.commitOnePhase();
  });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('PGlite: acknowledged operations survive SIGKILL', () => {
  it(`prepare, then recovery's commitPrepared / rollbackPrepared (${ROUNDS} rounds each)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const resolveMode = round % 2 === 0 ? 'recover-commit' : 'recover-rollback';
      const prepared = await runChild(dataDir, 'prepare');
      expect(prepared.localTxId).toMatch(/^\d+$/);
      await inspect(dataDir, async (p) => {
        expect((await p.listInDoubt()).map((x) => `${x.gtrid}.${x.bqual}`)).toEqual([prepared.gid]);
        expect(await p.localStatus!(prepared.localTxId!)).toBe('in-progress');
      });
      const resolved = await runChild(dataDir, resolveMode, prepared.gid);
      expect(resolved.result).toBe('done');
      await inspect(dataDir, async (p) => {
        expect(await p.listInDoubt()).toEqual([]);
        expect(await p.localStatus!(prepared.localTxId!)).toBe(resolveMode === 'recover-commit' ? 'committed' : 'aborted');
        expect(await rowExists(p, prepared.gid)).toBe(resolveMode === 'recover-commit');
      });
    }
  });

  it(`one-phase commit (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { gid } = await runChild(dataDir, 'commit');
      await inspect(dataDir, async (p) => expect(await rowExists(p, gid)).toBe(true));
    }
  });

  it(`commitPrepared on the preparing branch (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { gid, result } = await runChild(dataDir, 'commit-prepared');
      expect(result).toBe('done');
      await inspect(dataDir, async (p) => {
        expect(await p.listInDoubt()).toEqual([]);
        expect(await rowExists(p, gid)).toBe(true);
      });
    }
  });

  it(`control: a PREPARE that was never acknowledged is lost, so the harness does see losses (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { gid } = await runChild(dataDir, 'unacked');
      await inspect(dataDir, async (p) => {
        expect(await p.listInDoubt()).toEqual([]);
        expect(await rowExists(p, gid)).toBe(false);
      });
    }
  });
});
