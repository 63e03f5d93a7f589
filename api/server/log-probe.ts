import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import type { LogConfig } from '../../log/decision-log.js';

/** Checks the decision log can take a write now: 'ok', or a short reason (no paths, no hosts: /readyz is public). */
export type LogProbe = () => Promise<'ok' | string>;

/** Below this much free space a forced log write is about to fail. */
const MIN_FREE_BYTES = 1024 * 1024;

async function probeFile(dir: string): Promise<'ok' | string> {
  try {
    await access(dir, constants.W_OK);
  } catch {
    return 'TXC_LOG_IO: log directory not writable';
  }
  try {
    const fs = await statfs(dir);
    if (fs.bavail * fs.bsize < MIN_FREE_BYTES) return 'TXC_LOG_IO: disk almost full';
  } catch {
    // statfs is missing on some platforms: writability alone then.
  }
  return 'ok';
}

async function probePostgres(connectionString: string, timeoutMs: number): Promise<'ok' | string> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, statement_timeout: timeoutMs });
  // An error event on an idle client would otherwise crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const res = await client.query<{ standby: boolean }>('select pg_is_in_recovery() as standby');
    return res.rows[0]?.standby ? 'TXC_LOG_IO: log database is a read-only standby' : 'ok';
  } catch {
    return 'TXC_LOG_IO: log database unreachable';
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The probe for the configured log. The Coordinator interface does not expose its log, so this
 * checks what the configuration names: the file log's directory is writable with space left,
 * the PostgreSQL log's server answers and is a primary; the memory log always can. Answers are
 * cached for `cacheMs` so frequent probes open no storm of connections.
 */
export function createLogProbe(config: LogConfig, { timeoutMs = 2_000, cacheMs = 2_000, now = Date.now } = {}): LogProbe {
  const run = (): Promise<'ok' | string> => {
    switch (config.type) {
      case 'memory':
        return Promise.resolve('ok');
      case 'file':
        return probeFile(config.dir);
      case 'postgres':
        return probePostgres(config.connectionString, timeoutMs);
    }
  };
  let cached: { at: number; value: 'ok' | string } | undefined;
  let running: Promise<'ok' | string> | undefined;
  return () => {
    if (cached && now() - cached.at <= cacheMs) return Promise.resolve(cached.value);
    running ??= run()
      .then((value) => ((cached = { at: now(), value }), value))
      .finally(() => (running = undefined));
    return running;
  };
}
