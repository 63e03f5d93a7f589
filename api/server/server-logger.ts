import { pino, type DestinationStream, type Logger, type SerializerFn } from 'pino';
import { REDACT_PATHS } from '../../coordinator/logger.js';
import { createScrubber, scrubDeep, type Scrubber } from './scrubber.js';

/** Paths blanked in every server log line, on top of the library's {@link REDACT_PATHS}. */
export const SERVER_REDACT_PATHS = [
  ...REDACT_PATHS,
  'req.headers.authorization',
  'request.headers.authorization',
  '*.headers.authorization',
  'headers.Authorization',
  'participants.*.connectionString',
  'participants.*.uri',
  'participants.*.headers',
  '*.participants.*.connectionString',
  '*.participants.*.uri',
  '*.participants.*.headers',
  'log.connectionString',
  '*.log.connectionString',
  'api.tokens',
  '*.api.tokens',
];

const CENSOR = '[redacted]';

interface RequestLike {
  readonly method?: string;
  readonly url?: string;
  readonly ip?: string;
  readonly socket?: { readonly remotePort?: number };
}

function serializers(scrubber: Scrubber): Record<string, SerializerFn> {
  return {
    // Never the headers: the authorization header must not be logged even by accident.
    req: (req: RequestLike) => ({
      method: req.method,
      url: req.url === undefined ? undefined : scrubber.text(req.url),
      remoteAddress: req.ip,
      remotePort: req.socket?.remotePort,
    }),
    res: (reply: { readonly statusCode?: number }) => ({ statusCode: reply.statusCode }),
    err: (err: unknown) => scrubDeep(err instanceof Error ? pino.stdSerializers.err(err) : err, scrubber.text),
  };
}

type Hooks = { streamWrite?: (s: string) => string };

/**
 * The server's view of `logger`: a child with the server's redaction paths and serializers
 * (requests without headers, errors with secrets scrubbed), whose every serialized line also
 * goes through the scrubber (URL credentials, `Bearer` tokens, the configured tokens) before
 * the parent's stream sees it, whatever logger the caller passed.
 */
export function serverLogger(logger: Logger, secrets: readonly string[]): Logger {
  const scrubber = createScrubber(secrets);
  const child = logger.child({}, { redact: { paths: SERVER_REDACT_PATHS, censor: CENSOR }, serializers: serializers(scrubber) });
  // pino has no per-child option for this; its hooks live under a public symbol, read at each
  // write through the prototype chain, so request loggers (children of this one) inherit it.
  const sym = pino.symbols.hooksSym;
  const parent = (child as unknown as Record<symbol, Hooks | undefined>)[sym] ?? {};
  const previous = parent.streamWrite;
  Object.defineProperty(child, sym, {
    value: { ...parent, streamWrite: (s: string) => scrubber.line(previous ? previous(s) : s) },
    enumerable: false,
    writable: true,
    configurable: true,
  });
  return child;
}

/** Options of {@link createServerLogger}. */
export interface ServerLoggerOptions {
  /** pino level. Default `info`. */
  readonly level?: string;
  /** Strings to blank wherever they appear (the API tokens). */
  readonly secrets?: readonly string[];
  /** Where lines go. Default stderr. */
  readonly destination?: DestinationStream;
}

/** The root logger of `txcoord serve` (shared by the coordinator and the HTTP server), already scrubbing every line. */
export function createServerLogger(options: ServerLoggerOptions = {}): Logger {
  const scrubber = createScrubber(options.secrets);
  return pino(
    {
      name: 'txcoord',
      level: options.level ?? 'info',
      redact: { paths: SERVER_REDACT_PATHS, censor: CENSOR },
      serializers: serializers(scrubber),
      hooks: { streamWrite: scrubber.line },
    },
    options.destination ?? pino.destination(2),
  );
}
