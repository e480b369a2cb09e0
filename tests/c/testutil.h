/* A tiny assert harness for the C unit tests: count checks, report failures, exit non-zero. */
#ifndef METASYNC_TESTUTIL_H
#define METASYNC_TESTUTIL_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules.h"

static int tu_checks, tu_failures;

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    tu_checks++;                                                                        \
    if (!(cond)) {                                                                      \
      tu_failures++;                                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
    }                                                                                   \
  } while (0)

#define CHECK_STR(got, want)                                                            \
  do {                                                                                  \
    const char *g_ = (got), *w_ = (want);                                               \
    tu_checks++;                                                                        \
    if (!g_ || strcmp(g_, w_) != 0) {                                                   \
      tu_failures++;                                                                    \
      fprintf(stderr, "%s:%d: got  [%s]\n%*s want [%s]\n", __FILE__, __LINE__,          \
              g_ ? g_ : "(null)", (int)strlen(__FILE__) + 6, "", w_);                   \
    }                                                                                   \
  } while (0)

static inline int tu_traceback(lua_State *L) {
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

/* A fresh state with the standard libraries and the core modules in package.preload. */
static inline lua_State *tu_state(void) {
  lua_State *L = luaL_newstate();
  if (!L) abort();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_metasync_json);
  lua_setfield(L, -2, "metasync.json");
  lua_pushcfunction(L, luaopen_metasync_re);
  lua_setfield(L, -2, "metasync.re");
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pop(L, 1);
  return L;
}

/* Runs a chunk (a snippet or a file) as one check: it passes when the chunk runs without error. */
static inline int tu_run(lua_State *L, const char *where, int line, const char *code, int isfile) {
  int base = lua_gettop(L);
  lua_pushcfunction(L, tu_traceback);
  int st = isfile ? luaL_loadfile(L, code) : luaL_loadbuffer(L, code, strlen(code), where);
  if (st == LUA_OK) st = lua_pcall(L, 0, 0, base + 1);
  tu_checks++;
  if (st != LUA_OK) {
    tu_failures++;
    fprintf(stderr, "%s:%d: Lua error: %s\n", where, line, lua_tostring(L, -1));
  }
  lua_settop(L, base);
  return st == LUA_OK;
}
#define LUA_CHECK(L, code) tu_run((L), __FILE__, __LINE__, (code), 0)
#define LUA_FILE_CHECK(L, path) tu_run((L), (path), 0, (path), 1)

/* Evaluates "return <expr>" and returns its string result (kept in a registry slot until the next
 * call), or NULL when it raised or did not give a string. */
static inline const char *tu_eval(lua_State *L, const char *expr) {
  int base = lua_gettop(L);
  const char *res = NULL;
  lua_pushcfunction(L, tu_traceback);
  lua_pushfstring(L, "return %s", expr);
  if (luaL_loadstring(L, lua_tostring(L, -1)) == LUA_OK &&
      lua_pcall(L, 0, 1, base + 1) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "testutil.last");
    res = lua_tostring(L, -1);
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    fprintf(stderr, "eval of [%s]: %s\n", expr, lua_tostring(L, -1));
  }
  lua_settop(L, base);
  return res;
}

/* The Lua twin of a C test (tests/lua/<name>), located relative to this source file. */
static inline const char *tu_lua_twin(char *buf, size_t n, const char *cfile, const char *name) {
  const char *slash = strrchr(cfile, '/');
  int dir = slash ? (int)(slash - cfile) : 0;
  snprintf(buf, n, "%.*s%s../lua/%s", dir, cfile, dir ? "/" : "", name);
  FILE *f = fopen(buf, "r");
  if (!f) return NULL;
  fclose(f);
  return buf;
}

static inline int tu_done(const char *name) {
  fprintf(stderr, "%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
  return tu_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
