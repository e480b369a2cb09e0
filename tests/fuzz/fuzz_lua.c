/* The libFuzzer driver shared by the Lua-level fuzz targets (not part of the default build; see
 * README.md). Compiled once per target with FUZZ_SCRIPT naming a tests/fuzz/fuzz_*.lua file that
 * returns the function to call with each input.
 *
 * The Lua state is built once per process the way engine/host.c builds metasync's: the standard
 * libraries, the engine's native modules that carry no process-wide state (metasync.json,
 * metasync.re, metasync.fs, metasync.unchanged, metasync.match, cjson) preloaded, package.path on the source tree's lib/ and scripts/ (and
 * tests/fuzz/ for the shared harness.lua), and no C modules from the file system. The modules
 * that need the event loop, libcurl or the log files (metasync.task, http, log, ...) are stubbed
 * in Lua by harness.lua, only as far as the SDK needs them.
 *
 * A Lua error is not a crash in itself: each target decides which of the SDK's errors are
 * documented (and catches those with pcall) and lets everything else escape. Whatever escapes the
 * target's function is a finding, so it is reported and abort()ed on, which libFuzzer records as
 * a crash with the input that caused it. Only running out of memory is the fuzzer's limit, not a
 * bug. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules.h"

#ifndef FUZZ_SCRIPT
#error "FUZZ_SCRIPT (the target's Lua file) must be defined"
#endif
#ifndef FUZZ_SOURCE_DIR
#error "FUZZ_SOURCE_DIR (the repository root) must be defined"
#endif

static lua_State *L;
static int fn_ref = LUA_NOREF;

/* Coverage of the Lua code. Debian's liblua5.4 is not instrumented, so without this libFuzzer
 * would see only the C modules and mutate blindly in the SDK. A line hook counts each transition
 * from one Lua source line to the next (an edge, hashed) in counters libFuzzer reads as
 * coverage of its own (the __libfuzzer_extra_counters section). */
#define LUA_COUNTERS (1 << 16)
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_counters[LUA_COUNTERS];
static uint64_t prev_line;

/* The file a line is in, as a hash of its name: a module loaded again (the targets reload those
 * whose caches grow) then counts as the same code. Asking Lua for a function's source ("S")
 * formats its short name each time, which cost more than the rest of the hook, so the hash is
 * cached by the running closure's address ("f" only pushes it). A closure freed and another
 * allocated at the same address inside another file would borrow a wrong hash until evicted:
 * that blurs coverage a little, never a finding. The hook itself is not instrumented: its
 * comparisons are not the code under test. */
#define NO_COV __attribute__((no_sanitize("coverage")))
static NO_COV uint64_t fnv(const char *src) {
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  for (const unsigned char *c = (const unsigned char *)src; *c; c++) h = (h ^ *c) * 1099511628211u;
  return h;
}

static struct {
  const void *fn;
  uint64_t h;
} by_closure[4096];

static NO_COV uint64_t source_hash(lua_State *S, lua_Debug *ar) {
  if (!lua_getinfo(S, "f", ar)) return 0;
  const void *fn = lua_topointer(S, -1);
  lua_pop(S, 1);
  size_t i = ((uintptr_t)fn >> 4) & 4095;
  if (by_closure[i].fn != fn) {
    if (!lua_getinfo(S, "S", ar)) return 0;
    by_closure[i].fn = fn;
    by_closure[i].h = fnv(ar->source);
  }
  return by_closure[i].h;
}

static NO_COV void line_hook(lua_State *S, lua_Debug *ar) {
  if (ar->event != LUA_HOOKLINE) return;
  /* currentline is already set for a line event. */
  uint64_t here = (source_hash(S, ar) * 0x9E3779B97F4A7C15u) ^ (uint64_t)ar->currentline;
  here ^= here >> 29;
  lua_counters[(here ^ (prev_line >> 1)) & (LUA_COUNTERS - 1)]++;
  prev_line = here;
}

static int traceback(lua_State *S) {
  const char *msg = lua_tostring(S, 1);
  if (!msg) msg = lua_pushfstring(S, "(error object is a %s value)", luaL_typename(S, 1));
  luaL_traceback(S, S, msg, 1);
  return 1;
}

static void die(const char *what) {
  fprintf(stderr, "fuzz (%s): %s\n", FUZZ_SCRIPT, what);
  abort();
}

static void close_state(void) {
  if (L) lua_close(L);
  L = NULL;
}

static void open_state(void) {
  L = luaL_newstate();
  if (!L) die("cannot create the Lua state");
  luaL_openlibs(L);
  static const luaL_Reg mods[] = {{"metasync.json", luaopen_metasync_json},
                                  {"metasync.re", luaopen_metasync_re},
                                  {"cjson", luaopen_cjson},
                                  {"metasync.fs", luaopen_metasync_fs},
                                  {"metasync.unchanged", luaopen_metasync_unchanged},
                                  {"metasync.match", luaopen_metasync_match},
                                  {NULL, NULL}};
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = mods; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
  /* FUZZ_SOURCE_DIR in the environment points a built target at another tree (say, a copy
   * with a proposed fix) without rebuilding. */
  const char *src = getenv("FUZZ_SOURCE_DIR");
  if (!src || !*src) src = FUZZ_SOURCE_DIR;
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lib/?.lua;%s/lib/?/init.lua;%s/scripts/?.lua;%s/tests/fuzz/?.lua", src, src, src, src);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  /* The target's file returns the function each input goes to. */
  lua_pushcfunction(L, traceback);
  lua_pushfstring(L, "%s/tests/fuzz/%s", src, FUZZ_SCRIPT);
  if (luaL_loadfile(L, lua_tostring(L, -1)) != LUA_OK) die(lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_pushstring(L, src); /* the script's `...`: where lib/ and scripts/ are */
  if (lua_pcall(L, 1, 1, -3) != LUA_OK) die(lua_tostring(L, -1));
  if (!lua_isfunction(L, -1)) die("the target script did not return a function");
  fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  /* Set after loading, so the modules' own start-up (run once) is not what is counted; threads
   * (coroutines) inherit the hook. */
  if (!getenv("FUZZ_NO_LUA_COVERAGE")) lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  /* Closing the state at exit runs the targets' __gc cleanups (temporary directories). */
  atexit(close_state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) open_state();
  prev_line = 0;
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (!msg || !strstr(msg, "not enough memory")) die(msg ? msg : "(error object is not a string)");
  }
  lua_settop(L, 0);
  return 0;
}
