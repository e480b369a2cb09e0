/* metasync.re: PCRE2 regular expressions for Lua (8-bit, UTF-8 mode, JIT where available).
 *
 * Choices worth knowing:
 *  - Patterns compile with PCRE2_UTF but not PCRE2_UCP: \d, \w and \s stay ASCII, so a pattern
 *    meant for serials or ids does not start matching other scripts' digits. Caseless matching
 *    still folds non-ASCII letters.
 *  - A subject that is not valid UTF-8 is an expected failure: the call returns nil and PCRE2's
 *    message ("offset N: UTF-8 error: ..."). gmatch has no second result to carry it, so its
 *    iterator raises. Within one gsub or gmatch the subject is checked once, by the first match;
 *    later matches pass PCRE2_NO_UTF_CHECK, otherwise every match would rescan the whole subject.
 *  - A match limit stops catastrophic backtracking: such a call returns nil, "match limit
 *    exceeded" instead of hanging. If the JIT runs out of its stack the match is retried by the
 *    interpreter, which is bounded by the heap limit instead.
 *  - Each compiled pattern owns its match data, reused by every call; results are read out of it
 *    before any Lua code (a gsub callback) can run and match with the same pattern again.
 *  - Unset groups come back as false (captures must keep their positions).
 *  - The module-level functions raise on a bad pattern (a silent nil would read as "no match");
 *    re.compile returns nil, message so that patterns from configuration can be validated.
 */
#include "modules.h"

#include <lauxlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define RE_MT "metasync.re"
#define RE_MATCH_LIMIT 10000000u
#define NO_POS ((size_t)-1)

typedef struct {
  pcre2_code *code;
  pcre2_match_data *md;
  pcre2_match_context *mctx;
  uint32_t ncap;
} Regex;

/* User values of a Regex userdata. */
enum { UV_PATTERN = 1, UV_NAMES = 2 };

static Regex *check_regex(lua_State *L, int idx) {
  Regex *rx = luaL_checkudata(L, idx, RE_MT);
  if (!rx->code) luaL_error(L, "attempt to use a closed pattern");
  return rx;
}

static void regex_free(Regex *rx) {
  pcre2_match_data_free(rx->md);
  pcre2_match_context_free(rx->mctx);
  pcre2_code_free(rx->code);
  rx->md = NULL;
  rx->mctx = NULL;
  rx->code = NULL;
}

static uint32_t parse_flags(lua_State *L, int arg) {
  const char *f = luaL_optstring(L, arg, "");
  uint32_t opts = PCRE2_UTF;
  for (; *f; f++) {
    switch (*f) {
    case 'i': opts |= PCRE2_CASELESS; break;
    case 'm': opts |= PCRE2_MULTILINE; break;
    case 's': opts |= PCRE2_DOTALL; break;
    case 'x': opts |= PCRE2_EXTENDED; break;
    default:
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown flag '%c' (expected i, m, s or x)", *f));
    }
  }
  return opts;
}

/* Maps each group name to its number, so exec can fill caps.name. */
static void push_names(lua_State *L, const pcre2_code *code) {
  uint32_t count = 0, entry = 0;
  PCRE2_SPTR table = NULL;
  pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &count);
  if (count == 0) {
    lua_pushnil(L);
    return;
  }
  pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &entry);
  pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &table);
  lua_createtable(L, 0, (int)count);
  for (uint32_t i = 0; i < count; i++) {
    PCRE2_SPTR e = table + (size_t)i * entry;
    lua_pushinteger(L, (e[0] << 8) | e[1]); /* the group number, big-endian */
    lua_setfield(L, -2, (const char *)e + 2);
  }
}

/* Pushes a compiled pattern, or nil and "offset N: message" (returning 0). */
static int push_compiled(lua_State *L, const char *pat, size_t len, uint32_t opts) {
  int errcode;
  PCRE2_SIZE erroff;
  Regex *rx = lua_newuserdatauv(L, sizeof *rx, 2);
  memset(rx, 0, sizeof *rx);
  luaL_setmetatable(L, RE_MT); /* from here on __gc frees whatever got allocated */
  rx->code = pcre2_compile((PCRE2_SPTR)pat, len, opts, &errcode, &erroff, NULL);
  if (!rx->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(errcode, msg, sizeof msg);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushfstring(L, "offset %I: %s", (lua_Integer)erroff, (const char *)msg);
    return 0;
  }
  pcre2_jit_compile(rx->code, PCRE2_JIT_COMPLETE); /* without JIT the interpreter runs it */
  rx->md = pcre2_match_data_create_from_pattern(rx->code, NULL);
  rx->mctx = pcre2_match_context_create(NULL);
  if (!rx->md || !rx->mctx) return luaL_error(L, "not enough memory");
  pcre2_set_match_limit(rx->mctx, RE_MATCH_LIMIT);
  pcre2_pattern_info(rx->code, PCRE2_INFO_CAPTURECOUNT, &rx->ncap);
  lua_pushlstring(L, pat, len);
  lua_setiuservalue(L, -2, UV_PATTERN);
  push_names(L, rx->code);
  lua_setiuservalue(L, -2, UV_NAMES);
  return 1;
}

/* Runs one match. Returns 1 (match: offsets in rx->md), 0 (no match) or -1 with the message
 * pushed. */
static int run(lua_State *L, Regex *rx, const char *s, size_t len, size_t start, uint32_t opts) {
  int rc = pcre2_match(rx->code, (PCRE2_SPTR)s, len, start, opts, rx->md, rx->mctx);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
    rc = pcre2_match(rx->code, (PCRE2_SPTR)s, len, start, opts | PCRE2_NO_JIT, rx->md, rx->mctx);
  if (rc >= 0) return 1; /* 0 would mean a short ovector, impossible when sized from the pattern */
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
      rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    lua_pushliteral(L, "match limit exceeded");
    return -1;
  }
  PCRE2_UCHAR msg[256];
  pcre2_get_error_message(rc, msg, sizeof msg);
  if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21)
    lua_pushfstring(L, "offset %I: %s", (lua_Integer)pcre2_get_startchar(rx->md),
                    (const char *)msg);
  else
    lua_pushstring(L, (const char *)msg);
  return -1;
}

/* The next match for gmatch/gsub at or after pos. An empty match exactly where the previous match
 * ended (last) is not taken: a non-empty match there, or any match further on, is looked for
 * instead, which is how the iteration moves past empty matches. Sets PCRE2_NO_UTF_CHECK in *opts
 * once the subject has been validated. */
static int next_match(lua_State *L, Regex *rx, const char *s, size_t len, size_t pos, size_t last,
                      uint32_t *opts) {
  int rc = run(L, rx, s, len, pos, *opts);
  if (rc < 0) return rc;
  *opts |= PCRE2_NO_UTF_CHECK;
  if (rc == 1) {
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rx->md);
    if (ov[0] == ov[1] && ov[0] == last)
      rc = run(L, rx, s, len, pos, *opts | PCRE2_NOTEMPTY_ATSTART);
  }
  return rc;
}

/* 1-based init, negative from the end, as string.find; NO_POS when past the end. */
static size_t get_init(lua_State *L, int arg, size_t len) {
  lua_Integer i = luaL_optinteger(L, arg, 1);
  if (i > 0) return (lua_Unsigned)i - 1 > len ? NO_POS : (size_t)i - 1;
  if (i == 0 || (lua_Unsigned)-(i + 1) >= len) return 0; /* -(i+1) cannot overflow */
  return len - (size_t)-(i + 1) - 1;
}

static void push_group(lua_State *L, Regex *rx, const char *s, uint32_t g) {
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rx->md);
  if (ov[2 * g] == PCRE2_UNSET) lua_pushboolean(L, 0);
  else lua_pushlstring(L, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
}

/* Pushes the groups of the last match, or the whole match when there are none and `whole`. */
static int push_captures(lua_State *L, Regex *rx, const char *s, int whole) {
  if (rx->ncap == 0) {
    if (!whole) return 0;
    push_group(L, rx, s, 0);
    return 1;
  }
  luaL_checkstack(L, (int)rx->ncap, "too many captures");
  for (uint32_t g = 1; g <= rx->ncap; g++) push_group(L, rx, s, g);
  return (int)rx->ncap;
}

enum { MODE_MATCH, MODE_FIND, MODE_EXEC };

static int match_common(lua_State *L, int rxidx, int sarg, int iarg, int mode) {
  Regex *rx = check_regex(L, rxidx);
  size_t len;
  const char *s = luaL_checklstring(L, sarg, &len);
  size_t start = get_init(L, iarg, len);
  if (start == NO_POS) {
    lua_pushnil(L);
    return 1;
  }
  int rc = run(L, rx, s, len, start, 0);
  if (rc <= 0) {
    lua_pushnil(L);
    if (rc == 0) return 1;
    lua_insert(L, -2);
    return 2;
  }
  if (mode == MODE_MATCH) return push_captures(L, rx, s, 1);
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rx->md);
  luaL_checkstack(L, 3, NULL);
  lua_pushinteger(L, (lua_Integer)ov[0] + 1);
  lua_pushinteger(L, (lua_Integer)ov[1]);
  if (mode == MODE_FIND) return 2 + push_captures(L, rx, s, 0);
  lua_createtable(L, (int)rx->ncap, 0);
  for (uint32_t g = 1; g <= rx->ncap; g++) {
    push_group(L, rx, s, g);
    lua_rawseti(L, -2, g);
  }
  if (lua_getiuservalue(L, rxidx, UV_NAMES) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) { /* name -> number */
      lua_rawget(L, -4);      /* caps[number] */
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -5);      /* caps[name] = caps[number] */
    }
  }
  lua_pop(L, 1);
  return 3;
}

static int gmatch_iter(lua_State *L) {
  Regex *rx = check_regex(L, lua_upvalueindex(1));
  size_t len;
  const char *s = lua_tolstring(L, lua_upvalueindex(2), &len);
  lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));
  lua_Integer last = lua_tointeger(L, lua_upvalueindex(4));
  uint32_t opts = (uint32_t)lua_tointeger(L, lua_upvalueindex(5));
  if (pos < 0 || (size_t)pos > len) return 0;
  int rc = next_match(L, rx, s, len, (size_t)pos, last < 0 ? NO_POS : (size_t)last, &opts);
  if (rc < 0) return lua_error(L);
  if (rc == 0) {
    lua_pushinteger(L, -1); /* finished: stay finished */
    lua_replace(L, lua_upvalueindex(3));
    return 0;
  }
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rx->md);
  lua_pushinteger(L, (lua_Integer)ov[1]);
  lua_pushvalue(L, -1);
  lua_replace(L, lua_upvalueindex(3));
  lua_replace(L, lua_upvalueindex(4));
  lua_pushinteger(L, opts);
  lua_replace(L, lua_upvalueindex(5));
  return push_captures(L, rx, s, 1);
}

static int gmatch_common(lua_State *L, int rxidx, int sarg, int iarg) {
  check_regex(L, rxidx);
  size_t len;
  luaL_checklstring(L, sarg, &len);
  size_t start = iarg ? get_init(L, iarg, len) : 0;
  lua_pushvalue(L, rxidx);
  lua_pushvalue(L, sarg);
  lua_pushinteger(L, start == NO_POS ? -1 : (lua_Integer)start);
  lua_pushinteger(L, -1);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, gmatch_iter, 5);
  return 1;
}

/* Appends the expansion of a replacement string: %0 whole match, %1..%9 groups, %% a '%'. */
static void add_template(lua_State *L, luaL_Buffer *b, Regex *rx, const char *s, const char *r,
                         size_t rlen) {
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rx->md);
  const char *end = r + rlen;
  while (r < end) {
    const char *pct = memchr(r, '%', (size_t)(end - r));
    if (!pct) {
      luaL_addlstring(b, r, (size_t)(end - r));
      return;
    }
    luaL_addlstring(b, r, (size_t)(pct - r));
    r = pct + 1;
    if (r < end && *r == '%') {
      luaL_addchar(b, '%');
    } else if (r < end && *r >= '0' && *r <= '9') {
      uint32_t g = (uint32_t)(*r - '0');
      if (g == 1 && rx->ncap == 0) g = 0; /* as string.gsub: %1 is the whole match then */
      if (g > rx->ncap) luaL_error(L, "invalid capture index %%%d in replacement string", (int)g);
      if (ov[2 * g] != PCRE2_UNSET) luaL_addlstring(b, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
    } else {
      luaL_error(L, "invalid use of '%%' in replacement string");
    }
    r++;
  }
}

/* Appends the replacement for the match [ms, me) of s. */
static void add_replacement(lua_State *L, luaL_Buffer *b, Regex *rx, const char *s, size_t ms,
                            size_t me, int rarg) {
  switch (lua_type(L, rarg)) {
  case LUA_TSTRING: {
    size_t rlen;
    const char *r = lua_tolstring(L, rarg, &rlen);
    add_template(L, b, rx, s, r, rlen);
    return;
  }
  case LUA_TTABLE:
    push_group(L, rx, s, rx->ncap ? 1 : 0);
    lua_gettable(L, rarg);
    break;
  default: { /* function; only the saved ms/me are used afterwards, it may match with rx again */
    luaL_checkstack(L, 2, NULL);
    lua_pushvalue(L, rarg);
    int n = push_captures(L, rx, s, 1);
    lua_call(L, n, 1);
    break;
  }
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s + ms, me - ms); /* false or nil keeps the original text */
  } else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
    luaL_addvalue(b);
  } else {
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  }
}

static int gsub_common(lua_State *L, int rxidx, int sarg, int rarg, int narg) {
  Regex *rx = check_regex(L, rxidx);
  size_t len;
  const char *s = luaL_checklstring(L, sarg, &len);
  int rt = lua_type(L, rarg);
  luaL_argexpected(L, rt == LUA_TNUMBER || rt == LUA_TSTRING || rt == LUA_TFUNCTION ||
                   rt == LUA_TTABLE, rarg, "string/function/table");
  if (rt == LUA_TNUMBER) lua_tolstring(L, rarg, NULL); /* use it as a string from now on */
  lua_Integer maxn = luaL_optinteger(L, narg, LUA_MAXINTEGER);
  size_t pos = 0, copied = 0, last = NO_POS;
  uint32_t opts = 0;
  lua_Integer count = 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (count < maxn && pos <= len) {
    int rc = next_match(L, rx, s, len, pos, last, &opts);
    if (rc < 0) { /* nil, message */
      lua_pushnil(L);
      lua_insert(L, -2);
      return 2;
    }
    if (rc == 0) break;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rx->md);
    size_t ms = ov[0], me = ov[1];
    luaL_addlstring(&b, s + copied, ms - copied);
    add_replacement(L, &b, rx, s, ms, me, rarg);
    copied = pos = last = me;
    count++;
  }
  luaL_addlstring(&b, s + copied, len - copied);
  luaL_pushresult(&b);
  lua_pushinteger(L, count);
  return 2;
}

/* ---------------------------------------------------------------- methods */

/* rx:match(s [, init]) -> captures... | nil [, message] */
static int m_match(lua_State *L) { return match_common(L, 1, 2, 3, MODE_MATCH); }
/* rx:find(s [, init]) -> start, end, captures... | nil [, message] */
static int m_find(lua_State *L) { return match_common(L, 1, 2, 3, MODE_FIND); }
/* rx:exec(s [, init]) -> start, end, caps | nil [, message] */
static int m_exec(lua_State *L) { return match_common(L, 1, 2, 3, MODE_EXEC); }
/* rx:gmatch(s [, init]) -> iterator giving what match gives */
static int m_gmatch(lua_State *L) { return gmatch_common(L, 1, 2, 3); }
/* rx:gsub(s, repl [, n]) -> string, count | nil, message */
static int m_gsub(lua_State *L) { return gsub_common(L, 1, 2, 3, 4); }

static int m_gc(lua_State *L) {
  regex_free(luaL_checkudata(L, 1, RE_MT));
  return 0;
}

static int m_tostring(lua_State *L) {
  Regex *rx = luaL_checkudata(L, 1, RE_MT);
  lua_getiuservalue(L, 1, UV_PATTERN);
  lua_pushfstring(L, "re: %s%s", lua_tostring(L, -1), rx->code ? "" : " (closed)");
  return 1;
}

/* ---------------------------------------------------------------- module functions */

/* re.compile(pattern [, flags]) -> rx | nil, "offset N: message" */
static int l_compile(lua_State *L) {
  size_t len;
  const char *pat = luaL_checklstring(L, 1, &len);
  uint32_t opts = parse_flags(L, 2);
  return push_compiled(L, pat, len, opts) ? 1 : 2;
}

/* Puts the compiled pattern for (pattern at patarg, flags at flagarg) at stack index patarg,
 * compiling through the cache (upvalue 1: a weak-valued table, so unused entries go with the
 * next collection and the cache cannot grow without bound). A bad pattern raises. */
static void cached(lua_State *L, int patarg, int flagarg) {
  size_t len;
  const char *pat = luaL_checklstring(L, patarg, &len);
  uint32_t opts = parse_flags(L, flagarg);
  const char *flags = luaL_optstring(L, flagarg, "");
  luaL_checkstack(L, 4, NULL);
  lua_pushstring(L, flags);
  lua_pushlstring(L, "", 1); /* a NUL separates flags from pattern */
  lua_pushvalue(L, patarg);
  lua_concat(L, 3);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    if (!push_compiled(L, pat, len, opts)) luaL_argerror(L, patarg, lua_tostring(L, -1));
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, lua_upvalueindex(1));
  }
  lua_replace(L, patarg);
  lua_pop(L, 1);
}

/* re.match(s, pattern [, init [, flags]]) */
static int l_match(lua_State *L) {
  cached(L, 2, 4);
  return match_common(L, 2, 1, 3, MODE_MATCH);
}

/* re.find(s, pattern [, init [, flags]]) */
static int l_find(lua_State *L) {
  cached(L, 2, 4);
  return match_common(L, 2, 1, 3, MODE_FIND);
}

/* re.exec(s, pattern [, init [, flags]]) */
static int l_exec(lua_State *L) {
  cached(L, 2, 4);
  return match_common(L, 2, 1, 3, MODE_EXEC);
}

/* re.gmatch(s, pattern [, flags]) */
static int l_gmatch(lua_State *L) {
  cached(L, 2, 3);
  return gmatch_common(L, 2, 1, 0);
}

/* re.gsub(s, pattern, repl [, n [, flags]]) */
static int l_gsub(lua_State *L) {
  cached(L, 2, 5);
  return gsub_common(L, 2, 1, 3, 4);
}

int luaopen_metasync_re(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"match", m_match}, {"find", m_find}, {"exec", m_exec},
      {"gmatch", m_gmatch}, {"gsub", m_gsub}, {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", m_gc}, {"__close", m_gc}, {"__tostring", m_tostring}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"match", l_match}, {"find", l_find}, {"exec", l_exec},
      {"gmatch", l_gmatch}, {"gsub", l_gsub}, {NULL, NULL}};
  if (luaL_newmetatable(L, RE_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_compile);
  lua_setfield(L, -2, "compile");
  lua_newtable(L); /* the pattern cache */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  luaL_setfuncs(L, funcs, 1);
  return 1;
}
