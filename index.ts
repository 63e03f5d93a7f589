/**
 * txcoord: atomic transactions across databases for Node.
 * @packageDocumentation
 */
export { createCoordinator } from './coordinator/create-coordinator.js';
export { loadConfigFile, validateConfig } from './coordinator/config.js';
export { TxcError, ERROR_CODES, type TxcErrorCode, type TxcErrorDetails } from './coordinator/errors.js';
export type {
  Coordinator,
  CoordinatorConfig,
  CoordinatorHooks,
  CreateCoordinatorOptions,
  Tx,
  TransactionOptions,
  TransactionResult,
  CommitMode,
  RecoveryReport,
  RecoverOptions,
  InDoubtBranch,
  HeuristicReport,
  ProtocolPoint,
  ProtocolPointInfo,
  Clock,
  BackoffConfig,
} from './coordinator/types.js';
export type { Participant, Branch, Capabilities, QueryResult, PrepareResult, ResolveResult, LocalTxStatus } from './participants/participant.js';
export type {
  ParticipantConfig,
  PostgresParticipantConfig,
  MysqlParticipantConfig,
  PgliteParticipantConfig,
  CustomParticipantConfig,
  PoolConfig,
} from './participants/participant-config.js';
export type { Xid } from './coordinator/xid.js';
export type { CoordinatorStats } from './coordinator/stats.js';
export type { LogConfig, FileLogConfig, MemoryLogConfig, DecisionLog } from './log/decision-log.js';
export type { LogRecord, CommitRecord, EndRecord, HeuristicRecord, BranchRecord } from './log/log-record.js';
