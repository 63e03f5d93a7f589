/**
 * The HTTP participant (`driver: 'http'`): a service reached with one idempotent POST per saga
 * step or compensation. It has the same file names as the database adapters except two:
 * there is no `branch.ts`, because an HTTP service has no transaction to hold open between
 * calls (each `invoke` is complete in itself), and no `sql.ts`, because nothing is SQL; the
 * configuration checks that a database adapter gets from its pool settings live in `settings.ts`.
 * @packageDocumentation
 */
import { assertParticipantName } from '../../coordinator/xid.js';
import type { Participant } from '../participant.js';
import type { HttpParticipantConfig, ParticipantDeps } from '../participant-config.js';
import { HttpParticipant } from './participant.js';

export { HttpParticipant, BODY_EXCERPT_CHARS, type HttpParticipantOptions } from './participant.js';
export { classifyFetchError, classifyHttpStatus, type FetchFailureClass, type FetchFailureKind, type HttpStatusKind } from './errors.js';
export { DEFAULT_HTTP_TIMEOUT_MS, resolveHttpSettings, type HttpSettings } from './settings.js';
export type { HttpFetch, HttpRequestInit, HttpResponse } from './driver.js';

/**
 * An HTTP participant using Node's global `fetch`. The configuration is checked by `preflight`
 * (TXC_CONFIG_INVALID), not here, and the service is never contacted before the first step.
 */
export function createHttpParticipant(name: string, config: HttpParticipantConfig, deps: ParticipantDeps): Participant {
  assertParticipantName(name);
  return new HttpParticipant(name, config, { fetch: (url, init) => fetch(url, init), logger: deps.logger });
}
