/*
 * Every statement txcoord itself sends to SQL Server. Values are always bound parameters (@p1,
 * @p2…); table names are unqualified, so they resolve in the login user's default schema (and
 * are created there), like the user's own SQL.
 *
 * Transactions are begun with tedious's transaction-manager request at READ COMMITTED; whether
 * the database has READ_COMMITTED_SNAPSHOT on or off does not change the bookkeeping statements
 * below, which take their own locks (see INSERT_MARKER).
 */

/** Length of `txcoord_markers.gtrid` (txcoord gtrids are at most 62 ASCII characters). */
export const GTRID_LENGTH = 64;
/** Length of `txcoord_barrier.gid` and `.step`. */
export const BARRIER_KEY_LENGTH = 128;
/** Length of `txcoord_barrier.op` and `.origin`. */
export const BARRIER_TAG_LENGTH = 16;

// Both creates tolerate a concurrent creator: the existence check skips the DDL (and the need for
// CREATE TABLE) when the table is there; if two processes pass the check at once, the loser's
// CREATE waits for the winner's and fails with 2714 (object exists), which is swallowed. THROW
// re-raises anything else with its own number (262: no CREATE TABLE permission…).

/** Creates `txcoord_markers` unless it exists. */
export const ENSURE_MARKERS = `if object_id(N'txcoord_markers', N'U') is null
begin
  begin try
    create table txcoord_markers (
      gtrid varchar(64) not null primary key,
      outcome varchar(8) not null,
      created_at datetime2 not null default sysutcdatetime()
    );
  end try
  begin catch
    if error_number() <> 2714 throw;
  end catch
end`;

/** Creates `txcoord_barrier` unless it exists. */
export const ENSURE_BARRIER = `if object_id(N'txcoord_barrier', N'U') is null
begin
  begin try
    create table txcoord_barrier (
      gid varchar(128) not null,
      step varchar(128) not null,
      op varchar(16) not null,
      origin varchar(16) not null,
      created_at datetime2 not null default sysutcdatetime(),
      primary key (gid, step, op)
    );
  end try
  begin catch
    if error_number() <> 2714 throw;
  end catch
end`;

/**
 * Whether the login user may read, insert and delete rows of both bookkeeping tables (1 or 0
 * each; NULL when a table is missing or invisible to the user), plus the names a GRANT needs.
 */
export const BOOKKEEPING_PERMISSIONS = `select
  user_name() as db_user,
  schema_name() as default_schema,
  object_schema_name(object_id(N'txcoord_markers')) as markers_schema,
  object_schema_name(object_id(N'txcoord_barrier')) as barrier_schema,
  has_perms_by_name(N'txcoord_markers', N'OBJECT', N'SELECT') as markers_select,
  has_perms_by_name(N'txcoord_markers', N'OBJECT', N'INSERT') as markers_insert,
  has_perms_by_name(N'txcoord_markers', N'OBJECT', N'DELETE') as markers_delete,
  has_perms_by_name(N'txcoord_barrier', N'OBJECT', N'SELECT') as barrier_select,
  has_perms_by_name(N'txcoord_barrier', N'OBJECT', N'INSERT') as barrier_insert,
  has_perms_by_name(N'txcoord_barrier', N'OBJECT', N'DELETE') as barrier_delete`;

/** The login user and default schema, for error messages naming a GRANT. */
export const WHO_AM_I = 'select user_name() as db_user, schema_name() as default_schema';

/**
 * Inserts the marker of @p1 with outcome @p2 unless a row exists, and returns the existing
 * outcome (NULL when this call inserted). One batch; the "exists" path raises no error to the
 * client. Why this shape:
 * - The INSERT's unique-key check is always a locking operation (writers never read row
 *   versions, whatever READ_COMMITTED_SNAPSHOT says): when another transaction has inserted the
 *   same key and not committed, the INSERT waits for it. Committed: duplicate key (2627), and
 *   the row is read; rolled back: the INSERT goes through. That wait makes the answer final.
 * - The row is read WITH (READCOMMITTEDLOCK), a locking read under either database setting, so
 *   it is the committed row; if it vanished in between (marker garbage collection), the loop
 *   tries the insert again.
 * - No range locks: a check-then-insert WITH (UPDLOCK, HOLDLOCK) would give the same answer, but
 *   on an absent key it locks the gap up to the next key, and gtrids are time-ordered (uuid
 *   v7), so concurrent marker inserts of one coordinator would all queue on the same gap at the
 *   end of the index until the previous transaction commits.
 * - SET XACT_ABORT OFF, because with it ON (a user's SET on the pooled session) the duplicate
 *   key would doom the whole transaction; a SET inside sp_executesql is undone when the call
 *   returns, so the session keeps its own setting.
 * The key is bound as varchar(64), the column's type, so the statements seek the primary key.
 */
export const INSERT_MARKER = `set xact_abort off;
declare @existing varchar(8), @inserted bit = 0, @attempt int = 0;
while @inserted = 0 and @existing is null and @attempt < 3
begin
  set @attempt += 1;
  begin try
    insert into txcoord_markers (gtrid, outcome) values (@p1, @p2);
    set @inserted = 1;
  end try
  begin catch
    if error_number() not in (2601, 2627) throw;
    select @existing = outcome from txcoord_markers with (readcommittedlock) where gtrid = @p1;
  end catch
end;
if @inserted = 0 and @existing is null
  throw 50000, N'txcoord: a txcoord_markers row kept vanishing between insert and read', 1;
select @existing as existing;`;

/** {@link INSERT_MARKER} for `txcoord_barrier`: key (@p1 gid, @p2 step, @p3 op), origin @p4. */
export const INSERT_BARRIER = `set xact_abort off;
declare @existing varchar(16), @inserted bit = 0, @attempt int = 0;
while @inserted = 0 and @existing is null and @attempt < 3
begin
  set @attempt += 1;
  begin try
    insert into txcoord_barrier (gid, step, op, origin) values (@p1, @p2, @p3, @p4);
    set @inserted = 1;
  end try
  begin catch
    if error_number() not in (2601, 2627) throw;
    select @existing = origin from txcoord_barrier with (readcommittedlock) where gid = @p1 and step = @p2 and op = @p3;
  end catch
end;
if @inserted = 0 and @existing is null
  throw 50000, N'txcoord: a txcoord_barrier row kept vanishing between insert and read', 1;
select @existing as existing;`;

/**
 * Markers whose gtrid matches the LIKE pattern @p1 (escape character `\`), oldest first, at most
 * @p2. READPAST skips rows still locked by an uncommitted insert (a transaction in flight, which
 * has no marker yet), instead of waiting for it; with READ_COMMITTED_SNAPSHOT on those rows are
 * invisible anyway, so both settings answer alike.
 */
export const LIST_MARKERS = `select top (@p2) gtrid, outcome, created_at
from txcoord_markers with (readpast)
where gtrid like @p1 escape '\\'
order by created_at, gtrid`;

/** Most gtrids deleted by one statement (SQL Server accepts up to 2100 parameters). */
export const DELETE_MARKERS_CHUNK = 500;

/** Whether txcoord_barrier exists (present = 1): the barrier sweep must not create it. */
export const BARRIER_EXISTS = "select case when object_id(N'txcoord_barrier', N'U') is null then 0 else 1 end as present";

/**
 * Deletes the barrier rows whose gid is in [@p1, @p2), compared by bytes: the database's
 * default collation may be case-insensitive or skip punctuation.
 */
export const DELETE_BARRIERS = 'delete from txcoord_barrier where gid collate Latin1_General_BIN2 >= @p1 and gid collate Latin1_General_BIN2 < @p2';

/** Deletes the markers bound as @p1…@p`count`. */
export function deleteMarkersSql(count: number): string {
  const list = Array.from({ length: count }, (_, i) => `@p${i + 1}`).join(', ');
  return `delete from txcoord_markers where gtrid in (${list})`;
}

/** The LIKE pattern matching every string that starts with `prefix` (escape character `\`). */
export function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_[]/g, (c) => `\\${c}`)}%`;
}

/**
 * Whether the current transaction has written log records in any database: 1 or 0, or NULL when
 * the login may not read the transaction DMVs (they need VIEW SERVER STATE, or VIEW SERVER
 * PERFORMANCE STATE on SQL Server 2022). The permission is tested first, so the DMV is never
 * touched without it: a permission error could doom the transaction under XACT_ABORT ON.
 * CURRENT_TRANSACTION_ID() needs SQL Server 2016 or later and no permission.
 */
export const WRITE_CHECK = `if coalesce(has_perms_by_name(null, null, N'VIEW SERVER STATE'), 0) = 1
   or coalesce(has_perms_by_name(null, null, N'VIEW SERVER PERFORMANCE STATE'), 0) = 1
  select case when exists (
    select 1 from sys.dm_tran_database_transactions
    where transaction_id = current_transaction_id() and database_transaction_log_record_count > 0
  ) then 1 else 0 end as wrote;
else
  select cast(null as int) as wrote;`;

/** The session's transaction nesting level: 1 inside the branch's own transaction. */
export const TRANCOUNT = 'select @@trancount as trancount';
