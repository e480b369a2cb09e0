/* metasync.json: JSON for Lua with real integers, an array mark and the cjson null sentinel.
 *
 * This file holds the encoder, the array mark and the module table; the decoder (and why it is
 * not lua-cjson's) is in json_decode.c. json.null is cjson.null (a NULL lightuserdata), so values
 * pass freely between the two.
 */
#include "modules.h"
#include "json_internal.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_ARRAY_MT "metasync.json.array"
#define JSON_MAX_INDENT 16

/* ---------------------------------------------------------------- encoding */

/* Where the encoder is, for error messages: one step per open table. Key strings stay anchored
 * by the tables being encoded. */
typedef struct {
  enum { STEP_INDEX, STEP_STRING, STEP_INTKEY } kind;
  const char *s;
  size_t len;
  lua_Integer i;
} Step;

typedef struct {
  lua_State *L;
  char *b;               /* lives in the userdata at bufidx, so an error unwinding cannot leak it */
  size_t len, cap;
  int bufidx, visitidx, mtidx;
  int pretty, sort, indent, depth;
  Step path[JSON_MAX_DEPTH];
} Encoder;

static int is_ident(const char *s, size_t n) {
  if (n == 0 || n > 64 || (*s >= '0' && *s <= '9')) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

/* Raises "<message> (at $.path[2].to.value)". */
static int enc_error(Encoder *e, const char *fmt, ...) {
  lua_State *L = e->L;
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  if (e->depth == 0) return lua_error(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, msg);
  luaL_addstring(&b, " (at $");
  for (int d = 0; d < e->depth; d++) {
    const Step *st = &e->path[d];
    char num[40];
    if (st->kind == STEP_STRING && is_ident(st->s, st->len)) {
      luaL_addchar(&b, '.');
      luaL_addlstring(&b, st->s, st->len);
    } else if (st->kind == STEP_STRING) {
      luaL_addstring(&b, "[\"");
      luaL_addlstring(&b, st->s, st->len > 40 ? 40 : st->len);
      luaL_addstring(&b, st->len > 40 ? "...\"]" : "\"]");
    } else {
      snprintf(num, sizeof num, st->kind == STEP_INDEX ? "[" LUA_INTEGER_FMT "]"
                                                       : "[\"" LUA_INTEGER_FMT "\"]",
               (LUAI_UACINT)st->i);
      luaL_addstring(&b, num);
    }
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return lua_error(L);
}

static void enc_reserve(Encoder *e, size_t need) {
  if (e->cap - e->len >= need) return;
  size_t ncap = e->cap;
  while (ncap - e->len < need) {
    if (ncap > ((size_t)-1) / 2) enc_error(e, "cannot encode: output too large");
    ncap *= 2;
  }
  char *nb = lua_newuserdatauv(e->L, ncap, 0);
  memcpy(nb, e->b, e->len);
  lua_replace(e->L, e->bufidx);
  e->b = nb;
  e->cap = ncap;
}

static void enc_add(Encoder *e, const char *s, size_t n) {
  enc_reserve(e, n);
  memcpy(e->b + e->len, s, n);
  e->len += n;
}

static void enc_char(Encoder *e, char c) {
  enc_reserve(e, 1);
  e->b[e->len++] = c;
}

static void enc_newline(Encoder *e, int depth) {
  if (!e->pretty) return;
  size_t n = (size_t)depth * (size_t)e->indent;
  enc_reserve(e, n + 1);
  e->b[e->len++] = '\n';
  memset(e->b + e->len, ' ', n);
  e->len += n;
}

static void enc_string(Encoder *e, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  enc_reserve(e, n + 2);
  e->b[e->len++] = '"';
  const char *run = s, *end = s + n;
  for (const char *q = s; q < end; q++) {
    unsigned char c = (unsigned char)*q;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    enc_add(e, run, (size_t)(q - run));
    run = q + 1;
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t elen = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
      esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
      elen = 6;
    }
    enc_add(e, esc, elen);
  }
  enc_add(e, run, (size_t)(end - run));
  enc_char(e, '"');
}

static void enc_integer(Encoder *e, lua_Integer i) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)i);
  enc_add(e, buf, (size_t)n);
}

/* Shortest of %.15g/%.16g/%.17g that reads back as the same double. */
static void enc_float(Encoder *e, lua_Number x) {
  if (isnan(x) || isinf(x)) enc_error(e, "cannot encode NaN or infinity as JSON");
  char buf[40];
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
    if (strtod(buf, NULL) == (double)x) break;
  }
  for (int i = 0; i < n; i++)
    if (buf[i] == ',') buf[i] = '.'; /* a non-C numeric locale */
  enc_add(e, buf, (size_t)n);
}

typedef struct {
  const char *s;
  size_t len;
  lua_Integer i;
  int isint;
} Key;

static int key_cmp(const void *a, const void *b) {
  const Key *x = a, *y = b;
  if (x->isint) return (x->i > y->i) - (x->i < y->i);
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c) return c;
  return (x->len > y->len) - (x->len < y->len);
}

static void encode_value(Encoder *e);

static int has_array_mark(lua_State *L, int t, int mtidx) {
  if (!lua_getmetatable(L, t)) return 0;
  int r = lua_rawequal(L, -1, mtidx);
  lua_pop(L, 1);
  return r;
}

static void encode_table(Encoder *e) {
  lua_State *L = e->L;
  int t = lua_gettop(L);
  if (e->depth >= JSON_MAX_DEPTH)
    enc_error(e, "cannot encode: nesting deeper than %d levels", JSON_MAX_DEPTH);
  luaL_checkstack(L, 8, "cannot encode: nesting too deep");
  lua_pushvalue(L, t);
  if (lua_rawget(L, e->visitidx) != LUA_TNIL)
    enc_error(e, "cannot encode: table contains a reference cycle");
  lua_pop(L, 1);

  /* classify the keys in one pass */
  lua_Integer nkeys = 0, nint = 0, maxk = 0;
  int nonpos = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    nkeys++;
    if (lua_type(L, -1) == LUA_TSTRING) continue;
    if (lua_isinteger(L, -1)) {
      lua_Integer k = lua_tointeger(L, -1);
      nint++;
      if (k < 1) nonpos = 1;
      else if (k > maxk) maxk = k;
      continue;
    }
    enc_error(e, "cannot encode table with key of type %s%s", luaL_typename(L, -1),
               lua_type(L, -1) == LUA_TNUMBER ? " (not an integer)" : "");
  }
  if (nint && nint != nkeys) enc_error(e, "cannot encode table with mixed string and integer keys");
  int isseq = nkeys > 0 && nint == nkeys && !nonpos && maxk == nkeys;
  int isarray = isseq;
  if (has_array_mark(L, t, e->mtidx)) {
    if (nkeys && !isseq)
      enc_error(e, "cannot encode array with %s", nint == nkeys ? "holes (use json.null)"
                                                               : "string keys");
    isarray = 1;
  }

  lua_pushvalue(L, t);
  lua_pushboolean(L, 1);
  lua_rawset(L, e->visitidx);
  e->depth++;
  if (isarray) {
    enc_char(e, '[');
    for (lua_Integer i = 1; i <= nkeys; i++) {
      if (i > 1) enc_char(e, ',');
      enc_newline(e, e->depth);
      e->path[e->depth - 1] = (Step){.kind = STEP_INDEX, .i = i};
      lua_rawgeti(L, t, i);
      encode_value(e);
      lua_pop(L, 1);
    }
    if (nkeys) enc_newline(e, e->depth - 1);
    enc_char(e, ']');
  } else {
    /* collect the keys (anchored by t itself, which nothing changes meanwhile) */
    if ((size_t)nkeys > ((size_t)-1) / sizeof(Key)) enc_error(e, "cannot encode: table too large");
    Key *keys = lua_newuserdatauv(L, (size_t)nkeys * sizeof(Key) + 1, 0);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
      lua_pop(L, 1);
      Key *k = &keys[n++];
      k->isint = lua_type(L, -1) != LUA_TSTRING;
      if (k->isint) k->i = lua_tointeger(L, -1);
      else k->s = lua_tolstring(L, -1, &k->len);
    }
    if (e->sort) qsort(keys, (size_t)n, sizeof(Key), key_cmp);
    enc_char(e, '{');
    for (lua_Integer i = 0; i < n; i++) {
      if (i) enc_char(e, ',');
      enc_newline(e, e->depth);
      Step *st = &e->path[e->depth - 1];
      if (keys[i].isint) {
        *st = (Step){.kind = STEP_INTKEY, .i = keys[i].i};
        enc_char(e, '"');
        enc_integer(e, keys[i].i);
        enc_char(e, '"');
        lua_pushinteger(L, keys[i].i);
      } else {
        *st = (Step){.kind = STEP_STRING, .s = keys[i].s, .len = keys[i].len};
        enc_string(e, keys[i].s, keys[i].len);
        lua_pushlstring(L, keys[i].s, keys[i].len);
      }
      enc_add(e, e->pretty ? ": " : ":", e->pretty ? 2 : 1);
      lua_rawget(L, t);
      encode_value(e);
      lua_pop(L, 1);
    }
    if (n) enc_newline(e, e->depth - 1);
    enc_char(e, '}');
    lua_pop(L, 1); /* keys */
  }
  e->depth--;
  lua_pushvalue(L, t);
  lua_pushnil(L);
  lua_rawset(L, e->visitidx);
}

/* Encodes the value on top of the stack, leaving the stack as it was. */
static void encode_value(Encoder *e) {
  lua_State *L = e->L;
  switch (lua_type(L, -1)) {
  case LUA_TNIL: enc_add(e, "null", 4); break;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, -1)) enc_add(e, "true", 4);
    else enc_add(e, "false", 5);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1)) enc_integer(e, lua_tointeger(L, -1));
    else enc_float(e, lua_tonumber(L, -1));
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    enc_string(e, s, n);
    break;
  }
  case LUA_TTABLE: encode_table(e); break;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, -1) == NULL) {
      enc_add(e, "null", 4);
      break;
    }
    /* fall through */
  default:
    enc_error(e, "cannot encode value of type %s", luaL_typename(L, -1));
  }
}

static int opt_bool(lua_State *L, int opts, const char *name, int def) {
  int r = def;
  if (lua_getfield(L, opts, name) != LUA_TNIL) {
    if (!lua_isboolean(L, -1))
      return luaL_argerror(L, 2, lua_pushfstring(L, "option '%s' must be a boolean", name));
    r = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return r;
}

/* json.encode(v [, {pretty=bool, indent=n, sort_keys=bool}]) -> string (raises when v cannot be
 * JSON: functions, cycles, NaN, nesting beyond 200) */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  Encoder e = {.L = L, .indent = 2, .mtidx = lua_upvalueindex(1)};
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    e.pretty = opt_bool(L, 2, "pretty", 0);
    e.sort = opt_bool(L, 2, "sort_keys", e.pretty);
    if (lua_getfield(L, 2, "indent") != LUA_TNIL) {
      int isnum;
      lua_Integer n = lua_tointegerx(L, -1, &isnum);
      luaL_argcheck(L, isnum && n >= 0 && n <= JSON_MAX_INDENT, 2,
                    "option 'indent' must be an integer from 0 to 16");
      e.indent = (int)n;
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  e.cap = 256;
  e.b = lua_newuserdatauv(L, e.cap, 0);
  e.bufidx = lua_gettop(L);
  lua_newtable(L);
  e.visitidx = lua_gettop(L);
  lua_pushvalue(L, 1);
  encode_value(&e);
  lua_pushlstring(L, e.b, e.len);
  return 1;
}

/* ---------------------------------------------------------------- marking */

/* json.array([t]) -> t, marked so that it always encodes as a JSON array */
static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  if (lua_getmetatable(L, 1)) {
    if (!lua_rawequal(L, -1, lua_upvalueindex(1)))
      return luaL_argerror(L, 1, "table already has a metatable");
    lua_pop(L, 1);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

/* json.is_array(v) -> boolean */
static int l_is_array(lua_State *L) {
  lua_pushboolean(L, lua_type(L, 1) == LUA_TTABLE && has_array_mark(L, 1, lua_upvalueindex(1)));
  return 1;
}

int luaopen_metasync_json(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"decode", json_decode}, {"encode", l_encode}, {"array", l_array},
      {"is_array", l_is_array}, {"rows", json_rows}, {"hexkey", json_hexkey}, {NULL, NULL}};
  lua_newtable(L);
  /* shared by every array decoded or marked, so marking costs one pointer per table */
  luaL_newmetatable(L, JSON_ARRAY_MT);
  luaL_setfuncs(L, funcs, 1);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
