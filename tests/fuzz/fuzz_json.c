/* libFuzzer harness for metasync.json (not part of the default build; see README).
 * Properties checked: decode never crashes; whatever decode accepts, encode accepts; and encoding
 * is a fixed point after one round trip (sorted keys make the output deterministic). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modules.h"

static lua_State *L;

static const char *roundtrip =
    "local json, s = ...\n"
    "local v = json.decode(s)\n"
    "if v == nil then return end\n"
    "local a = json.encode(v, {sort_keys = true})\n"
    "local b = json.encode(json.decode(a), {sort_keys = true})\n"
    "assert(a == b, 'round trip changed the encoding')\n"
    "json.encode(v, {pretty = true})\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "metasync.json", luaopen_metasync_json, 0);
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.json");
    if (luaL_loadstring(L, roundtrip) != LUA_OK) abort();
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.fn");
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.fn");
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.json");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    /* running out of memory is the fuzzer's limit, not a bug */
    if (!msg || !strstr(msg, "not enough memory")) abort();
  }
  lua_settop(L, 0);
  return 0;
}
