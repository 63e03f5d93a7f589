import { describe, expect, it } from 'vitest';
import { bindNamedParams, compileNamedStatement, NamedStatementError, placeholderStyleFor } from '../../../../api/server/named-statements.js';
import { StatementCatalog } from '../../../../api/server/statement-catalog.js';
import { validateConfig } from '../../../../coordinator/config.js';
import { TxcError } from '../../../../coordinator/errors.js';
import { FakeDatabase, FakeParticipant } from '../../../fakes/fake-participant.js';
import { stubAdapter } from './harness.js';

const SQL = 'update accounts set balance = balance - :amount where id = :id and owner <> :id';

describe('compileNamedStatement', () => {
  it('maps each driver to its placeholders', () => {
    expect(placeholderStyleFor('postgres')).toBe('dollar');
    expect(placeholderStyleFor('pglite')).toBe('dollar');
    expect(placeholderStyleFor('mysql')).toBe('question');
    expect(placeholderStyleFor('mssql')).toBe('at');
    expect(placeholderStyleFor('oracle')).toBe('colon');
    expect(placeholderStyleFor('fake')).toBe('dollar');
  });

  it('PostgreSQL: $n, one number per distinct name', () => {
    const c = compileNamedStatement(SQL, 'dollar');
    expect(c.sql).toBe('update accounts set balance = balance - $1 where id = $2 and owner <> $2');
    expect(c.slots).toEqual(['amount', 'id']);
    expect(c.names).toEqual(['amount', 'id']);
  });

  it('MySQL: one ? per occurrence', () => {
    const c = compileNamedStatement(SQL, 'question');
    expect(c.sql).toBe('update accounts set balance = balance - ? where id = ? and owner <> ?');
    expect(c.slots).toEqual(['amount', 'id', 'id']);
  });

  it('SQL Server: @pN, one number per distinct name', () => {
    const c = compileNamedStatement(SQL, 'at');
    expect(c.sql).toBe('update accounts set balance = balance - @p1 where id = @p2 and owner <> @p2');
    expect(c.slots).toEqual(['amount', 'id']);
  });

  it('Oracle: :name stays; SQL binds per occurrence, PL/SQL per distinct name', () => {
    const c = compileNamedStatement(SQL, 'colon');
    expect(c.sql).toBe(SQL);
    expect(c.slots).toEqual(['amount', 'id', 'id']);
    const plsql = compileNamedStatement('begin pay(:id, :amount); log(:id); end;', 'colon');
    expect(plsql.slots).toEqual(['id', 'amount']);
  });

  it('skips quoted strings, quoted identifiers and comments', () => {
    const sql = `select ':no', "col:no", x -- :no\n from t /* :no */ where a = :yes and b = 'it''s :no'`;
    expect(compileNamedStatement(sql, 'dollar').sql).toBe(`select ':no', "col:no", x -- :no\n from t /* :no */ where a = $1 and b = 'it''s :no'`);
    expect(compileNamedStatement(sql, 'dollar').names).toEqual(['yes']);
  });

  it('PostgreSQL: :: casts, dollar quotes, E-strings and nested comments', () => {
    const sql = "select :v::int, $$ :no $$, $tag$ :no $tag$, E'\\' :no', /* a /* :no */ :no */ :w";
    const c = compileNamedStatement(sql, 'dollar');
    expect(c.sql).toBe("select $1::int, $$ :no $$, $tag$ :no $tag$, E'\\' :no', /* a /* :no */ :no */ $2");
    expect(c.names).toEqual(['v', 'w']);
    expect(compileNamedStatement('select a::text, x[lo:hi], :=', 'dollar').names).toEqual([]);
  });

  it('MySQL: backslash escapes, backticks and # comments', () => {
    const c = compileNamedStatement("select 'a\\' :no', `c:no`, :yes # :no\n, \"d\\\" :no\"", 'question');
    expect(c.sql).toBe("select 'a\\' :no', `c:no`, ? # :no\n, \"d\\\" :no\"");
    expect(c.slots).toEqual(['yes']);
  });

  it('SQL Server: [bracketed] identifiers; Oracle: q-quotes', () => {
    expect(compileNamedStatement('select [a:no] from t where x = :yes', 'at').sql).toBe('select [a:no] from t where x = @p1');
    expect(compileNamedStatement("select q'[ :no ]', Q'{x}' from t where x = :yes", 'colon').slots).toEqual(['yes']);
  });

  it('refuses positional placeholders and unterminated quotes', () => {
    expect(() => compileNamedStatement('select $1', 'dollar')).toThrow(NamedStatementError);
    expect(() => compileNamedStatement('select @p1', 'at')).toThrow(/@p1/);
    expect(() => compileNamedStatement("select '?'", 'question')).toThrow(/mysql2/);
    expect(() => compileNamedStatement("select 'open", 'dollar')).toThrow(/unterminated/);
    expect(() => compileNamedStatement('select /* open', 'dollar')).toThrow(/unterminated/);
    expect(() => compileNamedStatement('select $x$ open', 'dollar')).toThrow(/unterminated/);
    // `?` is an ordinary operator for PostgreSQL (jsonb).
    expect(compileNamedStatement("select data ? 'k' from t where id = :id", 'dollar').sql).toBe("select data ? 'k' from t where id = $1");
  });

  it('binds values by slot and names a missing one', () => {
    const c = compileNamedStatement(SQL, 'question');
    expect(bindNamedParams(c, { amount: 5, id: 'a' })).toEqual([5, 'a', 'a']);
    expect(() => bindNamedParams(c, { amount: 5 })).toThrow(/:id/);
  });
});

describe('StatementCatalog', () => {
  const adapter = new FakeParticipant('db', new FakeDatabase());

  it('compiles every statement at start and names a bad one as a config field', () => {
    const err = (() => {
      try {
        StatementCatalog.fromConfig({ db: { driver: 'custom', adapter, statements: { ok: 'select :a', bad: { sql: 'select 1', compensate: 'select $1' } } } });
      } catch (e) {
        return e;
      }
    })();
    expect(TxcError.is(err, 'TXC_CONFIG_INVALID')).toBe(true);
    expect((err as TxcError).details['field']).toBe('participants.db.statements.bad.compensate');
  });

  it('binds the statement and its compensation to the same values, refusing missing, extra and structured values', () => {
    const cat = StatementCatalog.fromConfig({
      db: { driver: 'custom', adapter, statements: { pay: { sql: 'update a set n = n - :n where id = :id', compensate: 'update a set n = n + :n where id = :id' } } },
      my: { driver: 'custom', adapter: stubAdapter('my', 'mysql', true), statements: { t: 'select :v' } },
    });
    expect(cat.resolve('db', 'pay', { n: 2, id: 7 }, 'steps[0]')).toEqual({
      action: { sql: 'update a set n = n - $1 where id = $2', params: [2, 7] },
      compensate: { sql: 'update a set n = n + $1 where id = $2', params: [2, 7] },
    });
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return TxcError.is(e, 'TXC_BAD_REQUEST') ? e.details['field'] : e;
      }
      return undefined;
    };
    const noUndo = StatementCatalog.fromConfig({ db: { driver: 'custom', adapter, statements: { read: { sql: 'select n from a where id = :id', compensate: false } } } });
    expect(noUndo.resolve('db', 'read', { id: 3 }, 'steps[0]')).toEqual({ action: { sql: 'select n from a where id = $1', params: [3] }, compensate: false });
    expect(() => validateConfig({ id: 'x', log: { type: 'memory' }, participants: { db: { driver: 'postgres', connectionString: 'postgres://h/d', statements: { r: { sql: 'select 1', compensate: true } } } } })).toThrow(
      expect.objectContaining({ code: 'TXC_CONFIG_INVALID', details: expect.objectContaining({ field: 'participants.db.statements.r.compensate' }) }),
    );
    expect(field(() => cat.resolve('db', 'nope', {}, 'steps[1]'))).toBe('steps[1].statement');
    expect(field(() => cat.resolve('db', 'pay', { n: 1 }, 'steps[0]'))).toBe('steps[0].params.id');
    expect(field(() => cat.resolve('db', 'pay', { n: 1, id: 1, x: 1 }, 'steps[0]'))).toBe('steps[0].params.x');
    expect(field(() => cat.resolve('my', 't', { v: [1, 2] }, 'steps[0]'))).toBe('steps[0].params.v');
    expect(cat.resolve('db', 'pay', { n: [1], id: { a: 1 } }, 's').action.params).toEqual([[1], { a: 1 }]);
  });
});
