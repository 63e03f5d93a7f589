import type { Participant } from './participant.js';
import type { ParticipantConfig, ParticipantDeps } from './participant-config.js';

type Factory<C> = (name: string, config: C, deps: ParticipantDeps) => Promise<Participant>;
type Factories = { [D in ParticipantConfig['driver']]: Factory<Extract<ParticipantConfig, { driver: D }>> };

/**
 * Driver name → adapter factory. Drivers load lazily, so a coordinator using only PGlite never
 * loads mysql2; adding a database means adding a folder and one line here.
 */
const FACTORIES: Factories = {
  postgres: async (name, config, deps) => (await import('./postgres/index.js')).createPostgresParticipant(name, config, deps),
  mysql: async (name, config, deps) => (await import('./mysql/index.js')).createMysqlParticipant(name, config, deps),
  pglite: async (name, config, deps) => (await import('./pglite/index.js')).createPgliteParticipant(name, config, deps),
  mssql: async (name, config, deps) => (await import('./mssql/index.js')).createMssqlParticipant(name, config, deps),
  oracle: async (name, config, deps) => (await import('./oracle/index.js')).createOracleParticipant(name, config, deps),
  http: async (name, config, deps) => (await import('./http/index.js')).createHttpParticipant(name, config, deps),
  custom: async (_name, config) => config.adapter,
};

/** Builds the adapter for one configured participant. */
export function createParticipant(name: string, config: ParticipantConfig, deps: ParticipantDeps): Promise<Participant> {
  const factory = FACTORIES[config.driver] as Factory<ParticipantConfig>;
  return factory(name, config, deps);
}
