/* metasync.match: a page of listed records matched against an index by a normalised key.
 *
 *   match.keys(page, field, seen) -> keep, fresh[, dropped]
 *   match.page(page, keep, verdict, o, out) -> matched, odd
 *
 * Why native: on a run that changes nothing (the usual nightly run), the per-record glue of a
 * streamed listing (reading a record's id and key, de-duplicating, normalising the key, looking
 * it up, queueing the pair) was most of the Lua a run executes, a few dozen VM instructions
 * per record, and none of it is policy. The policy's own hook (the caller's include) stays in
 * Lua: it may yield, which a call from C could not. Every record this file does not plainly
 * know is handed back ("odd") to the caller's Lua, which decides it the full way, so nothing
 * here has to be right about an unusual record, only about the plain ones.
 *
 * All reads are raw: an item decoded with some keys only carries an __index that raises for a
 * key not fetched, and the fields read here are fetched or, when a policy left them out, are
 * nil to the Lua path too (which reads them with rawget). */
#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>

#include "json_internal.h"
#include "modules.h"

/* The id in item's field `field` (stack indices), as the Lua key function reads it: an
 * integer, or a float with an integral value, as that integer. 0: it has none. */
static int id_of(lua_State *L, int item, int field, lua_Integer *id) {
  int isint = 0;
  lua_pushvalue(L, field);
  if (lua_rawget(L, item) == LUA_TNUMBER) *id = lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1);
  return isint;
}

/* match.keys(page, field, seen) -> keep, fresh[, dropped]: the listing's verdict on each item of
 * a page. keep[i] is true for an item to hand on: a table whose `field` is an id not in seen
 * (seen gets it), or that has no id at all (nil, a string, 1.5: never de-duplicated, since items
 * without a usable id would otherwise collapse into one). It is false for an item whose id an
 * earlier item had (a page boundary that shifted while listing repeats items) and for one that
 * is no record (not a table), whose index is listed in dropped (absent when there is none).
 * fresh counts the items kept. */
static int l_keys(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1), fresh = 0, nd = 0;
  luaL_checkstack(L, 8, "match.keys");
  lua_createtable(L, n > 0 && n <= 100000 ? (int)n : 0, 0); /* 4: keep */
  lua_pushnil(L);                                           /* 5: dropped, made on first use */
  for (lua_Integer i = 1; i <= n; i++) {
    int kept = 0;
    lua_Integer id = 0;
    if (lua_rawgeti(L, 1, i) != LUA_TTABLE) {
      if (nd == 0) {
        lua_createtable(L, 0, 0);
        lua_replace(L, 5);
      }
      lua_pushinteger(L, i);
      lua_rawseti(L, 5, ++nd);
    } else if (!id_of(L, 6, 2, &id)) {
      kept = 1;
    } else if (lua_rawgeti(L, 3, id) == LUA_TNIL) {
      lua_pushboolean(L, 1);
      lua_rawseti(L, 3, id);
      kept = 1;
    }
    lua_settop(L, 5);
    lua_pushboolean(L, kept);
    lua_rawseti(L, 4, i);
    fresh += kept;
  }
  lua_pushvalue(L, 4);
  lua_pushinteger(L, fresh);
  if (nd == 0) return 2;
  lua_pushvalue(L, 5);
  return 3;
}

/* Option fields of match.page's o, read once a page. */
enum { O_ID = 6, O_KEY, O_MAP, O_BROKEN, O_ODD };

/* match.page(page, keep, verdict, o, out) -> matched, odd. For each item i of page that keep
 * passes (keep[i] true; keep nil: every item) and whose verdict[i] is true (the caller's include
 * said yes), in order:
 *   the record's o.id field is nil or an integer >= 1;
 *   o.key: the field of its key: json.hexkey makes one of it;
 *   o.broken (optional): a set of keys not to match;
 *   o.map: the key is in it, as an integer (the value) or a table whose [1] is the value.
 * Such an item is matched: item, key, value and the table (false for an integer) are appended
 * to out, four slots each. Every other kept item (a verdict not true, an id that is no id, no
 * key, a broken key, a key not in the map) is listed in odd, by index, in order, for the
 * caller's Lua; matched counts the items appended. */
static int l_page(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int has_keep = !lua_isnoneornil(L, 2);
  if (has_keep) luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  lua_settop(L, 5);
  luaL_checkstack(L, 16, "match.page");
  lua_getfield(L, 4, "id");  /* O_ID */
  lua_getfield(L, 4, "key"); /* O_KEY */
  if (lua_type(L, O_ID) != LUA_TSTRING || lua_type(L, O_KEY) != LUA_TSTRING)
    return luaL_error(L, "match.page: o.id and o.key must be field names");
  if (lua_getfield(L, 4, "map") != LUA_TTABLE) return luaL_error(L, "match.page: o.map must be a table");
  int bt = lua_getfield(L, 4, "broken"); /* O_BROKEN */
  if (bt != LUA_TNIL && bt != LUA_TTABLE) return luaL_error(L, "match.page: o.broken must be a table");
  int has_broken = bt == LUA_TTABLE;
  lua_createtable(L, 0, 0); /* O_ODD */
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1), w = (lua_Integer)lua_rawlen(L, 5), matched = 0, nodd = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    if (has_keep) {
      lua_rawgeti(L, 2, i);
      int kept = lua_toboolean(L, -1);
      lua_pop(L, 1);
      if (!kept) continue;
    }
    int top = lua_gettop(L), plain = 0;
    lua_rawgeti(L, 3, i);
    int yes = lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1);
    if (yes && lua_rawgeti(L, 1, i) == LUA_TTABLE) {
      int item = lua_gettop(L);
      lua_pushvalue(L, O_ID);
      int t = lua_rawget(L, item), ok_id = t == LUA_TNIL;
      if (t == LUA_TNUMBER) {
        int isint;
        lua_Integer id = lua_tointegerx(L, -1, &isint);
        ok_id = isint && id >= 1;
      }
      lua_pop(L, 1);
      if (ok_id) {
        lua_pushvalue(L, O_KEY);
        lua_rawget(L, item);
        json_hexkey_at(L, lua_gettop(L)); /* the key, or nil */
        int key = lua_gettop(L);
        int fine = lua_type(L, key) == LUA_TSTRING;
        if (fine && has_broken) {
          lua_pushvalue(L, key);
          lua_rawget(L, O_BROKEN);
          fine = !lua_toboolean(L, -1);
          lua_pop(L, 1);
        }
        if (fine) {
          lua_pushvalue(L, key);
          int vt = lua_rawget(L, O_MAP), entry = lua_gettop(L);
          if (vt == LUA_TNUMBER) { /* the value itself; no entry table */
            lua_pushboolean(L, 0);
            lua_insert(L, entry);
            plain = 1;
          } else if (vt == LUA_TTABLE) {
            plain = lua_rawgeti(L, entry, 1) != LUA_TNIL && lua_toboolean(L, -1);
          }
          if (plain) { /* stack: ... value, entry-or-false; append item, key, value, entry */
            int value = lua_gettop(L);
            lua_pushvalue(L, item);
            lua_rawseti(L, 5, ++w);
            lua_pushvalue(L, key);
            lua_rawseti(L, 5, ++w);
            lua_pushvalue(L, value);
            lua_rawseti(L, 5, ++w);
            lua_pushvalue(L, entry);
            lua_rawseti(L, 5, ++w);
            matched++;
          }
        }
      }
    }
    lua_settop(L, top);
    if (!plain) {
      lua_pushinteger(L, i);
      lua_rawseti(L, O_ODD, ++nodd);
    }
  }
  lua_pushinteger(L, matched);
  lua_pushvalue(L, O_ODD);
  return 2;
}

int luaopen_metasync_match(lua_State *L) {
  static const luaL_Reg fns[] = {{"keys", l_keys}, {"page", l_page}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
