import { TxcError } from '../../coordinator/errors.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { withCoordinator } from '../open-coordinator.js';
import { formatJson, type CliIO } from '../output.js';

/** Options of `txcoord resolve`. */
export interface ResolveCommandOptions {
  readonly config: string;
  readonly commit?: boolean;
  readonly rollback?: boolean;
  readonly force?: boolean;
  readonly json?: boolean;
}

/**
 * `txcoord resolve <id> --commit|--rollback [--force] --config F`: an operator's decision for an
 * in-doubt branch (`<gtrid>.<bqual>`) or transaction (gtrid). Refused when it contradicts the log
 * unless --force; always recorded in the log as a heuristic decision.
 */
export async function runResolve(id: string, options: ResolveCommandOptions, io: CliIO): Promise<ExitCode> {
  if (options.commit === options.rollback) throw new TxcError('TXC_USAGE', 'Give exactly one of --commit and --rollback');
  const outcome = options.commit ? 'commit' : 'rollback';
  return withCoordinator(options.config, io, async (coord) => {
    const r = await coord.resolve(id, outcome, { force: options.force === true });
    io.out(
      options.json
        ? formatJson(r)
        : `Resolved ${r.resolved} branch${r.resolved === 1 ? '' : 'es'} of ${r.xid}: ${r.outcome} (the log said ${r.logDecision}); recorded as a heuristic decision.\n`,
    );
    return EXIT.OK;
  });
}
