import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createScrubber } from '../../../../api/server/scrubber.js';
import { createServerLogger } from '../../../../api/server/server-logger.js';
import { TxcError } from '../../../../coordinator/errors.js';
import { ADMIN_TOKEN, CLIENT_TOKEN, LogCapture, admin, client, gtrid, testServer } from './harness.js';

const PASSWORD = 'pw-s3cr3t-value';
const URL_WITH_CREDS = `postgres://app:${PASSWORD}@db1:5432/erp`;

/** Drives requests that make the server log authorization headers, URLs with credentials and tokens. */
async function noisyTraffic(s: Awaited<ReturnType<typeof testServer>>): Promise<void> {
  s.coord.sagaStatus = async () => {
    throw new Error(`cannot reach ${URL_WITH_CREDS} with Bearer ${CLIENT_TOKEN}`);
  };
  s.coord.failures = [{ participant: 'crm', code: 'TXC_PARTICIPANT_UNAVAILABLE', message: `mysql://root:${PASSWORD}@db2 refused` }];
  s.coord.transaction = () => Promise.reject(new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `ledger at ${URL_WITH_CREDS} is down`, { details: { url: URL_WITH_CREDS } }));
  await s.request({ method: 'GET', url: `/v1/sagas/${gtrid(1)}?x=${CLIENT_TOKEN}`, headers: client });
  await s.request({ method: 'GET', url: `/v1/sagas/${gtrid(1)}`, headers: client });
  await s.request({ method: 'GET', url: '/v1/in-doubt', headers: admin });
  await s.request({ method: 'GET', url: '/v1/in-doubt', headers: { authorization: `Bearer ${ADMIN_TOKEN}-wrong` } });
  const res = await s.request({ method: 'POST', url: '/v1/transactions/execute', headers: client, payload: { steps: [{ participant: 'ledger', statement: 'read', params: { id: 1 } }] } });
  // The answer itself is scrubbed too.
  expect(res.body).not.toContain(PASSWORD);
  expect(res.body).toContain('postgres://app:***@db1');
}

function expectClean(text: string): void {
  expect(text.length).toBeGreaterThan(0);
  for (const secret of [CLIENT_TOKEN, ADMIN_TOKEN, PASSWORD]) expect(text).not.toContain(secret);
  // Every line is still valid JSON after scrubbing.
  for (const line of text.split('\n')) expect(() => JSON.parse(line) as unknown).not.toThrow();
}

describe('log redaction', () => {
  it('the serve logger scrubs every line: tokens, passwords, URL credentials, authorization headers', async () => {
    const capture = new LogCapture();
    const logger = createServerLogger({ level: 'debug', secrets: [CLIENT_TOKEN, ADMIN_TOKEN], destination: capture });
    const s = await testServer({ logger });
    await noisyTraffic(s);
    // What other code might log through the same logger (the coordinator shares it).
    logger.warn({ participant: { connectionString: URL_WITH_CREDS, password: PASSWORD }, token: CLIENT_TOKEN, uri: URL_WITH_CREDS }, `config ${URL_WITH_CREDS}`);
    logger.info({ req: { headers: { authorization: `Bearer ${CLIENT_TOKEN}` } }, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, 'headers');
    logger.info({ api: { tokens: { [CLIENT_TOKEN]: 'client' } } }, 'api config');
    logger.error({ err: new TxcError('TXC_PARTICIPANT_UNAVAILABLE', `at ${URL_WITH_CREDS}`, { cause: new Error(`token ${ADMIN_TOKEN}`) }) }, 'with cause');
    expectClean(capture.text);
    expect(capture.text).toContain('postgres://app:***@db1:5432/erp');
    expect(capture.text).toContain('[redacted]');
  });

  it('a plain logger handed to buildServer gets the same scrubbing on the server’s lines', async () => {
    const capture = new LogCapture();
    const s = await testServer({ logger: pino({ level: 'debug' }, capture) });
    await noisyTraffic(s);
    expectClean(capture.text);
    expect(capture.text).toMatch(/request failed/);
  });
});

describe('scrubber', () => {
  it('replaces secrets raw and JSON-escaped, Bearer tokens and URL credentials, leaving prose alone', () => {
    const sc = createScrubber(['abc"def\\ghi-long', 'short']);
    expect(sc.text('x abc"def\\ghi-long y')).toBe('x [redacted] y');
    expect(sc.line(JSON.stringify({ m: 'x abc"def\\ghi-long y' }))).toBe('{"m":"x [redacted] y"}');
    expect(sc.text('short stays')).toBe('short stays');
    expect(sc.text('Authorization: Bearer abcdefgh1234')).toBe('Authorization: Bearer [redacted]');
    expect(sc.text('send `Authorization: Bearer <token>` or a bearer token')).toBe('send `Authorization: Bearer <token>` or a bearer token');
    expect(sc.line('{"a":"https://u:p@h/x","b":"http://host:8080/path","c":"a@b.com"}')).toBe('{"a":"https://u:***@h/x","b":"http://host:8080/path","c":"a@b.com"}');
  });
});
