/**
 * An in-process TCP proxy that fault tests put between the coordinator and a database server, to
 * reset connections at chosen protocol moments, add latency, or silently drop traffic.
 *
 * Matching works on loopback because PostgreSQL (simple and extended query) and MySQL (COM_QUERY)
 * carry the SQL text in clear; txcoord's XA and PREPARE TRANSACTION statements are plain text.
 */
import net from 'node:net';

/** Which way bytes travel. */
export type Direction = 'client-to-server' | 'server-to-client';

/**
 * When a matching client→server chunk is seen:
 * - `before`: reset without forwarding it (the server never runs the statement);
 * - `after-reply`: forward it, wait for the server's first answer bytes, drop them and reset (the
 *   server ran the statement, the client never learns the outcome).
 */
export type ResetTiming = 'before' | 'after-reply';

/** A rule installed by {@link TcpProxy.resetWhen}. */
export interface ResetRule {
  /** How many times it fired so far. */
  readonly fired: number;
  /** Stops it firing again. */
  cancel(): void;
}

/** Options of {@link TcpProxy.resetWhen}. */
export interface ResetWhenOptions {
  readonly timing?: ResetTiming;
  /** Fire at most this many times, then disarm. Default 1. `Infinity` for always. */
  readonly times?: number;
}

/** Counters, for the scenario's printed summary. */
export interface ProxyStats {
  /** Client connections accepted so far. */
  readonly connections: number;
  /** Connection pairs currently open. */
  readonly open: number;
  /** Connection pairs reset by the proxy (rules and resetAll). */
  readonly resets: number;
  /** Chunks dropped while blackholed. */
  readonly dropped: number;
}

/** The proxy's controls. */
export interface TcpProxy {
  /** Local port (after {@link listen}). */
  readonly port: number;
  /** Starts listening on 127.0.0.1 with an ephemeral port; resolves with it. */
  listen(): Promise<number>;
  /** Resets (TCP RST) every open connection pair, both sides; returns how many. */
  resetAll(): number;
  /**
   * Resets the connection pair when a client→server chunk matches `pattern` (a RegExp or a
   * string tested against the chunk as latin1, or a predicate on the raw bytes).
   */
  resetWhen(pattern: RegExp | string | ((chunk: Buffer) => boolean), options?: ResetWhenOptions): ResetRule;
  /**
   * Turns the blackhole on (see {@link blackhole}) when a client→server chunk matches `pattern`;
   * that chunk is dropped too. Lets a test freeze traffic at an exact protocol step.
   */
  blackholeWhen(pattern: RegExp | string | ((chunk: Buffer) => boolean), options?: { readonly times?: number }): ResetRule;
  /** Delays every chunk by `ms` in each direction (order kept); 0 removes the delay. */
  latency(ms: number): void;
  /** While on, chunks are dropped in both directions and connections stay open (new ones too). */
  blackhole(on: boolean): void;
  stats(): ProxyStats;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

interface Pipe {
  readonly to: net.Socket;
  queue: { due: number; chunk: Buffer }[];
  timer: NodeJS.Timeout | undefined;
}

interface Pair {
  readonly client: net.Socket;
  readonly server: net.Socket;
  readonly up: Pipe;
  readonly down: Pipe;
  /** Set by an `after-reply` rule: reset at the server's next bytes instead of forwarding them. */
  resetOnReply: boolean;
  closed: boolean;
}

interface Rule {
  readonly test: (chunk: Buffer) => boolean;
  readonly timing: ResetTiming | 'blackhole';
  remaining: number;
  fired: number;
}

/** A proxy to `target` (e.g. `{ host: '127.0.0.1', port: 5432 }`); call `listen()` next. */
export function createTcpProxy(target: { readonly host: string; readonly port: number }): TcpProxy {
  const pairs = new Set<Pair>();
  const rules: Rule[] = [];
  let delayMs = 0;
  let holed = false;
  let port = 0;
  let connections = 0;
  let resets = 0;
  let dropped = 0;

  function reset(pair: Pair): void {
    if (pair.closed) return;
    pair.closed = true;
    resets++;
    pairs.delete(pair);
    for (const pipe of [pair.up, pair.down]) {
      if (pipe.timer) clearTimeout(pipe.timer);
      pipe.queue = [];
    }
    for (const s of [pair.client, pair.server]) {
      try {
        s.resetAndDestroy();
      } catch {
        s.destroy();
      }
    }
  }

  function drain(pipe: Pipe): void {
    pipe.timer = undefined;
    const now = Date.now();
    while (pipe.queue.length && pipe.queue[0]!.due <= now) {
      const { chunk } = pipe.queue.shift()!;
      if (!pipe.to.destroyed) pipe.to.write(chunk);
    }
    if (pipe.queue.length) pipe.timer = setTimeout(() => drain(pipe), pipe.queue[0]!.due - now);
  }

  function forward(pipe: Pipe, chunk: Buffer): void {
    // One queue per direction so a latency change never reorders bytes.
    if (delayMs === 0 && pipe.queue.length === 0) {
      if (!pipe.to.destroyed) pipe.to.write(chunk);
      return;
    }
    pipe.queue.push({ due: Date.now() + delayMs, chunk });
    if (!pipe.timer) pipe.timer = setTimeout(() => drain(pipe), Math.max(0, pipe.queue[0]!.due - Date.now()));
  }

  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect({ host: target.host, port: target.port });
    const pair: Pair = {
      client,
      server: upstream,
      up: { to: upstream, queue: [], timer: undefined },
      down: { to: client, queue: [], timer: undefined },
      resetOnReply: false,
      closed: false,
    };
    pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);

    client.on('data', (chunk: Buffer) => {
      if (pair.closed) return;
      if (holed) {
        dropped++;
        return;
      }
      for (const rule of rules) {
        if (rule.remaining <= 0 || !rule.test(chunk)) continue;
        rule.remaining--;
        rule.fired++;
        if (rule.timing === 'before') return reset(pair);
        if (rule.timing === 'blackhole') {
          holed = true;
          dropped++;
          return;
        }
        pair.resetOnReply = true;
        break;
      }
      forward(pair.up, chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (pair.closed) return;
      if (holed) {
        dropped++;
        return;
      }
      if (pair.resetOnReply) return reset(pair);
      forward(pair.down, chunk);
    });
    // A side closing normally closes the other; errors (ECONNRESET after our own RST) are expected.
    const close = () => {
      if (pair.closed) return;
      pair.closed = true;
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });

  function addRule(pattern: RegExp | string | ((chunk: Buffer) => boolean), timing: Rule['timing'], times: number): ResetRule {
    const test =
      typeof pattern === 'function'
        ? pattern
        : typeof pattern === 'string'
          ? (c: Buffer) => c.toString('latin1').includes(pattern)
          : (c: Buffer) => pattern.test(c.toString('latin1'));
    const rule: Rule = { test, timing, remaining: times, fired: 0 };
    rules.push(rule);
    return {
      get fired() {
        return rule.fired;
      },
      cancel() {
        rule.remaining = 0;
      },
    };
  }

  return {
    get port() {
      return port;
    },
    listen() {
      return new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          port = (server.address() as net.AddressInfo).port;
          resolve(port);
        });
      });
    },
    resetAll() {
      const all = [...pairs];
      for (const p of all) reset(p);
      return all.length;
    },
    resetWhen(pattern, options = {}) {
      return addRule(pattern, options.timing ?? 'before', options.times ?? 1);
    },
    blackholeWhen(pattern, options = {}) {
      return addRule(pattern, 'blackhole', options.times ?? 1);
    },
    latency(ms) {
      delayMs = ms;
    },
    blackhole(on) {
      holed = on;
    },
    stats() {
      return { connections, open: pairs.size, resets, dropped };
    },
    close() {
      for (const p of [...pairs]) {
        p.closed = true;
        p.client.destroy();
        p.server.destroy();
      }
      pairs.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `url` with its host and port replaced by the proxy's (127.0.0.1:port). */
export function viaProxy(url: string, proxyPort: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxyPort);
  return u.toString();
}

/** Host and port of a database URL, for {@link createTcpProxy}'s target. */
export function targetOf(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : defaultPort };
}
