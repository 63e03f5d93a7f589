import type { PoolConnection as MysqlPoolConnection, Connection as MysqlConnection, Pool as MysqlPool } from 'mysql2/promise';
import type { Client as PgClient, PoolClient as PgPoolClient, Pool as PgPool } from 'pg';
import { describe, expect, it } from 'vitest';
import type { MysqlBranchConnection, PgBranchClient } from '../../../client/index.js';

// Compile-time checks (tsconfig.test.json): the real driver objects fit the helpers' parameter
// types, and the pools, which would scatter the branch over several connections, do not (the
// helpers also refuse them at run time, for JavaScript callers).
type Assignable<From, To> = From extends To ? true : false;
const pgClient: Assignable<PgClient, PgBranchClient> = true;
const pgPoolClient: Assignable<PgPoolClient, PgBranchClient> = true;
const pgPool: Assignable<PgPool, PgBranchClient> = false;
const mysqlConnection: Assignable<MysqlConnection, MysqlBranchConnection> = true;
const mysqlPoolConnection: Assignable<MysqlPoolConnection, MysqlBranchConnection> = true;
const mysqlPool: Assignable<MysqlPool, MysqlBranchConnection> = false;

describe('driver types', () => {
  it('real pg and mysql2 connections fit the branch helpers', () => {
    expect([pgClient, pgPoolClient, mysqlConnection, mysqlPoolConnection]).toEqual([true, true, true, true]);
    expect([pgPool, mysqlPool]).toEqual([false, false]);
  });
});
