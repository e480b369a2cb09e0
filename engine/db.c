/* metasync.db: SQLite for Lua, as mechanism only: open a file, run statements with bound
 * parameters, read rows as tables. What is stored, and why, is the callers' business.
 *
 * Choices worth knowing:
 *  - Values only ever travel as bound parameters (?1..?n), never spliced into SQL text, and their
 *    number must match the statement's exactly: a missing value is a bug, not a NULL.
 *  - Errors are raised as "db: <SQLite's message> (<start of the SQL text>)". They never carry a
 *    bound value: values may be secrets or personal data, and messages end up in logs.
 *  - run/row/all take one statement per call and reuse prepared statements from a small
 *    per-handle cache keyed by the SQL text (callers pass constant SQL, so it hits). A cached
 *    statement is reset as soon as its call ends, successfully or not, so none stays active
 *    holding a read transaction or blocking a schema change.
 *  - rows() prepares a statement of its own: its loop body may yield, and another coroutine may
 *    use the handle (even with the same SQL) meanwhile. That statement is finalized when the
 *    iteration ends, when the loop is left early (the factory's 4th value is to-be-closed), or
 *    by __gc.
 *  - The busy timeout blocks the whole process, every task, while it waits: SQLite's busy
 *    handler cannot yield. Keep write transactions short.
 *  - Lua code can run in the middle of a call: any allocation may run a finalizer, and that could
 *    use the same handle. While a call holds a statement (and pointers into its current row) the
 *    handle is marked busy, and such a nested call raises instead of resetting, evicting or
 *    finalizing the statement under the caller's feet.
 *  - All state lives in the userdata (handles are shared by coroutines, never by threads, hence
 *    SQLITE_OPEN_NOMUTEX).
 */
#include "modules.h"

#include <lauxlib.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

#define DB_MT "metasync.db"
#define CURSOR_MT "metasync.db.cursor"
#define CACHE_SIZE 32
#define SQL_SHOWN 60 /* bytes of SQL text quoted in an error message */
#define DEFAULT_BUSY_MS 5000

#if SQLITE_VERSION_NUMBER < 3037000
#define sqlite3_changes64 sqlite3_changes
#define sqlite3_total_changes64 sqlite3_total_changes
#endif

typedef struct {
  char *sql; /* the key: a copy of the SQL text, NULL when the slot is free */
  size_t len;
  sqlite3_stmt *stmt;
  uint64_t used; /* tick of the last use, for least-recently-used eviction */
} Cached;

typedef struct {
  sqlite3 *db;          /* NULL once closed */
  sqlite3_stmt *active; /* the cached statement of the call in progress, reset when it ends */
  int busy;             /* a run/row/all call is in progress (see the header) */
  uint64_t tick;
  Cached cache[CACHE_SIZE];
} Db;

/* A rows() iteration; its user value is the handle, so the handle outlives it. */
typedef struct {
  sqlite3_stmt *stmt; /* NULL once finished or finalized */
  Db *d;
  int busy; /* a step is in progress */
} Cursor;

typedef char Msg[512];

/* ---------------------------------------------------------------- errors */

/* Formats "db: <what> (<sql>)" into msg, the SQL on one line and cut to SQL_SHOWN bytes (not
 * inside a UTF-8 sequence). Messages are formatted into C memory first because `what` is often
 * sqlite3_errmsg, which the cleanup done before raising (reset, finalize) may change. */
static void errfmt(Msg msg, const char *what, const char *sql) {
  char shown[SQL_SHOWN + 4];
  size_t n = 0;
  const unsigned char *p = (const unsigned char *)(sql ? sql : "");
  while (*p && *p <= ' ') p++;
  while (*p && n < SQL_SHOWN) {
    if (*p <= ' ') { /* blanks and control characters: one space, so the message is one line */
      while (*p && *p <= ' ') p++;
      if (*p) shown[n++] = ' ';
      continue;
    }
    shown[n++] = (char)*p++;
  }
  if (*p) {
    if ((*p & 0xC0) == 0x80) { /* cut inside a sequence: drop its first bytes too */
      while (n > 0 && ((unsigned char)shown[n - 1] & 0xC0) == 0x80) n--;
      if (n > 0) n--;
    }
    while (n > 0 && shown[n - 1] == ' ') n--;
    memcpy(shown + n, "...", 3);
    n += 3;
  }
  shown[n] = '\0';
  snprintf(msg, sizeof(Msg), "db: %s (%s)", what, shown);
}

/* Raises msg as it is (level 0: no position, the message says what failed). */
static int raise(lua_State *L, const char *msg) {
  lua_pushstring(L, msg);
  return lua_error(L);
}

/* ---------------------------------------------------------------- statements */

static Db *check_db(lua_State *L) {
  Db *d = luaL_checkudata(L, 1, DB_MT);
  if (!d->db) raise(L, "db: database is closed");
  if (d->busy) raise(L, "db: handle in use (called from a finalizer during a call on it)");
  return d;
}

/* The SQL argument: no NUL bytes (SQLite would stop there and run only part of it). */
static const char *check_sql(lua_State *L, int arg, size_t *lenp) {
  size_t len;
  const char *sql = luaL_checklstring(L, arg, &len);
  luaL_argcheck(L, strlen(sql) == len, arg, "SQL contains a NUL byte");
  luaL_argcheck(L, len < INT_MAX, arg, "SQL too long");
  if (lenp) *lenp = len;
  return sql;
}

/* Prepares exactly one statement; raises on an error, on SQL without a statement and on a second
 * statement (a tail of blanks, semicolons and comments is fine). Nothing leaks when it raises. */
static sqlite3_stmt *prepare_one(lua_State *L, sqlite3 *db, const char *sql, size_t len) {
  sqlite3_stmt *stmt = NULL, *extra = NULL;
  const char *tail = NULL, *end = sql + len;
  Msg msg;
  if (sqlite3_prepare_v2(db, sql, (int)len + 1, &stmt, &tail) != SQLITE_OK) {
    errfmt(msg, sqlite3_errmsg(db), sql);
    raise(L, msg);
  }
  if (!stmt) {
    errfmt(msg, "no statement", sql);
    raise(L, msg);
  }
  while (tail && tail < end && (*tail == ';' || (unsigned char)*tail <= ' ')) tail++;
  if (tail && tail < end) { /* maybe only comments: ask SQLite */
    int rc = sqlite3_prepare_v2(db, tail, (int)(end - tail), &extra, NULL);
    if (rc != SQLITE_OK || extra) {
      sqlite3_finalize(extra);
      sqlite3_finalize(stmt);
      errfmt(msg, "one statement per call", sql);
      raise(L, msg);
    }
  }
  return stmt;
}

/* The cached statement for sql, prepared on a miss into a free slot or the least recently used
 * one. The handle is busy, so the evicted statement is not in use. */
static sqlite3_stmt *cached(lua_State *L, Db *d, const char *sql, size_t len) {
  Cached *victim = &d->cache[0];
  for (int i = 0; i < CACHE_SIZE; i++) {
    Cached *c = &d->cache[i];
    if (c->sql && c->len == len && memcmp(c->sql, sql, len) == 0) {
      c->used = ++d->tick;
      return c->stmt;
    }
    if (victim->sql && (!c->sql || c->used < victim->used)) victim = c;
  }
  sqlite3_stmt *stmt = prepare_one(L, d->db, sql, len);
  char *key = malloc(len + 1);
  if (!key) {
    sqlite3_finalize(stmt);
    raise(L, "db: not enough memory");
  }
  memcpy(key, sql, len + 1);
  if (victim->sql) {
    sqlite3_finalize(victim->stmt);
    free(victim->sql);
  }
  victim->sql = key;
  victim->len = len;
  victim->stmt = stmt;
  victim->used = ++d->tick;
  return stmt;
}

/* Binds the values at stack indices first..last to ?1..?n. Returns 0, or 1 with msg filled in
 * (the caller cleans up, then raises). own: SQLite copies the strings (SQLITE_TRANSIENT), for a
 * statement stepped after this call returns (a cursor); otherwise it reads them in place. */
static int bind_args(lua_State *L, sqlite3_stmt *stmt, int first, int last, int own, Msg msg) {
  char what[96];
  int want = sqlite3_bind_parameter_count(stmt), got = last - first + 1;
  if (got != want) {
    snprintf(what, sizeof what, "expected %d parameter%s, got %d", want, want == 1 ? "" : "s",
             got);
    errfmt(msg, what, sqlite3_sql(stmt));
    return 1;
  }
  for (int i = 1; i <= want; i++) {
    int idx = first + i - 1, rc;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: rc = sqlite3_bind_null(stmt, i); break;
    case LUA_TBOOLEAN: rc = sqlite3_bind_int(stmt, i, lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
      rc = lua_isinteger(L, idx) ? sqlite3_bind_int64(stmt, i, lua_tointeger(L, idx))
                                 : sqlite3_bind_double(stmt, i, lua_tonumber(L, idx));
      break;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      /* Without own, no copy: the string is an argument on the stack of this call (guarded holds
       * copies), and guarded resets the statement and clears its bindings before the call
       * returns, so SQLite never reads the bytes after the string can be collected. A cursor
       * steps after m_rows returned, when nothing may hold its arguments any more. */
      rc = sqlite3_bind_text64(stmt, i, s, n, own ? SQLITE_TRANSIENT : SQLITE_STATIC, SQLITE_UTF8);
      break;
    }
    default:
      snprintf(what, sizeof what, "bad parameter #%d: %s", i, luaL_typename(L, idx));
      errfmt(msg, what, sqlite3_sql(stmt));
      return 1;
    }
    if (rc != SQLITE_OK) {
      errfmt(msg, sqlite3_errstr(rc), sqlite3_sql(stmt));
      return 1;
    }
  }
  return 0;
}

/* Pushes the n column names of stmt, the keys of every row table. */
static void push_names(lua_State *L, sqlite3_stmt *stmt, int n) {
  luaL_checkstack(L, n + 4, "too many columns");
  for (int i = 0; i < n; i++) {
    const char *name = sqlite3_column_name(stmt, i);
    if (!name) raise(L, "db: not enough memory");
    lua_pushstring(L, name);
  }
}

/* Pushes column i of the current row, of a type other than NULL. */
static void push_col(lua_State *L, sqlite3_stmt *stmt, int i, int type) {
  switch (type) {
  case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_column_int64(stmt, i)); break;
  case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(stmt, i)); break;
  default: { /* TEXT or BLOB: bytes as they are, embedded NULs included */
    const void *p = type == SQLITE_TEXT ? (const void *)sqlite3_column_text(stmt, i)
                                        : sqlite3_column_blob(stmt, i);
    int len = sqlite3_column_bytes(stmt, i);
    if (!p && len > 0) raise(L, "db: not enough memory");
    lua_pushlstring(L, p ? p : "", (size_t)len);
  }
  }
}

/* Pushes the current row as a table keyed by the names at names..names+n-1; NULLs are left out. */
static void push_row(lua_State *L, sqlite3_stmt *stmt, int names, int n) {
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    int type = sqlite3_column_type(stmt, i);
    if (type == SQLITE_NULL) continue;
    lua_pushvalue(L, names + i);
    push_col(L, stmt, i, type);
    lua_rawset(L, -3);
  }
}

/* Adds the current row (key, name, value) to the table at t: t[key][name] = value. A row
 * whose key or name is NULL is left out, as is a NULL value (t[key] is made all the same).
 * The group last added to stays on top of the stack with its key below it: rows come in key
 * order when the key leads the index read, so the next row's key is compared by its bytes and
 * the group reused, rather than making the key a Lua string again for every row (interning a
 * string is a hash and a walk of the string table's chain, a cache miss or two each, and a
 * baseline read ahead has several rows a certificate). */
static int same_key(lua_State *L, sqlite3_stmt *stmt, int tk, int t) {
  if (lua_gettop(L) != t + 2) return 0; /* no group held yet */
  if (tk == SQLITE_INTEGER)
    return lua_isinteger(L, -2) && lua_tointeger(L, -2) == sqlite3_column_int64(stmt, 0);
  if (tk != SQLITE_TEXT && tk != SQLITE_BLOB) return 0;
  if (lua_type(L, -2) != LUA_TSTRING) return 0;
  size_t held;
  const char *h = lua_tolstring(L, -2, &held);
  const void *p = tk == SQLITE_TEXT ? (const void *)sqlite3_column_text(stmt, 0) : sqlite3_column_blob(stmt, 0);
  int len = sqlite3_column_bytes(stmt, 0);
  return (size_t)len == held && (len == 0 || (p && memcmp(h, p, held) == 0));
}

static void group_row(lua_State *L, sqlite3_stmt *stmt, int t) {
  int tk = sqlite3_column_type(stmt, 0), tn = sqlite3_column_type(stmt, 1);
  if (tk == SQLITE_NULL || tn == SQLITE_NULL) return;
  if (!same_key(L, stmt, tk, t)) {
    lua_settop(L, t);
    push_col(L, stmt, 0, tk);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, t) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_createtable(L, 0, 8);
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      lua_rawset(L, t); /* t[key] = the new group */
    }
  }
  int tv = sqlite3_column_type(stmt, 2);
  if (tv != SQLITE_NULL) {
    push_col(L, stmt, 1, tn);
    push_col(L, stmt, 2, tv);
    lua_rawset(L, -3);
  }
}

/* ---------------------------------------------------------------- run, row, all */

enum { Q_RUN, Q_ROW, Q_ALL, Q_GROUP, Q_MAP };

/* The body of run/row/all, under lua_pcall from guarded: stack = handle, sql, values... */
static int query(lua_State *L, int mode) {
  Db *d = lua_touserdata(L, 1);
  size_t len;
  const char *sql = lua_tolstring(L, 2, &len);
  Msg msg;
  sqlite3_stmt *stmt = cached(L, d, sql, len);
  d->active = stmt;
  if (bind_args(L, stmt, 3, lua_gettop(L), 0, msg)) return raise(L, msg);
  sqlite3_int64 before = sqlite3_total_changes64(d->db);
  int n = mode == Q_RUN ? 0 : sqlite3_column_count(stmt), names = lua_gettop(L) + 1, rc;
  if (mode == Q_GROUP) {
    if (n != 3) {
      errfmt(msg, "group needs a statement of exactly three columns", sql);
      return raise(L, msg);
    }
    n = 0; /* no names: a group is keyed by the values */
    luaL_checkstack(L, 8, "db: group");
  } else if (mode == Q_MAP) {
    if (n != 2) {
      errfmt(msg, "map needs a statement of exactly two columns", sql);
      return raise(L, msg);
    }
    n = 0;
  }
  push_names(L, stmt, n);
  if (mode == Q_ALL || mode == Q_GROUP || mode == Q_MAP) lua_newtable(L);
  int t = lua_gettop(L);
  lua_Integer count = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (mode == Q_RUN) continue; /* RETURNING rows: the statement still runs to its end */
    if (mode == Q_GROUP) {
      group_row(L, stmt, t);
      continue;
    }
    if (mode == Q_MAP) {
      int tk = sqlite3_column_type(stmt, 0), tv = sqlite3_column_type(stmt, 1);
      if (tk != SQLITE_NULL && tv != SQLITE_NULL) {
        push_col(L, stmt, 0, tk);
        push_col(L, stmt, 1, tv);
        lua_rawset(L, t);
      }
      continue;
    }
    push_row(L, stmt, names, n);
    if (mode == Q_ROW) return 1;
    lua_rawseti(L, -2, ++count);
  }
  if (rc != SQLITE_DONE) {
    errfmt(msg, sqlite3_errmsg(d->db), sql);
    return raise(L, msg);
  }
  if (mode == Q_GROUP || mode == Q_MAP) lua_settop(L, t);
  if (mode == Q_ROW) lua_pushnil(L);
  /* sqlite3_changes keeps counting the last INSERT/UPDATE/DELETE: for anything else, or when
   * nothing changed, report 0 rather than a stale count. */
  else if (mode == Q_RUN)
    lua_pushinteger(L, sqlite3_total_changes64(d->db) != before ? sqlite3_changes64(d->db) : 0);
  return 1;
}

static int w_run(lua_State *L) { return query(L, Q_RUN); }
static int w_row(lua_State *L) { return query(L, Q_ROW); }
static int w_all(lua_State *L) { return query(L, Q_ALL); }
static int w_group(lua_State *L) { return query(L, Q_GROUP); }

/* Binds the n values of one row group from t (stack index) at t[pos], t[pos+1], ... to ?1..;
 * false binds NULL (a queue keeps false for "no value": nil would end its array part), and a nil
 * is an error: a slot past the rows the caller meant is a bug, not a NULL. */
static int bind_from(lua_State *L, sqlite3_stmt *stmt, int t, lua_Integer pos, int n, Msg msg) {
  char what[96];
  for (int i = 1; i <= n; i++) {
    int rc, type = lua_rawgeti(L, t, pos + i - 1);
    switch (type) {
    case LUA_TBOOLEAN:
      rc = lua_toboolean(L, -1) ? sqlite3_bind_int(stmt, i, 1) : sqlite3_bind_null(stmt, i);
      break;
    case LUA_TNUMBER:
      rc = lua_isinteger(L, -1) ? sqlite3_bind_int64(stmt, i, lua_tointeger(L, -1))
                                : sqlite3_bind_double(stmt, i, lua_tonumber(L, -1));
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *v = lua_tolstring(L, -1, &len);
      /* SQLITE_STATIC: no copy (a first run binds a few hundred thousand queued strings). t is an
       * argument of this call and is not changed while it runs, so the string outlives the
       * statement's use of it: each statement is reset and its bindings cleared right after its
       * step, and guarded does the same when a step fails. */
      rc = sqlite3_bind_text64(stmt, i, v, len, SQLITE_STATIC, SQLITE_UTF8);
      break;
    }
    default:
      snprintf(what, sizeof what, "bad value at [%lld]: %s", (long long)(pos + i - 1),
               luaL_typename(L, -1));
      errfmt(msg, what, sqlite3_sql(stmt));
      return 1;
    }
    lua_pop(L, 1);
    if (rc != SQLITE_OK) {
      errfmt(msg, sqlite3_errstr(rc), sqlite3_sql(stmt));
      return 1;
    }
  }
  return 0;
}

/* The body of batch, under lua_pcall from guarded: stack = handle, one, many, per, width, t,
 * first, count. */
static int w_batch(lua_State *L) {
  Db *d = lua_touserdata(L, 1);
  size_t l1, l2;
  const char *one = lua_tolstring(L, 2, &l1), *many = lua_tolstring(L, 3, &l2);
  lua_Integer per = luaL_checkinteger(L, 4), width = luaL_checkinteger(L, 5);
  luaL_checktype(L, 6, LUA_TTABLE);
  lua_Integer pos = luaL_checkinteger(L, 7), count = luaL_checkinteger(L, 8), changed = 0;
  Msg msg;
  if (!many || per < 1 || width < 1 || width > 999 || per > 999 / width || count < 0 || pos < 1 ||
      count > (LUA_MAXINTEGER - pos) / width)
    return raise(L, "db: batch needs a multi-row statement, rows per statement, a row width and "
                    "rows within the table's positions");
  sqlite3_int64 before = sqlite3_total_changes64(d->db);
  while (count > 0) {
    int full = count >= per;
    const char *sql = full ? many : one;
    int n = (int)(full ? per * width : width);
    sqlite3_stmt *stmt = cached(L, d, sql, full ? l2 : l1);
    d->active = stmt;
    if (sqlite3_bind_parameter_count(stmt) != n) {
      errfmt(msg, "parameter count is not rows x width", sql);
      return raise(L, msg);
    }
    if (bind_from(L, stmt, 6, pos, n, msg)) return raise(L, msg);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {}
    if (rc != SQLITE_DONE) {
      errfmt(msg, sqlite3_errmsg(d->db), sql);
      return raise(L, msg);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    d->active = NULL;
    pos += n;
    count -= full ? per : 1;
  }
  /* (the total, as query() reports: a statement that changes nothing leaves no stale count) */
  changed = (lua_Integer)(sqlite3_total_changes64(d->db) - before);
  lua_pushinteger(L, changed);
  return 1;
}

/* Runs worker on copies of the arguments under lua_pcall with the handle busy, then resets the
 * statement it used whatever happened, and passes its results or its error on. */
static int guarded(lua_State *L, lua_CFunction worker) {
  Db *d = check_db(L);
  check_sql(L, 2, NULL);
  int n = lua_gettop(L);
  luaL_checkstack(L, n + 1, "too many parameters");
  lua_pushcfunction(L, worker);
  for (int i = 1; i <= n; i++) lua_pushvalue(L, i); /* the originals keep the handle alive */
  d->busy = 1;
  int rc = lua_pcall(L, n, LUA_MULTRET, 0);
  d->busy = 0;
  if (d->active) {
    sqlite3_reset(d->active);
    sqlite3_clear_bindings(d->active);
    d->active = NULL;
  }
  if (rc != LUA_OK) return lua_error(L);
  return lua_gettop(L) - n;
}

/* h:run(sql, ...) -> number of rows changed */
static int m_run(lua_State *L) { return guarded(L, w_run); }
/* h:row(sql, ...) -> first row as {column = value} | nil */
static int m_row(lua_State *L) { return guarded(L, w_row); }
/* h:all(sql, ...) -> list of rows */
static int m_all(lua_State *L) { return guarded(L, w_all); }
/* h:group(sql, ...) -> {[first column] = {[second column] = third column}} for a statement of
 * three columns: rows of (key, name, value) gathered per key without a table per row, which
 * is how the sync state reads the baselines of a batch of certificates. */
static int m_group(lua_State *L) { return guarded(L, w_group); }
/* h:map(sql, ...) -> {[first column] = second column} (rows with a NULL in either are left
 * out; a repeated key keeps its last value) */
static int w_map(lua_State *L) { return query(L, Q_MAP); }
static int m_map(lua_State *L) { return guarded(L, w_map); }
/* h:batch(one, many, per, width, t, first, count) -> rows changed: count rows of width values
 * each, read from t[first], t[first + 1], ... (false binds NULL; a nil is an error): groups of per rows
 * through the multi-row statement many (per x width parameters), the rest through one (width
 * parameters). How the sync state commits its queue: no unpacking of the values onto the
 * stack, no copy of the queue. */
static int m_batch(lua_State *L) {
  check_sql(L, 3, NULL);
  return guarded(L, w_batch);
}

/* ---------------------------------------------------------------- rows */

static void cursor_finish(Cursor *c) {
  sqlite3_finalize(c->stmt); /* the last one after a close completes it (sqlite3_close_v2) */
  c->stmt = NULL;
}

/* One step, under lua_pcall from cursor_next: stack = cursor. */
static int cursor_step(lua_State *L) {
  Cursor *c = lua_touserdata(L, 1);
  int rc = sqlite3_step(c->stmt);
  if (rc == SQLITE_ROW) {
    int n = sqlite3_column_count(c->stmt);
    push_names(L, c->stmt, n);
    push_row(L, c->stmt, 2, n);
    return 1;
  }
  if (rc == SQLITE_DONE) {
    cursor_finish(c);
    return 0;
  }
  Msg msg;
  errfmt(msg, sqlite3_errmsg(sqlite3_db_handle(c->stmt)), sqlite3_sql(c->stmt));
  cursor_finish(c);
  return raise(L, msg);
}

/* The iterator: (cursor) -> row | nil */
static int cursor_next(lua_State *L) {
  Cursor *c = luaL_checkudata(L, 1, CURSOR_MT);
  if (c->busy) return raise(L, "db: cursor in use (called from a finalizer during a step)");
  if (!c->stmt) return 0;
  if (!c->d->db) {
    cursor_finish(c);
    return raise(L, "db: database is closed");
  }
  lua_settop(L, 1);
  lua_pushcfunction(L, cursor_step);
  lua_pushvalue(L, 1);
  c->busy = 1;
  int rc = lua_pcall(L, 1, 1, 0);
  c->busy = 0;
  if (rc != LUA_OK) {
    cursor_finish(c);
    return lua_error(L);
  }
  return 1;
}

/* __close and __gc. A finalizer run in the middle of a step leaves the statement to that step. */
static int cursor_gc(lua_State *L) {
  Cursor *c = luaL_checkudata(L, 1, CURSOR_MT);
  if (!c->busy) cursor_finish(c);
  return 0;
}

/* h:rows(sql, ...) -> iterator, cursor, nil, cursor: for the generic for, which closes the
 * cursor (its 4th value) however the loop ends. */
static int m_rows(lua_State *L) {
  Db *d = check_db(L);
  size_t len;
  const char *sql = check_sql(L, 2, &len);
  int top = lua_gettop(L);
  Cursor *c = lua_newuserdatauv(L, sizeof *c, 1);
  c->stmt = NULL;
  c->d = d;
  c->busy = 0;
  luaL_setmetatable(L, CURSOR_MT); /* from here on __gc finalizes whatever got prepared */
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  check_db(L); /* the allocations may have run a finalizer that closed the handle */
  c->stmt = prepare_one(L, d->db, sql, len);
  Msg msg;
  if (bind_args(L, c->stmt, 3, top, 1, msg)) {
    cursor_finish(c);
    return raise(L, msg);
  }
  lua_pushcfunction(L, cursor_next);
  lua_insert(L, -2);
  lua_pushnil(L);
  lua_pushvalue(L, -2);
  return 4;
}

/* ---------------------------------------------------------------- the rest of the handle */

static int exec_sql(lua_State *L, Db *d, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(d->db, sql, NULL, NULL, &err) != SQLITE_OK) {
    Msg msg;
    errfmt(msg, err ? err : sqlite3_errmsg(d->db), sql);
    sqlite3_free(err);
    return raise(L, msg);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* h:exec(sql) -> true: one or more statements without parameters (schema, pragmas). */
static int m_exec(lua_State *L) {
  Db *d = check_db(L);
  return exec_sql(L, d, check_sql(L, 2, NULL));
}

/* h:begin([mode]) -> true; mode "deferred" (the default), "immediate" or "exclusive" */
static int m_begin(lua_State *L) {
  static const char *const modes[] = {"deferred", "immediate", "exclusive", NULL};
  static const char *const sql[] = {"BEGIN", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"};
  Db *d = check_db(L);
  return exec_sql(L, d, sql[luaL_checkoption(L, 2, "deferred", modes)]);
}

/* h:commit() -> true */
static int m_commit(lua_State *L) { return exec_sql(L, check_db(L), "COMMIT"); }
/* h:rollback() -> true */
static int m_rollback(lua_State *L) { return exec_sql(L, check_db(L), "ROLLBACK"); }

/* h:in_transaction() -> boolean */
static int m_in_transaction(lua_State *L) {
  lua_pushboolean(L, sqlite3_get_autocommit(check_db(L)->db) == 0);
  return 1;
}

/* h:changes() -> rows changed by the last INSERT, UPDATE or DELETE */
static int m_changes(lua_State *L) {
  lua_pushinteger(L, sqlite3_changes64(check_db(L)->db));
  return 1;
}

/* h:last_insert_rowid() -> integer */
static int m_last_insert_rowid(lua_State *L) {
  lua_pushinteger(L, sqlite3_last_insert_rowid(check_db(L)->db));
  return 1;
}

static void close_db(Db *d) {
  for (int i = 0; i < CACHE_SIZE; i++) {
    Cached *c = &d->cache[i];
    if (!c->sql) continue;
    sqlite3_finalize(c->stmt);
    free(c->sql);
    memset(c, 0, sizeof *c);
  }
  /* _v2: with rows() cursors still open the connection lingers until they are finalized. */
  if (d->db) sqlite3_close_v2(d->db);
  d->db = NULL;
}

/* h:close(); also __close. Idempotent. */
static int m_close(lua_State *L) {
  Db *d = luaL_checkudata(L, 1, DB_MT);
  if (d->busy) return raise(L, "db: handle in use (called from a finalizer during a call on it)");
  close_db(d);
  return 0;
}

static int m_gc(lua_State *L) {
  Db *d = luaL_checkudata(L, 1, DB_MT);
  if (!d->busy) close_db(d);
  return 0;
}

static int m_tostring(lua_State *L) {
  Db *d = luaL_checkudata(L, 1, DB_MT);
  const char *file = d->db ? sqlite3_db_filename(d->db, "main") : NULL;
  lua_pushfstring(L, "db: %s%s", file && *file ? file : "?", d->db ? "" : " (closed)");
  return 1;
}

/* ---------------------------------------------------------------- module functions */

/* db.open(path [, {readonly = bool, busy_timeout_ms = n}]) -> handle | nil, message */
static int l_open(lua_State *L) {
  size_t plen;
  const char *path = luaL_checklstring(L, 1, &plen);
  int readonly = 0;
  lua_Integer timeout = DEFAULT_BUSY_MS;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    int t = lua_getfield(L, 2, "readonly");
    luaL_argcheck(L, t == LUA_TNIL || t == LUA_TBOOLEAN, 2, "readonly must be a boolean");
    readonly = lua_toboolean(L, -1);
    if (lua_getfield(L, 2, "busy_timeout_ms") != LUA_TNIL) {
      luaL_argcheck(L, lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0, 2,
                    "busy_timeout_ms must be a non-negative integer");
      timeout = lua_tointeger(L, -1);
      if (timeout > INT_MAX) timeout = INT_MAX;
    }
    lua_pop(L, 2);
  }
  if (strlen(path) != plen) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot open %s: path contains a NUL byte", path);
    return 2;
  }
  Db *d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, DB_MT); /* from here on __gc closes whatever got opened */
  int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
              SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path, &d->db, flags, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(d->db, (int)timeout);
  if (rc == SQLITE_OK) rc = digest_register(d->db);
  /* Reading the schema version makes a file that is not a database fail here, not at first use. */
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(d->db, "PRAGMA foreign_keys = ON; PRAGMA schema_version", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot open %s: %s", path,
                    d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
    close_db(d);
    return 2;
  }
  return 1;
}

/* db.version() -> the SQLite library's version, e.g. "3.40.1" */
static int l_version(lua_State *L) {
  lua_pushstring(L, sqlite3_libversion());
  return 1;
}

int luaopen_metasync_db(lua_State *L) {
  static const luaL_Reg methods[] = {{"exec", m_exec},
                                     {"run", m_run},
                                     {"row", m_row},
                                     {"all", m_all},
                                     {"group", m_group},
                                     {"map", m_map},
                                     {"batch", m_batch},
                                     {"rows", m_rows},
                                     {"begin", m_begin},
                                     {"commit", m_commit},
                                     {"rollback", m_rollback},
                                     {"in_transaction", m_in_transaction},
                                     {"changes", m_changes},
                                     {"last_insert_rowid", m_last_insert_rowid},
                                     {"close", m_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", m_gc}, {"__close", m_close}, {"__tostring", m_tostring}, {NULL, NULL}};
  static const luaL_Reg cursor_meta[] = {{"__gc", cursor_gc}, {"__close", cursor_gc}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"open", l_open}, {"version", l_version}, {NULL, NULL}};
  if (luaL_newmetatable(L, DB_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, CURSOR_MT)) luaL_setfuncs(L, cursor_meta, 0);
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
