import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../../api/exit-codes.js';
import { runCli } from '../../../api/program.js';
import { captureIO } from './capture-io.js';

const run = async (...args: string[]) => {
  const io = captureIO();
  const code = await runCli(['node', 'txcoord', ...args], io);
  return { code, out: io.stdout.join(''), err: io.stderr.join('') };
};

const expectOneLine = (err: string, pattern: RegExp) => {
  expect(err.endsWith('\n')).toBe(true);
  expect(err.trimEnd().split('\n')).toHaveLength(1);
  expect(err).toMatch(pattern);
};

describe('txcoord command line (in process)', () => {
  it('--help and --version exit 0', async () => {
    const help = await run('--help');
    expect(help.code).toBe(EXIT.OK);
    for (const verb of ['demo', 'recover', 'in-doubt', 'log']) expect(help.out).toContain(verb);
    const version = await run('--version');
    expect(version.code).toBe(EXIT.OK);
    expect(version.out).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('a missing required option is a usage error: exit 2, one line', async () => {
    const r = await run('recover');
    expect(r.code).toBe(EXIT.USAGE);
    expectOneLine(r.err, /^txcoord: TXC_USAGE: required option '--config <file>' not specified/);
  });

  it('an unknown command or option is a usage error', async () => {
    expect((await run('recovr')).code).toBe(EXIT.USAGE);
    const r = await run('in-doubt', '--config', 'x.json', '--bogus');
    expect(r.code).toBe(EXIT.USAGE);
    expectOneLine(r.err, /^txcoord: TXC_USAGE: unknown option '--bogus'/);
  });

  it('a config naming an unknown driver fails with exit 2 and one line naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'txc-cli-unit-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ id: 'x', log: { type: 'memory' }, participants: { erp: { driver: 'db2' } } }));
    for (const verb of ['recover', 'in-doubt']) {
      const r = await run(verb, '--config', file);
      expect(r.code).toBe(EXIT.USAGE);
      expectOneLine(r.err, /^txcoord: TXC_CONFIG_INVALID: Config field `participants\.erp\.driver` must be one of/);
      expect(r.out).toBe('');
    }
  });

  it('a missing config file and a missing log dir are usage errors', async () => {
    const r = await run('recover', '--config', '/nonexistent/txc.json');
    expect(r.code).toBe(EXIT.USAGE);
    expectOneLine(r.err, /^txcoord: TXC_CONFIG_INVALID: Cannot read config file/);
    const v = await run('log', 'verify', '--dir', '/nonexistent/txlog');
    expect(v.code).toBe(EXIT.USAGE);
    expectOneLine(v.err, /^txcoord: TXC_USAGE: No decision log directory at/);
  });

  it('rejects a bad --transfers before touching anything', async () => {
    const r = await run('demo', '--transfers', 'many', '--dir', join(tmpdir(), 'txc-never-created'));
    expect(r.code).toBe(EXIT.USAGE);
    expectOneLine(r.err, /^txcoord: TXC_USAGE: --transfers must be an integer/);
  });
});
