import type { Logger } from 'pino';
import { Pool } from 'tarn';
import type { TediousConnectionConfig, TediousDriver } from './driver.js';
import { MssqlSession } from './session.js';

/** Sessions of one participant (tedious has no pool of its own). */
export interface MssqlSessionPool {
  /** A logged-in session: an idle healthy one, or a new one while fewer than `max` exist. */
  acquire(): Promise<MssqlSession>;
  /**
   * Gives a session back. A dead one, or any with `destroy`, is closed first (which makes the
   * server roll back whatever it had open) and is dropped when the pool next looks at it.
   */
  release(session: MssqlSession, destroy?: boolean): void;
  /** Closes idle sessions, waits for the others to be released and closes them too. */
  end(): Promise<void>;
}

/** What {@link createSessionPool} needs. */
export interface SessionPoolOptions {
  readonly driver: TediousDriver;
  readonly config: TediousConnectionConfig;
  readonly max: number;
  readonly acquireTimeoutMs: number;
  readonly logger: Logger;
  /** How long an unused session stays open. Default 30 000 ms. */
  readonly idleTimeoutMs?: number;
}

// tarn's own acquire deadline only clears waits the participant has already given up on: the
// participant reports TXC_POOL_TIMEOUT itself (acquireWithTimeout), at acquireTimeoutMs.
const TARN_GRACE_MS = 1_000;

/** A tarn pool of tedious sessions. */
export function createSessionPool(options: SessionPoolOptions): MssqlSessionPool {
  const { driver, config, logger } = options;
  const pool = new Pool<MssqlSession>({
    create: () => MssqlSession.open(driver, config, logger),
    destroy: (session) => session.close(),
    // Runs on every acquire: a session whose connection ended or failed while idle (server
    // restart, network cut, discarded after an unknown outcome) is destroyed, never handed out.
    validate: (session) => !session.dead,
    min: 0,
    max: options.max,
    acquireTimeoutMillis: options.acquireTimeoutMs + TARN_GRACE_MS,
    createTimeoutMillis: config.options.connectTimeout + TARN_GRACE_MS,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    // A failed connect rejects the waiting acquire with tedious's own error (classifiable:
    // ESOCKET, ELOGIN…), instead of tarn retrying until its deadline and reporting a timeout.
    propagateCreateError: true,
  });
  return {
    acquire: () => pool.acquire().promise,
    release(session, destroy = false) {
      if (destroy || session.dead) {
        // tarn has no "destroy this one" call: close it now, and validate() drops it on the
        // next acquire (or the idle reaper does).
        session.close().catch((err: unknown) => logger.warn({ err }, 'closing a SQL Server connection failed'));
      }
      if (!pool.release(session)) logger.debug('released a SQL Server session the pool no longer tracks');
    },
    end: async () => {
      await pool.destroy();
    },
  };
}
