import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  branchXid,
  coordinatorOf,
  fromMysqlRecoverRow,
  fromPgGid,
  gtridTime,
  newGtrid,
  toMysqlXid,
  toPgGid,
} from '../../../coordinator/xid.js';
import { TxcError } from '../../../coordinator/errors.js';

const coordId = fc.stringMatching(/^[A-Za-z0-9_-]{1,24}$/);

describe('transaction ids', () => {
  it('fit every database limit and round-trip through each encoding', () => {
    fc.assert(
      fc.property(coordId, fc.integer({ min: 0, max: 9999 }), (id, n) => {
        const xid = branchXid(newGtrid(id), n);
        expect(Buffer.byteLength(xid.gtrid)).toBeLessThanOrEqual(64);
        expect(Buffer.byteLength(xid.bqual)).toBeLessThanOrEqual(64);
        expect(Buffer.byteLength(toPgGid(xid))).toBeLessThan(200);
        expect(fromPgGid(toPgGid(xid))).toEqual(xid);
        expect(coordinatorOf(xid.gtrid)).toBe(id);
        const data = Buffer.concat([Buffer.from(xid.gtrid), Buffer.from(xid.bqual)]);
        const row = { formatID: xid.formatId, gtrid_length: xid.gtrid.length, bqual_length: xid.bqual.length, data };
        expect(fromMysqlRecoverRow(row)).toEqual(xid);
      }),
    );
  });

  it('are time-ordered and carry their creation time', () => {
    const a = newGtrid('c1');
    const b = newGtrid('c1');
    expect(a < b).toBe(true);
    expect(Math.abs((gtridTime(a) ?? 0) - Date.now())).toBeLessThan(5_000);
  });

  it('increase strictly and never repeat, also many to a millisecond and across random-pool refills', () => {
    const ids = Array.from({ length: 5_000 }, () => newGtrid('c1'));
    for (let i = 1; i < ids.length; i++) expect(ids[i - 1]! < ids[i]!).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('take an injected uuid with dashes and upper case, and refuse one that is not a uuid', () => {
    expect(newGtrid('c1', () => '0190ABCD-1234-7ABC-8DEF-0123456789AB')).toBe('txc1.c1.0190abcd12347abc8def0123456789ab');
    expect(() => newGtrid('c1', () => "0190abcd-1234-7abc-8def-0123456789a'")).toThrow(TxcError);
  });

  it('validate the coordinator id of every call, also right after a valid one', () => {
    expect(coordinatorOf(newGtrid('first'))).toBe('first');
    expect(() => newGtrid("first'")).toThrow(TxcError);
    expect(coordinatorOf(newGtrid('second'))).toBe('second');
    expect(coordinatorOf(newGtrid('first'))).toBe('first');
  });

  it('send MySQL xids as hex literals only', () => {
    const xid = branchXid(newGtrid('c1'), 3);
    expect(toMysqlXid(xid)).toMatch(/^X'[0-9a-f]+',X'[0-9a-f]+',1415070513$/);
  });

  it('reject ids that could smuggle SQL, and ignore foreign branches', () => {
    for (const bad of ["a'b", 'x y', '', 'a'.repeat(25), 'é']) {
      expect(() => newGtrid(bad)).toThrow(TxcError);
    }
    expect(() => toPgGid({ formatId: 1415070513, gtrid: "txc1.a.'; drop table x; --", bqual: 'b0' })).toThrow(TxcError);
    expect(fromPgGid('some-other-app-gid')).toBeUndefined();
    expect(fromPgGid(`txc1.a.${'0'.repeat(32)}.b1x`)).toBeUndefined();
    expect(fromMysqlRecoverRow({ formatID: 1, gtrid_length: 3, bqual_length: 0, data: Buffer.from('abc') })).toBeUndefined();
  });
});
