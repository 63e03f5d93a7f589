import { pino, type Logger } from 'pino';

/** Paths pino blanks in every line: connection strings, passwords, tokens. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'connectionString',
  '*.connectionString',
  'uri',
  '*.uri',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
];

/** Replaces any `scheme://user:password@` credentials inside a string, for error text that reaches logs. */
export function redactUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]+):[^@\s]*@/gi, '$1:***@');
}

/** The default logger: pino to stderr, level from config, TXCOORD_LOG_LEVEL, or `warn`. */
export function createDefaultLogger(level?: string): Logger {
  return pino(
    {
      name: 'txcoord',
      level: level ?? process.env['TXCOORD_LOG_LEVEL'] ?? 'warn',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
