import { packageVersion } from './package-version.js';
import { Command, CommanderError } from 'commander';
import { runDemo } from './commands/demo.js';
import { runInDoubt } from './commands/in-doubt.js';
import { runLogCompact, runLogInspect, runLogVerify } from './commands/log.js';
import { runResolve } from './commands/resolve.js';
import { runStatus } from './commands/status.js';
import { runServe } from './server/serve-command.js';
import { runRecover } from './commands/recover.js';
import { EXIT, errorExitCode, type ExitCode } from './exit-codes.js';
import { formatError, isDebug, type CliIO } from './output.js';


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

  program
    .command('resolve <id>')
    .description('Decide an in-doubt branch (<gtrid>.<bqual>) or transaction (<gtrid>) by hand; refused when it contradicts the log unless --force; recorded as a heuristic decision')
    .requiredOption('--config <file>', CONFIG_HELP)
    .option('--commit', 'commit it')
    .option('--rollback', 'roll it back')
    .option('--force', 'act even against the decision log')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { config: string; commit?: boolean; rollback?: boolean; force?: boolean; json?: boolean }) => setExit(await runResolve(id, opts, io)));

  program
    .command('serve')
    .description('Run the HTTP coordinator service (docs/http-api.md) until SIGINT/SIGTERM')
    .requiredOption('--config <file>', CONFIG_HELP)
    .option('--host <host>', 'listen address (overrides api.host)')
    .option('--port <port>', 'listen port (overrides api.port; 0 = any free port)')
    .action(async (opts: { config: string; host?: string; port?: string }) => setExit(await runServe(opts, io)));

  program
    .command('status')
    .description('What is in flight, retrying (decided, phase two unfinished), running as a saga, and prepared in the databases; takes no lock')
    .requiredOption('--config <file>', CONFIG_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { config: string; json?: boolean }) => setExit(await runStatus(opts, io)));

  const log = program.command('log').description('Tools for the decision log (verify and inspect are read-only and safe while a coordinator owns it)');
  log
    .command('verify')
    .description('Check every record (file segments, or the shared PostgreSQL tables); exit 1 if the log is damaged (a torn tail after a crash is normal)')
    .option('--dir <dir>', 'file decision log directory')
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { dir?: string; config?: string; json?: boolean }) => setExit(await runLogVerify(opts, io)));
  log
    .command('inspect')
    .description('Print the records and the live transactions recovery would finish (a shared log: also its coordinator processes and leases)')
    .option('--dir <dir>', 'file decision log directory')
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { dir?: string; config?: string; json?: boolean }) => setExit(await runLogInspect(opts, io)));
  log
    .command('compact')
    .description('Rewrite the log to hold only what recovery needs (file log: stop its coordinator first)')
    .option('--dir <dir>', 'file decision log directory')
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { dir?: string; config?: string; json?: boolean }) => setExit(await runLogCompact(opts, io)));

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
