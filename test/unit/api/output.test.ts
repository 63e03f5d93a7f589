import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import { formatAge, formatError, formatJson, isDebug, renderFacts, renderTable } from '../../../api/output.js';

describe('renderTable', () => {
  it('aligns columns to the widest cell, right-aligns numbers, and trims trailing spaces', () => {
    const text = renderTable(
      [
        { header: 'NAME', cell: (r: { name: string; n: number }) => r.name },
        { header: 'N', cell: (r) => String(r.n), align: 'right' },
      ],
      [
        { name: 'a', n: 5 },
        { name: 'longer', n: 123 },
      ],
    );
    expect(text).toBe(['NAME      N', '------  ---', 'a         5', 'longer  123', ''].join('\n'));
  });

  it('prints just the header for no rows', () => {
    expect(renderTable([{ header: 'X', cell: () => '' }], [])).toBe('X\n-\n');
  });
});

describe('renderFacts', () => {
  it('aligns values after the longest label', () => {
    expect(renderFacts([['a', 1], ['longer', 'two']])).toBe('  a       1\n  longer  two\n');
  });
});

describe('formatAge', () => {
  it.each([
    [undefined, '-'],
    [-5, '-'],
    [850, '850ms'],
    [42_000, '42s'],
    [185_000, '3m 05s'],
    [2 * 3600_000 + 7 * 60_000, '2h 07m'],
    [4 * 86_400_000 + 3 * 3600_000, '4d 03h'],
  ])('%s ms -> %s', (ms, text) => {
    expect(formatAge(ms)).toBe(text);
  });
});

describe('formatError', () => {
  const configErr = new TxcError('TXC_CONFIG_INVALID', 'Config field `participants.erp.driver` must be one of postgres, mysql, pglite (got "oracle")');

  it('prints a TxcError as exactly one line: txcoord: CODE: message, with no stack', () => {
    const text = formatError(configErr);
    expect(text).toBe(`txcoord: TXC_CONFIG_INVALID: ${configErr.message}\n`);
    expect(text.trimEnd().split('\n')).toHaveLength(1);
    expect(text).not.toMatch(/\bat .*\.(ts|js):\d+/);
  });

  it('keeps an unexpected error to one line unless debugging, and then shows the stack and causes', () => {
    const err = new Error('boom', { cause: new Error('root cause') });
    const short = formatError(err);
    expect(short.trimEnd().split('\n')).toHaveLength(1);
    expect(short).toContain('txcoord: unexpected error: boom');
    expect(short).toContain('TXCOORD_DEBUG=1');
    const long = formatError(err, true);
    expect(long).toContain('at ');
    expect(long).toContain('Caused by: Error: root cause');
  });

  it('masks passwords inside URLs, even in debug output', () => {
    const err = new TxcError('TXC_PARTICIPANT_UNAVAILABLE', 'cannot reach postgres://app:s3cret@db1:5432/erp');
    expect(formatError(err)).not.toContain('s3cret');
    expect(formatError(err, true)).not.toContain('s3cret');
    expect(formatError(new Error('mysql://root:hunter2@h/db down'))).not.toContain('hunter2');
  });
});

describe('formatJson / isDebug', () => {
  it('writes two-space JSON with a final newline', () => {
    expect(formatJson({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}\n');
  });

  it('treats unset, empty, 0 and false as off', () => {
    expect(isDebug({})).toBe(false);
    expect(isDebug({ TXCOORD_DEBUG: '' })).toBe(false);
    expect(isDebug({ TXCOORD_DEBUG: '0' })).toBe(false);
    expect(isDebug({ TXCOORD_DEBUG: 'false' })).toBe(false);
    expect(isDebug({ TXCOORD_DEBUG: '1' })).toBe(true);
  });
});
