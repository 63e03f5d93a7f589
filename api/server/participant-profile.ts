import { participantKind, type ParticipantKind } from '../../participants/participant.js';
import type { ParticipantConfig } from '../../participants/participant-config.js';
import { placeholderStyleFor, type PlaceholderStyle } from './named-statements.js';

/** What the HTTP service needs to know about a participant, read from its configuration alone. */
export interface ParticipantProfile {
  readonly name: string;
  /** The configured driver; for a custom adapter, the adapter's own driver name. */
  readonly driver: string;
  readonly kind: ParticipantKind;
  readonly style: PlaceholderStyle;
}

/**
 * The profile of one configured participant. The Coordinator interface does not expose its
 * adapters, so the kind comes from the config: the same rule the adapters follow (`localOnly`
 * gives up PREPARE, SQL Server has none, an HTTP service can only be compensated).
 */
export function participantProfile(name: string, config: ParticipantConfig): ParticipantProfile {
  switch (config.driver) {
    case 'custom':
      return {
        name,
        driver: config.adapter.driver,
        kind: participantKind(config.adapter.capabilities),
        style: placeholderStyleFor(config.adapter.driver),
      };
    case 'http':
      return { name, driver: 'http', kind: 'compensation-only', style: 'dollar' };
    case 'mssql':
      return { name, driver: 'mssql', kind: 'one-phase', style: 'at' };
    case 'oracle':
      return { name, driver: 'oracle', kind: 'two-phase', style: 'colon' };
    case 'postgres':
    case 'mysql':
    case 'pglite':
      return { name, driver: config.driver, kind: config.localOnly ? 'one-phase' : 'two-phase', style: placeholderStyleFor(config.driver) };
  }
}
