import { TxcError } from '../../coordinator/errors.js';
import type { JsonValue } from '../../log/log-record.js';
import type { ParticipantConfig } from '../../participants/participant-config.js';
import { badRequest } from './bad-request.js';
import { bindNamedParams, compileNamedStatement, NamedStatementError, type CompiledStatement } from './named-statements.js';
import { participantProfile, type ParticipantProfile } from './participant-profile.js';

/** One statement ready for `tx.query` or a saga step: driver placeholders and positional values. */
export interface StatementCall {
  readonly sql: string;
  readonly params: JsonValue[];
}

/**
 * A named statement with its values bound, and its configured compensation bound to the same
 * values (`false`: configured as needing no undo).
 */
export interface ResolvedStatement {
  readonly action: StatementCall;
  readonly compensate?: StatementCall | false;
}

interface Entry {
  readonly action: CompiledStatement;
  readonly compensate?: CompiledStatement | false;
  /** Every parameter the request must give: those of the statement and of its compensation. */
  readonly names: ReadonlySet<string>;
}

function isScalar(v: JsonValue): boolean {
  return v === null || typeof v !== 'object';
}

/**
 * The named statements of every participant (`participants.<name>.statements`), compiled once
 * at start for the participant's driver, so a statement the compiler cannot translate stops the
 * server at start (TXC_CONFIG_INVALID) instead of failing requests later.
 */
export class StatementCatalog {
  private constructor(
    private readonly profiles: ReadonlyMap<string, ParticipantProfile>,
    private readonly entries: ReadonlyMap<string, ReadonlyMap<string, Entry>>,
  ) {}

  /** Compiles every configured statement; throws TXC_CONFIG_INVALID naming the statement that cannot be used. */
  static fromConfig(participants: Readonly<Record<string, ParticipantConfig>>): StatementCatalog {
    const profiles = new Map<string, ParticipantProfile>();
    const entries = new Map<string, Map<string, Entry>>();
    for (const [name, pc] of Object.entries(participants)) {
      const profile = participantProfile(name, pc);
      profiles.set(name, profile);
      const map = new Map<string, Entry>();
      for (const [st, def] of Object.entries(pc.statements ?? {})) {
        const field = `participants.${name}.statements.${st}`;
        const compile = (sql: string, f: string) => {
          try {
            return compileNamedStatement(sql, profile.style);
          } catch (err) {
            if (!(err instanceof NamedStatementError)) throw err;
            throw new TxcError('TXC_CONFIG_INVALID', `Config field \`${f}\` ${err.message}`, { details: { field: f } });
          }
        };
        const action = compile(typeof def === 'string' ? def : def.sql, typeof def === 'string' ? field : `${field}.sql`);
        const undo = typeof def === 'string' ? undefined : def.compensate;
        const compensate = undo === undefined || undo === false ? undo : compile(undo, `${field}.compensate`);
        map.set(st, { action, ...(compensate !== undefined ? { compensate } : {}), names: new Set([...action.names, ...(compensate ? compensate.names : [])]) });
      }
      entries.set(name, map);
    }
    return new StatementCatalog(profiles, entries);
  }

  /** The participant's profile, or undefined when no participant has that name. */
  profile(name: string): ParticipantProfile | undefined {
    return this.profiles.get(name);
  }

  /** Configured participant names. */
  participantNames(): string[] {
    return [...this.profiles.keys()];
  }

  /**
   * Binds `params` to statement `statement` of `participant`. `field` is the request field of
   * the operation (`steps[2].action`), so every refusal names the exact field: an unknown
   * statement, a missing or unexpected parameter, a structured value the driver cannot bind.
   */
  resolve(participant: string, statement: string, params: Readonly<Record<string, JsonValue>> | undefined, field: string): ResolvedStatement {
    const profile = this.profiles.get(participant);
    const entry = this.entries.get(participant)?.get(statement);
    if (!profile || !entry) {
      const known = [...(this.entries.get(participant)?.keys() ?? [])];
      throw badRequest(
        `${field}.statement`,
        `names no statement ${JSON.stringify(statement)} of participant ${JSON.stringify(participant)} (${known.length ? `configured: ${known.join(', ')}` : 'it has no named statements'})`,
      );
    }
    const values = params ?? {};
    for (const name of Object.keys(values)) {
      if (!entry.names.has(name)) throw badRequest(`${field}.params.${name}`, `is not a parameter of statement ${statement} (it takes: ${[...entry.names].map((n) => `:${n}`).join(', ') || 'none'})`);
      const v = values[name] as JsonValue;
      // Only node-postgres binds arrays and objects (as arrays and JSON); the other drivers would
      // expand or refuse them, so they are refused here, before anything starts.
      if (profile.style !== 'dollar' && !isScalar(v)) throw badRequest(`${field}.params.${name}`, `must be a string, number, boolean or null for a ${profile.driver} participant`);
    }
    for (const name of entry.names) {
      if (!Object.hasOwn(values, name)) throw badRequest(`${field}.params.${name}`, `is required by statement ${statement}`);
    }
    const bind = (c: CompiledStatement): StatementCall => ({ sql: c.sql, params: bindNamedParams(c, values) });
    const undo = entry.compensate;
    return { action: bind(entry.action), ...(undo !== undefined ? { compensate: undo === false ? false : bind(undo) } : {}) };
  }
}
