/* metasync.unchanged: tells, without running Lua per field, which fields of a pair of records
 * may need something. A field is settled when its source value, looked up the way the plan
 * says, has an answer already remembered for it and the target's current value, and that
 * answer is "no value", or "the same" and the baseline already holds it.
 *
 *   unchanged.pending(plan, src, dst, memo, base[, entry]) -> nil (every field settled)
 *                                                  | {i, ...} (the fields the caller decides)
 * entry true: src is a bulk index entry (lib/metasync/bulk.lua), {sslId, slot values...}, false
 * for a slot without a value; each field then reads slot entry[10] (none: the field is
 * pending), which holds what the field would read from the doc made of that entry.
 *
 * Why native: on a run that changes nothing (the usual nightly run), each field of each
 * certificate cost a dozen Lua calls (the lookups, the remembered decision, the baseline
 * check), most of a run's CPU. A field listed is decided by the caller's own Lua, which is
 * always right, so every case this file does not know (a value that is a table, an answer not
 * remembered yet, such as for a value unique to the certificate, a change, a problem, a table
 * with an __index or __pairs metamethod) is simply listed.
 *
 * plan = { novalue = <the key that stands for "no current value">, map = <dst's key holding the
 * name -> value map>, [i] = entry }, one entry per field:
 *   entry[1] the memo key (memo[entry[1]][source value][current value] = answer)
 *   entry[2] the name looked up in dst[plan.map] (exactly, else the last key equal to it in
 *            lower case), and the key of base compared with the agreed value
 *   entry[3] entry[2] in lower case
 *   entry[4] 1: the source is a dot path into src; entry[5] = {seg, numeric key or false,
 *            seg in lower case, ...}: at each step the key itself, else the numeric key, else
 *            the first key equal to it in lower case
 *            2: the source is the value of the element named entry[5] in the list src[entry[7]]
 *            (a list of {name =, value =}; exactly, else equal in lower case; entry[6] is the
 *            name in lower case)
 *   entry[8], entry[9] (only when the policy converts the stock way, fields.keyfactor_convert):
 *            the rule that settles a value no memo holds, such as an id unique to the
 *            certificate, when it is plainly the current value already (stock_same)
 * An answer is false ("no value"), a string (a problem), {same = v} or {new = v}. A source
 * value that is nil, json.null or only white space is "no value" before any answer is asked.
 * base: the target's baseline (key -> value), or false to skip that check (a dry run).
 * The Lua these lookups mirror: values.dig, values.absent, fields.custom_value,
 * fields.metadata and pair.compare (lib/metasync/). */
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "digest.h"
#include "modules.h"

/* Reads t[key] for the key on top of the stack, replacing it with the value, as Lua would read
 * it: a raw hit is the answer; a raw miss is nil unless a metatable's __index decides, which
 * only Lua can run (0: give up). A Keyfactor item decoded with some keys only has such an
 * __index; decoded JSON arrays carry a metatable without one. */
static int get(lua_State *L, int t) {
  if (lua_rawget(L, t) != LUA_TNIL) return 1;
  /* Lua finds a metamethod by a raw read of the metatable; so does luaL_getmetafield. */
  if (luaL_getmetafield(L, t, "__index") == LUA_TNIL) return 1;
  lua_pop(L, 1);
  return 0;
}

/* A table whose pairs() is lua_next (no __pairs metamethod). */
static int scannable(lua_State *L, int t) {
  if (luaL_getmetafield(L, t, "__pairs") == LUA_TNIL) return 1;
  lua_pop(L, 1);
  return 0;
}

static int same_lower(const char *a, size_t na, const char *b, size_t nb) {
  if (na != nb) return 0;
  for (size_t i = 0; i < na; i++)
    if (tolower((unsigned char)a[i]) != (unsigned char)b[i]) return 0;
  return 1;
}

/* Pushes the value of the first (first = 1) or last string key of the table at t equal,
 * lowered, to low, or nil. 0: the table cannot be scanned here. */
static int scan(lua_State *L, int t, const char *low, size_t nlow, int first) {
  if (!scannable(L, t)) return 0;
  lua_pushnil(L); /* the match */
  int match = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    size_t nk;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tolstring(L, -2, &nk);
      if (same_lower(k, nk, low, nlow)) {
        lua_copy(L, -1, match);
        if (first) {
          lua_settop(L, match);
          return 1;
        }
      }
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* Replaces the top n values with nil, the answer "no value": 1. */
static int none(lua_State *L, int n) {
  lua_pop(L, n);
  lua_pushnil(L);
  return 1;
}

/* Pushes the source value by dot path (values.dig). 0: give up. */
static int dig(lua_State *L, int src, int segs) {
  lua_pushvalue(L, src);
  lua_Integer n = luaL_len(L, segs);
  for (lua_Integer i = 1; i + 2 <= n; i += 3) {
    int cur = lua_gettop(L);
    if (lua_type(L, cur) != LUA_TTABLE) return none(L, 1);
    lua_rawgeti(L, segs, i);
    if (!get(L, cur)) return 0;
    if (lua_isnil(L, -1)) { /* then the numeric key (false when the segment is no number) */
      lua_pop(L, 1);
      if (lua_rawgeti(L, segs, i + 1) == LUA_TBOOLEAN) {
        lua_pop(L, 1);
        lua_pushnil(L);
      } else if (!get(L, cur)) {
        return 0;
      }
    }
    if (lua_isnil(L, -1)) { /* then the first key equal to it in lower case */
      lua_pop(L, 1);
      lua_rawgeti(L, segs, i + 2);
      size_t nlow;
      const char *low = lua_tolstring(L, -1, &nlow);
      if (!low || !scan(L, cur, low, nlow, 1)) return 0;
      lua_remove(L, -2);
    }
    lua_remove(L, cur);
  }
  return 1;
}

/* Pushes the value of the list element named entry[5] (fields.custom_value). 0: give up. */
static int named(lua_State *L, int src, int entry) {
  if (lua_type(L, src) != LUA_TTABLE) return none(L, 0);
  lua_rawgeti(L, entry, 7);
  if (!get(L, src)) return 0;
  int list = lua_gettop(L);
  if (lua_type(L, list) != LUA_TTABLE) return none(L, 1);
  size_t nname, nlow;
  lua_rawgeti(L, entry, 5);
  const char *name = lua_tolstring(L, -1, &nname);
  lua_rawgeti(L, entry, 6);
  const char *low = lua_tolstring(L, -1, &nlow);
  if (!name || !low) return 0;
  for (int pass = 0; pass < 2; pass++) { /* the exact name first, then in lower case */
    for (lua_Integer i = 1;; i++) {
      lua_pushinteger(L, i); /* ipairs reads through __index */
      if (!get(L, list)) return 0;
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        break;
      }
      int cf = lua_gettop(L);
      if (lua_type(L, cf) == LUA_TTABLE) {
        lua_pushliteral(L, "name");
        if (!get(L, cf)) return 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
          size_t nk;
          const char *k = lua_tolstring(L, -1, &nk);
          int hit = pass == 0 ? (nk == nname && memcmp(k, name, nk) == 0) : same_lower(k, nk, low, nlow);
          if (hit) {
            lua_pushliteral(L, "value");
            if (!get(L, cf)) return 0;
            lua_replace(L, list);
            lua_settop(L, list);
            return 1;
          }
        }
      }
      lua_settop(L, cf - 1);
    }
  }
  lua_settop(L, list);
  return none(L, 1);
}

/* Pushes dst[map][name], else the value of the last key equal to it in lower case
 * (fields.metadata). 0: give up. */
static int keyed(lua_State *L, int dst, int mapkey, int entry) {
  if (lua_type(L, dst) != LUA_TTABLE) return none(L, 0);
  lua_pushvalue(L, mapkey);
  if (!get(L, dst)) return 0;
  int md = lua_gettop(L);
  if (lua_type(L, md) != LUA_TTABLE) return none(L, 1);
  lua_rawgeti(L, entry, 2);
  if (!get(L, md)) return 0;
  if (!lua_isnil(L, -1)) {
    lua_remove(L, md);
    return 1;
  }
  lua_pop(L, 1);
  size_t nlow;
  lua_rawgeti(L, entry, 3);
  const char *low = lua_tolstring(L, -1, &nlow);
  if (!low || !scan(L, md, low, nlow, 0)) return 0;
  lua_replace(L, md);
  lua_settop(L, md);
  return 1;
}

static int absent(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return 1;
  case LUA_TLIGHTUSERDATA: return lua_touserdata(L, idx) == NULL; /* json.null */
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    /* values.absent's own first test: a first byte above 32 is something, whatever the
     * locale's isspace() says of it. */
    if (n > 0 && (unsigned char)s[0] > 32) return 0;
    for (size_t i = 0; i < n; i++)
      if (!isspace((unsigned char)s[i])) return 0;
    return 1;
  }
  default: return 0;
  }
}

static int scalar(int t) { return t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN; }

/* An integer as values.to_keyfactor writes it back: digits, a minus sign only before a
 * non-zero number, no leading zero, no white space, no plus; 18 digits at most, so that it
 * surely fits an integer (to_int would otherwise read it as a float). */
static int canonical_int(const char *s, size_t n) {
  size_t i = 0;
  if (n > 0 && s[0] == '-') i = 1;
  if (i == n || n - i > 18) return 0;
  if (s[i] == '0') return n == 1;
  for (; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

/* The stock conversion (fields.keyfactor_convert) of a source value, where its answer is
 * plainly the current value: pushes that value (the answer {same = it}) and returns 1, else
 * returns 0 and the memo or the Lua decides. Only what needs no parsing is answered here: a
 * text that fits, an option named exactly, an integer written the way Keyfactor's copy
 * is. entry[8] is the rule (1 text, entry[9] its length limit or false; 2 integer; 3 one
 * of the options, entry[9] the set of them). */
static int stock_same(lua_State *L, int entry, int raw, int old) {
  if (lua_type(L, old) != LUA_TSTRING) return 0;
  if (lua_rawgeti(L, entry, 8) != LUA_TNUMBER) {
    lua_pop(L, 1);
    return 0;
  }
  int rule = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  size_t nold;
  const char *o = lua_tolstring(L, old, &nold);
  if (rule == 2 && lua_type(L, raw) == LUA_TNUMBER) {
    int isint;
    lua_Integer v = lua_tointegerx(L, raw, &isint); /* math.tointeger: a float only if exact */
    if (!isint || !canonical_int(o, nold)) return 0;
    /* old is v written the way to_keyfactor writes it exactly when it is canonical and reads
     * as v; comparing numbers makes no string per certificate (18 digits always fit) */
    lua_Integer w = 0;
    size_t i = o[0] == '-';
    for (size_t k = i; k < nold; k++) w = w * 10 + (o[k] - '0');
    if (i) w = -w;
    if (w != v) return 0;
    lua_pushvalue(L, old);
    return 1;
  }
  if (lua_type(L, raw) != LUA_TSTRING || !lua_rawequal(L, raw, old)) return 0;
  if (rule == 2) {
    if (!canonical_int(o, nold)) return 0;
  } else if (rule == 1) {
    lua_rawgeti(L, entry, 9);
    int isnum;
    lua_Integer max = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (isnum && (lua_Integer)nold > max) return 0;
  } else if (rule == 3) {
    lua_rawgeti(L, entry, 9);
    if (lua_type(L, -1) != LUA_TTABLE) {
      lua_pop(L, 1);
      return 0;
    }
    lua_pushvalue(L, raw);
    int hit = lua_rawget(L, -2) == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_pop(L, 2);
    if (!hit) return 0;
  } else {
    return 0;
  }
  lua_pushvalue(L, raw);
  return 1;
}

/* A pair's digest in the making (settle_digest): the XOR of its agreed pairs' hashes. */
typedef struct {
  uint64_t key, acc;
} Digest;

/* The baseline's check of an agreed value on top of the stack: 1 when base (if any) holds it
 * under entry[2]. With dg, the pair (entry[2], value) goes into the digest instead, which the
 * caller compares with the baseline's once every field is in. */
static int in_base(lua_State *L, int entry, int base, Digest *dg) {
  if (dg) {
    size_t nn, nv;
    if (lua_type(L, -1) != LUA_TSTRING || lua_rawgeti(L, entry, 2) != LUA_TSTRING) return 0;
    const char *name = lua_tolstring(L, -1, &nn), *value = lua_tolstring(L, -2, &nv);
    dg->acc ^= digest_pair(dg->key, name, nn, value, nv);
    return 1;
  }
  if (!base) return 1;
  lua_rawgeti(L, entry, 2);
  if (!get(L, base)) return 0;
  return lua_rawequal(L, -1, -2);
}

/* One field: 1 = settled (no value, or the same and already the baseline), 0 = pending. */
static int field(lua_State *L, int entry, int novalue, int mapkey, int src, int dst, int memo, int base,
                 int from_entry, Digest *dg) {
  int top = lua_gettop(L);
  int ok;
  lua_rawgeti(L, entry, 4);
  int kind = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (from_entry) {
    int isnum;
    lua_rawgeti(L, entry, 10);
    lua_Integer slot = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || slot < 1 || slot >= LUA_MAXINTEGER || lua_type(L, src) != LUA_TTABLE) return 0;
    if (lua_rawgeti(L, src, slot + 1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
    ok = 1;
  } else if (kind == 1) {
    lua_rawgeti(L, entry, 5);
    if (lua_type(L, -1) != LUA_TTABLE) return 0;
    ok = dig(L, src, top + 1);
  } else if (kind == 2) {
    ok = named(L, src, entry);
  } else {
    return 0;
  }
  if (!ok) return 0;
  int raw = lua_gettop(L);
  /* The current value is read even for an absent source value, as the Lua reads it (a read
   * that would raise there must leave the field to it). */
  if (!keyed(L, dst, mapkey, entry)) return 0;
  int old = lua_gettop(L);
  if (absent(L, raw)) return 1;
  if (!scalar(lua_type(L, raw))) return 0;
  if (!lua_isnil(L, old) && !scalar(lua_type(L, old))) return 0;
  /* Unique values (an id, a date) are never remembered: the stock rule settles those. */
  if (stock_same(L, entry, raw, old)) return in_base(L, entry, base, dg);
  lua_rawgeti(L, entry, 1);
  if (lua_rawget(L, memo) != LUA_TTABLE) return 0; /* memo[f] */
  lua_pushvalue(L, raw);
  if (lua_rawget(L, -2) != LUA_TTABLE) return 0; /* [raw] */
  lua_pushvalue(L, lua_isnil(L, old) ? novalue : old);
  int t = lua_rawget(L, -2); /* [old] */
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) return 1; /* no value after conversion */
  if (t != LUA_TTABLE) return 0;
  lua_pushliteral(L, "same");
  if (lua_rawget(L, -2) != LUA_TSTRING) return 0; /* a change, or a value text() would convert */
  return in_base(L, entry, base, dg);
}

static int l_pending(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  int base = 0;
  if (lua_type(L, 5) == LUA_TTABLE) {
    base = 5;
  } else if (!(lua_type(L, 5) == LUA_TBOOLEAN && !lua_toboolean(L, 5))) {
    return luaL_argerror(L, 5, "expected the baseline table or false");
  }
  int from_entry = lua_toboolean(L, 6);
  lua_settop(L, 5);
  luaL_checkstack(L, 40, "metasync.unchanged");
  lua_getfield(L, 1, "novalue"); /* 6 */
  lua_getfield(L, 1, "map");     /* 7 */
  lua_pushnil(L);                /* 8: the pending list, made at the first field left */
  lua_Integer n = luaL_len(L, 1), left = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    int settled = 0;
    if (lua_rawgeti(L, 1, i) == LUA_TTABLE) settled = field(L, 9, 6, 7, 2, 3, 4, base, from_entry, NULL);
    lua_settop(L, 8);
    if (!settled) {
      if (lua_isnil(L, 8)) {
        lua_createtable(L, 4, 0);
        lua_replace(L, 8);
      }
      lua_pushinteger(L, i);
      lua_rawseti(L, 8, ++left);
    }
  }
  return 1;
}

/* unchanged.settle(plan, b, from, to, memo, bases[, touched]) -> n: pending() for a batch of
 * pairs from a bulk index, answering only "every field settled?". b holds four slots a pair
 * (the target record, its key, the source's id, its entry or false); from and to bound the
 * slots read. A pair with an entry, a key whose baseline is in bases (a table: the baselines
 * read ahead for the batch), and every field settled is done: b[i] (its record) becomes false
 * and its baseline leaves bases; touched (a list), if given, gets its key. n counts those.
 * Every other pair is left as it was, for the caller's Lua. Why: on a run that changes
 * nothing, the Lua calls around pending() for each pair (the baseline's lookup, the plan
 * check, the call) were the largest share of the CPU left.
 *
 * unchanged.settle_digest(plan, b, from, to, memo, digests, key) -> n: the same, where what a
 * pair's baseline holds is known only by its digest (engine/digest.h under key, an integer):
 * digests[pair's key] = the digest of its baseline's pairs for the plan's names. A pair is
 * done when every field is settled and the digest of its agreed (name, value) pairs is that
 * one. Why: reading a pair's baseline rows (about eight, in a table far larger than SQLite's
 * cache) was a fifth of a no-op run; the digests are one small row each, all read at once. */
static int settle(lua_State *L, int with_digest) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer from = luaL_checkinteger(L, 3), to = luaL_checkinteger(L, 4);
  luaL_checktype(L, 5, LUA_TTABLE);
  luaL_checktype(L, 6, LUA_TTABLE);
  luaL_argcheck(L, from >= 1 && to <= LUA_MAXINTEGER - 4, 3, "slots out of range");
  Digest dg = {0, 0};
  int touched = 0;
  if (with_digest) {
    dg.key = (uint64_t)luaL_checkinteger(L, 7);
  } else if (!lua_isnoneornil(L, 7)) {
    luaL_checktype(L, 7, LUA_TTABLE);
    touched = 7;
  }
  lua_settop(L, 7);
  luaL_checkstack(L, 40, "metasync.unchanged");
  lua_getfield(L, 1, "novalue"); /* 8 */
  lua_getfield(L, 1, "map");     /* 9 */
  lua_Integer n = luaL_len(L, 1), done = 0, ntouched = touched ? luaL_len(L, touched) : 0;
  for (lua_Integer i = from; i <= to; i += 4) {
    int all = lua_rawgeti(L, 2, i) == LUA_TTABLE;               /* 10: the record */
    all = lua_rawgeti(L, 2, i + 1) == LUA_TSTRING && all;        /* 11: its key */
    all = lua_rawgeti(L, 2, i + 3) == LUA_TTABLE && all;         /* 12: the entry */
    lua_pushvalue(L, 11);
    /* 13: the baseline, or its digest */
    all = lua_rawget(L, 6) == (with_digest ? LUA_TNUMBER : LUA_TTABLE) && all;
    int isint = 1;
    uint64_t want = with_digest ? (uint64_t)lua_tointegerx(L, 13, &isint) : 0;
    all = all && isint;
    dg.acc = 0;
    for (lua_Integer f = 1; all && f <= n; f++) {
      all = lua_rawgeti(L, 1, f) == LUA_TTABLE &&
            field(L, 14, 8, 9, 12, 10, 5, with_digest ? 0 : 13, 1, with_digest ? &dg : NULL);
      lua_settop(L, 13);
    }
    if (all && with_digest) all = dg.acc == want;
    if (all) {
      lua_pushboolean(L, 0);
      lua_rawseti(L, 2, i);
      lua_pushvalue(L, 11);
      lua_pushnil(L);
      lua_rawset(L, 6);
      if (touched) {
        lua_pushvalue(L, 11);
        lua_rawseti(L, touched, ++ntouched);
      }
      done++;
    }
    lua_settop(L, 9);
  }
  lua_pushinteger(L, done);
  return 1;
}

static int l_settle(lua_State *L) { return settle(L, 0); }
static int l_settle_digest(lua_State *L) { return settle(L, 1); }

int luaopen_metasync_unchanged(lua_State *L) {
  static const luaL_Reg funcs[] = {{"pending", l_pending}, {"settle", l_settle},
                                     {"settle_digest", l_settle_digest}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
