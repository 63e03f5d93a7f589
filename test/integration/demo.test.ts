/**
 * `txcoord demo`, run exactly as a new user would (the built CLI), in a scratch directory.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-node.js';

const work = mkdtempSync(join(tmpdir(), 'txc-demo-'));

afterAll(async () => {
  if (process.env['TXCOORD_KEEP_TEST_DATA'] !== '1') await rm(work, { recursive: true, force: true });
});

describe('txcoord demo', () => {
  it('runs all five steps with a real SIGKILL and ends with the invariants holding', { timeout: 120_000 }, async () => {
    const dir = join(work, 'demo');
    const r = await runCli(['demo', '--dir', dir], { timeoutMs: 110_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    for (const step of ['== 1. ', '== 2. ', '== 3. ', '== 4. ', '== 5. ']) expect(r.stdout).toContain(step);
    expect(r.stdout).toMatch(/^INVARIANTS: PASS /m);
    expect(r.stdout).not.toMatch(/^\s+FAIL /m);
    // The crash was real and landed where promised: one bank committed, the other still prepared.
    expect(r.stdout).toContain('The worker is dead: killed by SIGKILL.');
    expect(r.stdout).toMatch(/BEFORE recovery[^\n]*\n[^\n]*\n[^\n]*short by \$\d+: the books are inconsistent/);
    expect(r.stdout).toMatch(/BEFORE recovery[\s\S]*prepared transactions \(pg_prepared_xacts\): bank_a 0, bank_b 1\n/);
    expect(r.stdout).toMatch(/AFTER recovery[\s\S]*prepared transactions \(pg_prepared_xacts\): bank_a 0, bank_b 0\n/);
    // Some transfers were refused for insufficient funds and rolled back in both banks.
    expect(Number(/refused\s+(\d+)/.exec(r.stdout)?.[1])).toBeGreaterThan(0);
    expect(r.stderr).toBe('');
  });

  it('refuses to wipe a non-empty directory it did not create (exit 2, one line)', async () => {
    const dir = mkdtempSync(join(work, 'precious-'));
    writeFileSync(join(dir, 'keep.txt'), 'user data');
    const r = await runCli(['demo', '--dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^txcoord: TXC_USAGE: The demo directory .* is not empty and was not created by the demo/);
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('user data');
  });
});
