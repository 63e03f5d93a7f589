import { TxcError } from '../coordinator/errors.js';
import { isTxcXid, toMysqlXid, toPgGid, type Xid } from '../coordinator/xid.js';
import type { WireBranch } from './wire-types.js';

/**
 * The xid of a branch the server handed out, checked with txcoord's own xid rules, because the
 * branch helpers splice it into SQL (PREPARE TRANSACTION and XA take no bind parameters). The
 * `gid` / `xa` forms the server sent must be exactly the ones built here from the parts, so a
 * damaged or hostile answer can never put anything but a validated xid into a statement.
 */
export function xidOfBranch(branch: WireBranch): Xid {
  const invalid = (fact: string) =>
    new TxcError('TXC_ID_INVALID', `The branch ${fact}`, { details: { participant: typeof branch?.participant === 'string' ? branch.participant : null } });
  if (typeof branch !== 'object' || branch === null) throw invalid('is missing');
  const xid: Xid = { formatId: branch.formatId, gtrid: branch.gtrid, bqual: branch.bqual };
  if (typeof xid.formatId !== 'number' || typeof xid.gtrid !== 'string' || typeof xid.bqual !== 'string' || !isTxcXid(xid)) {
    throw invalid(`${JSON.stringify({ formatId: xid.formatId, gtrid: xid.gtrid, bqual: xid.bqual })} is not a txcoord xid`);
  }
  if (branch.gid !== undefined && branch.gid !== toPgGid(xid)) throw invalid(`gid ${JSON.stringify(branch.gid)} does not match its xid`);
  if (branch.xa !== undefined && branch.xa !== toMysqlXid(xid)) throw invalid(`xa ${JSON.stringify(branch.xa)} does not match its xid`);
  return xid;
}

/** Throws TXC_UNSUPPORTED unless the branch's participant uses one of `drivers`. */
export function assertBranchDriver(branch: WireBranch, drivers: readonly string[], helper: string): void {
  if (!drivers.includes(branch.driver)) {
    throw new TxcError(
      'TXC_UNSUPPORTED',
      `${helper} cannot run the branch of participant ${branch.participant}: it uses driver ${JSON.stringify(branch.driver)}, not ${drivers.join(' or ')}`,
      { details: { participant: branch.participant, driver: branch.driver, operation: helper } },
    );
  }
}
