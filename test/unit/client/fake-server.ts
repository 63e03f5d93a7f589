import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request the fake server received. */
export interface RecordedRequest {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The body parsed as JSON, or undefined. */
  readonly json: unknown;
}

/**
 * What the fake answers: a status with a JSON body (or raw text), 'drop' to reset the connection
 * without answering (fetch then fails as on a network error), or 'hang' to never answer.
 */
export type FakeReply =
  | { readonly status: number; readonly body?: unknown; readonly text?: string; readonly headers?: Readonly<Record<string, string>> }
  | 'drop'
  | 'hang';

/** A route function: the whole server. */
export type FakeRoute = (req: RecordedRequest) => FakeReply | Promise<FakeReply>;

/** A running fake txcoord server. */
export interface FakeServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  route: FakeRoute;
  close(): Promise<void>;
}

/** Starts a node:http server on a free port that answers every request with `route`. */
export async function startFakeServer(route: FakeRoute): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const fake: { route: FakeRoute } = { route };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body === '' ? undefined : (JSON.parse(body) as unknown);
      } catch {
        json = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json };
      requests.push(recorded);
      void Promise.resolve(fake.route(recorded)).then(
        (reply) => {
          if (reply === 'hang') return;
          if (reply === 'drop') {
            req.socket.destroy();
            return;
          }
          const text = reply.text ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
          res.writeHead(reply.status, { 'content-type': reply.text === undefined ? 'application/json' : 'text/plain', ...reply.headers });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`fake route threw: ${String(err)}`);
        },
      );
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get route() {
      return fake.route;
    },
    set route(r: FakeRoute) {
      fake.route = r;
    },
    async close() {
      // Hanging requests keep their sockets open; close() would wait for them forever.
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A WireError answer. */
export function wireError(status: number, code: string, message: string, details?: Record<string, unknown>): FakeReply {
  return { status, body: { error: { code, message, ...(details ? { details } : {}) } } };
}
