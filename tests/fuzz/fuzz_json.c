/* libFuzzer harness for metasync.json (not part of the default build; see README).
 * Properties checked: decode never crashes; whatever decode accepts, encode accepts; encoding is a
 * fixed point after one round trip (sorted keys make the output deterministic); and selective
 * decoding (opts.select, with and without opts.at) fails exactly when the full decode fails, with
 * the same message, and otherwise gives the full decode restricted to the selected keys. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules.h"

static lua_State *L;

static const char *roundtrip =
    "local json, s = ...\n"
    "local function enc(v) return json.encode(v, {sort_keys = true}) end\n"
    "local function restricted(v, names, at)\n"
    "  local list = v\n"
    "  if at then list = type(v) == 'table' and not json.is_array(v) and v[at] end\n"
    "  if type(list) ~= 'table' or not json.is_array(list) then return v end\n"
    "  for i, it in ipairs(list) do\n"
    "    if type(it) == 'table' and not json.is_array(it) then\n"
    "      local k = {}\n"
    "      for _, name in ipairs(names) do k[name] = it[name] end\n"
    "      list[i] = k\n"
    "    end\n"
    "  end\n"
    "  return v\n"
    "end\n"
    "local v, err = json.decode(s)\n"
    "for _, o in ipairs{{select = {'a', 'b', ''}}, {select = {'a'}, at = 'a'}, {select = {}, at = ''}} do\n"
    "  local v2, err2 = json.decode(s, o)\n"
    "  assert(err2 == err, 'select changed the outcome: ' .. tostring(err) .. ' / ' .. tostring(err2))\n"
    "  if v ~= nil then\n"
    "    assert(enc(restricted(json.decode(s), o.select, o.at)) == enc(v2), 'select kept the wrong keys')\n"
    "  end\n"
    "end\n"
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
    if (!msg || !strstr(msg, "not enough memory")) {
      fprintf(stderr, "fuzz_json: %s\n", msg ? msg : "(error object is not a string)");
      abort();
    }
  }
  lua_settop(L, 0);
  return 0;
}
