import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TxcError } from '../../../coordinator/errors.js';
import type { LogConfig } from '../../../log/decision-log.js';
import { LiveSet } from '../../../log/live-set.js';
import type { LogRecord } from '../../../log/log-record.js';
import { createMemoryLog } from '../../../log/memory/memory-log.js';
import { openLog } from '../../../log/open-log.js';
import { commit, end, heuristic, silent, tempDir } from './log-test-helpers.js';

describe('LiveSet', () => {
  it('keeps live records in global append order and drops a transaction at its end', () => {
    const s = new LiveSet();
    s.apply(commit('a'));
    s.apply(commit('b'));
    s.apply(heuristic('a'));
    s.apply(commit('c'));
    expect(s.records().map((r) => `${r.type}:${r.gtrid}`)).toEqual(['commit:a', 'commit:b', 'heuristic:a', 'commit:c']);
    expect(s.apply(end('b'))).toBe(true);
    expect(s.records().map((r) => `${r.type}:${r.gtrid}`)).toEqual(['commit:a', 'heuristic:a', 'commit:c']);
    expect(s.transactions).toBe(2);
  });

  it('ignores an end for an unknown transaction and exact duplicates', () => {
    const s = new LiveSet();
    expect(s.apply(end('nobody'))).toBe(false);
    expect(s.apply(commit('a'))).toBe(true);
    expect(s.apply(commit('a'))).toBe(false);
    expect(s.apply(heuristic('a'))).toBe(true);
    expect(s.apply(heuristic('a'))).toBe(false);
    expect(s.records()).toHaveLength(2);
  });

  it('lets a gtrid live again after its end', () => {
    const s = new LiveSet();
    s.apply(commit('a'));
    s.apply(end('a'));
    s.apply(commit('a'));
    expect(s.records()).toEqual([commit('a')]);
  });
});

describe('LiveSet against a reference model', () => {
  it('holds exactly the records of unended transactions, in global append order', () => {
    const op = fc.record({ kind: fc.constantFrom('commit', 'heuristic', 'end'), gtrid: fc.constantFrom('a', 'b', 'c', 'd'), n: fc.integer({ min: 1, max: 3 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const s = new LiveSet();
        let model: LogRecord[] = [];
        for (const o of ops) {
          const rec = o.kind === 'commit' ? commit(o.gtrid, o.n) : o.kind === 'heuristic' ? heuristic(o.gtrid) : end(o.gtrid);
          s.apply(rec);
          if (rec.type === 'end') model = model.filter((r) => r.gtrid !== rec.gtrid);
          else if (!model.some((r) => JSON.stringify(r) === JSON.stringify(rec))) model.push(rec);
          expect(s.records()).toEqual(model);
        }
        expect(s.transactions).toBe(new Set(model.map((r) => r.gtrid)).size);
      }),
    );
  });
});

describe('memory log', () => {
  it('tracks liveness like the file log and copies records', async () => {
    const log = createMemoryLog();
    const rec = { ...commit('a') };
    await log.append(rec, true);
    await log.append(commit('b'), false);
    await log.append(end('b'), false);
    (rec as { gtrid: string }).gtrid = 'mutated';
    expect(log.live()).toEqual([commit('a')]);
    await log.compact();
  });

  it('rejects after close with TXC_LOG_CLOSED', async () => {
    const log = createMemoryLog();
    await log.close();
    const err = await log.append(commit('a'), true).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_LOG_CLOSED')).toBe(true);
    expect(TxcError.is(await log.compact().catch((e: unknown) => e), 'TXC_LOG_CLOSED')).toBe(true);
  });

  it('rejects a record JSON cannot hold with TXC_LOG_IO', async () => {
    const log = createMemoryLog();
    const bad = { ...commit('a'), meta: { n: 1n as unknown as number } };
    expect(TxcError.is(await log.append(bad, true).catch((e: unknown) => e), 'TXC_LOG_IO')).toBe(true);
  });
});

describe('openLog', () => {
  it('dispatches on config.type', async () => {
    const mem = await openLog({ type: 'memory' });
    await mem.append(commit('a'), true);
    expect(mem.live()).toHaveLength(1);

    const { dir, cleanup } = await tempDir();
    try {
      const file = await openLog({ type: 'file', dir }, { logger: silent });
      await file.append(commit('a'), true);
      await file.close();
      const again = await openLog({ type: 'file', dir }, { logger: silent });
      expect(again.live()).toEqual([commit('a')]);
      await again.close();
    } finally {
      await cleanup();
    }
  });

  it('rejects an unknown type with TXC_CONFIG_INVALID', async () => {
    const err = await openLog({ type: 'redis' } as unknown as LogConfig).catch((e: unknown) => e);
    expect(TxcError.is(err, 'TXC_CONFIG_INVALID')).toBe(true);
  });
});
