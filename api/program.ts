import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { runDemo } from './commands/demo.js';
import { runInDoubt } from './commands/in-doubt.js';
import { runLogInspect, runLogVerify } from './commands/log.js';
import { runRecover } from './commands/recover.js';
import { EXIT, errorExitCode, type ExitCode } from './exit-codes.js';
import { formatError, isDebug, type CliIO } from './output.js';

function packageVersion(): string {
  // api/program.ts sits one level below the package root, dist/api/program.js two.
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'txcoord' && pkg.version) return pkg.version;
    } catch {
      // Not there: try the next level.
    }
  }
  return 'unknown';
}

const CONFIG_HELP = 'JSON config file (the createCoordinator options; ${ENV} is substituted; paths are relative to the current directory)';

/**
 * Builds the `txcoord` command tree. Each action stores its exit status through `setExit`
 * instead of exiting, so the caller decides when the process ends (after output is flushed).
 */
export function buildProgram(io: CliIO, setExit: (code: ExitCode) => void): Command {
  const program = new Command('txcoord')
    .description('Distributed transaction coordinator: recovery and inspection tools, and a self-contained demo.')
    .version(packageVersion(), '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      // Commander's own parse errors get the same one-line shape as every other failure.
      outputError: (s, write) => write(`txcoord: TXC_USAGE: ${s.replace(/^error:\s*/i, '').trim()} (see txcoord --help)\n`),
    })
    .addHelpText(
      'after',
      '\nExit status: 0 all is well; 1 something needs attention (in doubt, corrupt, unreachable); 2 bad usage or configuration.\nSet TXCOORD_DEBUG=1 to print stacks of unexpected errors, TXCOORD_LOG_LEVEL to see the library log on stderr.',
    );

  program
    .command('demo')
    .description('Two embedded PGlite banks, atomic transfers, a real SIGKILL mid-commit, recovery and an invariant check (no database server needed)')
    .option('--dir <dir>', 'working directory for the demo data (emptied first)')
    .option('--transfers <n>', 'number of transfers in the batch', '50')
    .option('--seed <n>', 'seed of the pseudo-random transfers', '42')
    .action(async (opts: { dir?: string; transfers: string; seed: string }) => setExit(await runDemo(opts, io)));

  program
    .command('recover')
    .description('Run one recovery pass: commit in-doubt branches the log decided to commit, roll back the rest (presumed abort)')
    .requiredOption('--config <file>', CONFIG_HELP)
    .option('--dry-run', 'report what would be done without changing anything')
    .option('--json', 'machine-readable output')
    .action(async (opts: { config: string; dryRun?: boolean; json?: boolean }) => setExit(await runRecover(opts, io)));

  program
    .command('in-doubt')
    .description('List prepared txcoord branches in every participant (changes nothing)')
    .requiredOption('--config <file>', CONFIG_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { config: string; json?: boolean }) => setExit(await runInDoubt(opts, io)));

  const log = program.command('log').description('Read-only tools for a file decision log (safe while a coordinator owns it)');
  log
    .command('verify')
    .description('Check every segment and record; exit 1 if the log is corrupt (a torn tail after a crash is normal)')
    .requiredOption('--dir <dir>', 'decision log directory')
    .option('--json', 'machine-readable output')
    .action(async (opts: { dir: string; json?: boolean }) => setExit(await runLogVerify(opts, io)));
  log
    .command('inspect')
    .description('Print every readable record and the live transactions recovery would finish')
    .requiredOption('--dir <dir>', 'decision log directory')
    .option('--json', 'machine-readable output')
    .action(async (opts: { dir: string; json?: boolean }) => setExit(await runLogInspect(opts, io)));

  return program;
}

/**
 * Runs the CLI on `argv` (process.argv shape: node, script, args...) and returns the exit status.
 * Never throws: expected failures become one line on stderr, unexpected ones too unless
 * TXCOORD_DEBUG asks for the stack.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<ExitCode> {
  let code: ExitCode = EXIT.OK;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: 'node' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end with exit code 0; everything else commander throws is a usage error it already printed.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    io.err(formatError(err, isDebug(io.env)));
    return errorExitCode(err);
  }
}
