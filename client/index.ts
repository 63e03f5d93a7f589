/**
 * txcoord/client: the TypeScript client of the txcoord HTTP service, and the helpers that run a
 * client-driven transaction's branches on the application's own PostgreSQL and MySQL connections.
 * @packageDocumentation
 */
export { TxcoordClient } from './txcoord-client.js';
export type { TxcoordClientOptions, SubmitSagaOptions, WaitForSagaOptions, DecisionCallOptions } from './txcoord-client-options.js';
export type { FetchLike, FetchLikeInit, FetchLikeResponse } from './fetch-like.js';
export type { TransactionScope, RunTransactionOptions, RunTransactionResult } from './run-transaction.js';
export { pgBranch, type PgBranch, type PgBranchClient, type PgBranchResult } from './pg-branch.js';
export { mysqlBranch, type MysqlBranch, type MysqlBranchConnection, type MysqlBranchOptions } from './mysql-branch.js';
export type { MysqlSession } from './close-mysql-session.js';
export type { BranchHandle, BranchQueryResult } from './branch-handle.js';
export { TxcError, ERROR_CODES, type TxcErrorCode, type TxcErrorDetails } from '../coordinator/errors.js';
export type * from './wire-types.js';
