#!/usr/bin/env node
/**
 * The `txcoord` executable: runs the command line, then exits once stdout and stderr are
 * flushed (an explicit exit, so a driver handle left open can never keep a finished command alive).
 * @packageDocumentation
 */
import { processIO } from './output.js';
import { runCli } from './program.js';

const flush = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));

// A reader that stops early (`txcoord log inspect ... | head`) is not a failure of the command.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const code = await runCli(process.argv, processIO());
await Promise.all([flush(process.stdout), flush(process.stderr)]);
process.exit(code);
