/* pairs_digest(key, name, value[, names]): the SQL side of engine/digest.h, an aggregate over
 * a table's rows, so that a store can record a digest of what it holds without reading the
 * rows into Lua. */
#include <sqlite3.h>
#include <string.h>

#include "digest.h"

static void step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  uint64_t *acc = sqlite3_aggregate_context(ctx, sizeof *acc);
  if (!acc) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (sqlite3_value_type(argv[1]) == SQLITE_NULL || sqlite3_value_type(argv[2]) == SQLITE_NULL) return;
  /* text first, then its length (sqlite3_value_bytes after sqlite3_value_text) */
  const char *name = (const char *)sqlite3_value_text(argv[1]);
  size_t nn = (size_t)sqlite3_value_bytes(argv[1]);
  const char *value = (const char *)sqlite3_value_text(argv[2]);
  size_t nv = (size_t)sqlite3_value_bytes(argv[2]);
  if (!name || !value) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (argc == 4) { /* only the names listed in argv[3], each followed by a NUL byte */
    const char *names = sqlite3_value_blob(argv[3]);
    size_t nl = (size_t)sqlite3_value_bytes(argv[3]);
    int listed = 0;
    for (size_t at = 0; names && at < nl && !listed;) {
      const char *end = memchr(names + at, '\0', nl - at);
      size_t len = end ? (size_t)(end - (names + at)) : nl - at;
      listed = len == nn && memcmp(names + at, name, nn) == 0;
      at += len + 1;
    }
    if (!listed) return;
  }
  *acc ^= digest_pair((uint64_t)sqlite3_value_int64(argv[0]), name, nn, value, nv);
}

static void final(sqlite3_context *ctx) {
  uint64_t *acc = sqlite3_aggregate_context(ctx, 0); /* NULL when no row was stepped */
  sqlite3_result_int64(ctx, (sqlite3_int64)(acc ? *acc : 0));
}

int digest_register(sqlite3 *db) {
  int rc = SQLITE_OK;
  for (int argc = 3; argc <= 4 && rc == SQLITE_OK; argc++)
    rc = sqlite3_create_function_v2(db, "pairs_digest", argc, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                    NULL, step, final, NULL);
  return rc;
}
