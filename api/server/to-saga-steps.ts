import type { WireSagaStep } from '../../client/wire-types.js';
import type { JsonValue, SagaOperation, SagaStepSpec } from '../../sagas/saga-types.js';
import { badRequest } from './bad-request.js';
import type { ParticipantProfile } from './participant-profile.js';
import type { StatementCatalog } from './statement-catalog.js';

/** A saga operation as the request schema admits it: one object, checked for its shape here. */
interface LooseOperation {
  readonly path?: string;
  readonly body?: JsonValue;
  readonly statement?: string;
  readonly params?: Readonly<Record<string, JsonValue>>;
}

// `fetch` resolves `.` and `..` segments (also percent-encoded) against the base URL, so a path
// holding one could reach routes of the service outside the configured base path.
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

function checkPath(path: string, field: string): void {
  if (DOT_SEGMENT.test(path.split('?')[0] ?? path)) {
    throw badRequest(`${field}.path`, "must not contain '.' or '..' segments");
  }
}

function shapeOf(op: LooseOperation, field: string): 'path' | 'statement' {
  const hasPath = op.path !== undefined;
  const hasStatement = op.statement !== undefined;
  if (hasPath === hasStatement) throw badRequest(field, 'must have exactly one of `path` (HTTP participant) or `statement` (database participant)');
  if (hasPath && op.params !== undefined) throw badRequest(`${field}.params`, 'goes with `statement`, not with `path` (use `body`)');
  if (hasStatement && op.body !== undefined) throw badRequest(`${field}.body`, 'goes with `path`, not with `statement` (use `params`)');
  return hasPath ? 'path' : 'statement';
}

function expectShape(op: LooseOperation, profile: ParticipantProfile, field: string): void {
  const shape = shapeOf(op, field);
  const service = profile.kind === 'compensation-only';
  if (service && shape === 'statement') throw badRequest(`${field}.statement`, `cannot be used: participant ${profile.name} is an HTTP service, call it with \`path\` and \`body\``);
  if (!service && shape === 'path') throw badRequest(`${field}.path`, `cannot be used: participant ${profile.name} is a database, give a named \`statement\` and its \`params\``);
}

function pathOperation(op: LooseOperation, field: string): SagaOperation {
  const path = op.path as string;
  checkPath(path, field);
  return op.body === undefined ? { path } : { path, body: op.body };
}

/**
 * Translates the steps of `POST /v1/sagas` into the coordinator's data steps: a service step
 * keeps its `{ path, body }`, a database step's named statement becomes `{ sql, params }` for
 * its driver, and its compensation is the step's own or else the statement's configured one.
 * Throws TXC_BAD_REQUEST / TXC_PARTICIPANT_UNKNOWN naming the field; nothing has started then.
 */
export function toSagaSteps(steps: readonly WireSagaStep[], catalog: StatementCatalog): SagaStepSpec[] {
  return steps.map((step, i) => {
    const field = `steps[${i}]`;
    const profile = catalog.profile(step.participant);
    if (!profile) throw badRequest(`${field}.participant`, `names no participant (configured: ${catalog.participantNames().join(', ')})`, 'TXC_PARTICIPANT_UNKNOWN');
    const action = step.action as LooseOperation;
    const compensate = step.compensate as LooseOperation | undefined;
    expectShape(action, profile, `${field}.action`);
    if (compensate) expectShape(compensate, profile, `${field}.compensate`);

    let actionOp: SagaOperation;
    let compensateOp: SagaOperation | undefined;
    if (action.path !== undefined) {
      actionOp = pathOperation(action, `${field}.action`);
      if (compensate) compensateOp = pathOperation(compensate, `${field}.compensate`);
    } else {
      const resolved = catalog.resolve(step.participant, action.statement as string, action.params, `${field}.action`);
      actionOp = resolved.action;
      compensateOp = compensate
        ? catalog.resolve(step.participant, compensate.statement as string, compensate.params, `${field}.compensate`).action
        : resolved.compensate || undefined;
    }
    return {
      name: step.name,
      participant: step.participant,
      action: actionOp,
      ...(compensateOp ? { compensate: compensateOp } : {}),
      ...(step.after ? { after: step.after } : {}),
      ...(step.timeoutMs !== undefined ? { timeoutMs: step.timeoutMs } : {}),
    };
  });
}

