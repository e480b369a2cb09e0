/* json.rows(s, spec): compact rows straight from the text of a JSON list of objects.
 *
 * Why: a bulk answer is a few MB of rows, of which a run keeps an id, a join key and a handful of
 * values per row. Decoding every row into tables (and its name/value list into more tables), then
 * picking the values out in Lua, was most of the CPU of building an index from such answers. This
 * walks the text once and builds each row's compact entry {id, v1, ..., vn} directly.
 *
 * Exactness comes first: only a row whose outcome is certain is settled here. Any other row (an
 * id that is not a plain positive integer, a key that is not plain hex, a string with escapes, a
 * number the decoder's rules must read, a member given twice, a name/value list of odd shape, a
 * key already in the map) is handed to spec.other(text) as its raw JSON text, in list order, so
 * the caller's own rules decide it exactly as they decide a decoded row.
 *
 * spec = {
 *   at = name,          the list is the array under this member of the top-level object
 *   id = name,          a positive integer per row; a row whose id is in `seen` is skipped
 *   key = name,         hex text: separators (':' and white space) and leading zeros dropped,
 *                       upper case; no key (absent, null, only separators) keeps nothing
 *   match = {{name =, set =, lower = bool}, ...}
 *                       a row is kept only when each named value is a key of its set (strings
 *                       lowered first with lower); other rows are only marked seen
 *   list = name, list_name = name, list_value = name
 *                       a list of {name, value} objects (names compared in lower case)
 *   slots = {{list = lower-case name} | {key = name, conv = "mdy" | "int" | "pairs"}, ...}
 *                       "mdy": yyyy-mm-dd... becomes mm/dd/yyyy; "int": a number as an integer;
 *                       "pairs": even-length hex becomes upper-case bytes joined by ':'
 *   map = {}, seen = {}, other = function(text) end
 * }
 * Kept rows: map[key] = {id, slot values...} (an absent value is false, null is json.null) and
 * seen[id] = true.
 *
 * Returns the number of list elements, of new rows settled here and of entries put into map (rows
 * given to other() are the caller's to count); false when s is valid JSON of another shape (the caller decodes it);
 * nil when s is not valid JSON (json.decode says why).
 */
#include "json_internal.h"

#include <lauxlib.h>
#include <stdint.h>
#include <string.h>

#define ROWS_MAX_NAMES 64   /* distinct member names read from a row */
#define ROWS_MAX_LIST 512   /* list slots */
#define ROWS_MAX_MATCH 8
#define ROWS_MAX_KEY 256    /* bytes of a normalised key */

enum { CONV_NONE, CONV_MDY, CONV_INT, CONV_PAIRS };

typedef struct {
  const char *s;
  size_t len;
} Name;

typedef struct {
  int name;   /* index into names, or -1 for a list slot */
  int list;   /* index into lnames for a list slot */
  int conv;
} Slot;

typedef struct {
  const char *end;
  Name names[ROWS_MAX_NAMES];
  int nnames;
  int id, key, list;          /* name indices (list: -1 when none) */
  Name list_name, list_value;
  int match[ROWS_MAX_MATCH], match_lower[ROWS_MAX_MATCH], match_set[ROWS_MAX_MATCH];
  int nmatch;
  Name lnames[ROWS_MAX_LIST];
  int nlist;
  Slot *slots;
  int nslots;
  int map, seen, other;       /* stack indices */
} Spec;

static const char *ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* p at an opening quote of valid text: the closing quote; *esc tells whether an escape came.
 * memchr finds the candidates (a quote is closing when an even run of backslashes precedes it):
 * strings are most of an answer's bytes. */
static const char *str_end(const char *p, const char *e, int *esc) {
  const char *s = p + 1, *q = s;
  for (;;) {
    q = memchr(q, '"', (size_t)(e - q));
    if (!q) { *esc = 1; return e; }
    const char *b = q;
    while (b > s && b[-1] == '\\') b--;
    if (((q - b) & 1) == 0) break;
    q++;
  }
  *esc = memchr(s, '\\', (size_t)(q - s)) != NULL;
  return q;
}

/* Past one value of valid text. */
static const char *skip(const char *p, const char *e) {
  int esc, depth = 0;
  do {
    if (p >= e) return e;
    char c = *p;
    if (c == '"') p = str_end(p, e, &esc) + 1;
    else if (c == '{' || c == '[') { depth++; p++; }
    else if (c == '}' || c == ']') { depth--; p++; }
    else if (depth > 0) p++;
    else {
      while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
             *p != '\n' && *p != '\r')
        p++;
    }
  } while (depth > 0);
  return p;
}

/* An integer literal (no fraction, no exponent) that fits int64. */
static int int_literal(const char *p, const char *e, lua_Integer *out) {
  int neg = p < e && *p == '-';
  if (neg) p++;
  if (p >= e || *p < '0' || *p > '9') return 0;
  uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; p < e && *p >= '0' && *p <= '9'; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (lim - d) / 10) return 0;
    v = v * 10 + d;
  }
  if (p < e && (*p == '.' || *p == 'e' || *p == 'E')) return 0;
  *out = neg ? (lua_Integer)(0 - v) : (lua_Integer)v;
  return 1;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
/* A key's separators (':' and white space, as metasync.serial drops them) and hex digits: one
 * rule for json.rows' keys, its "pairs" conversion and json.hexkey. */
static int hex_sep(char c) { return c == ':' || c == ' ' || (c >= '\t' && c <= '\r'); }
static int hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

/* The members of the object at p: vals[i] is where the value of names[i] starts (NULL: absent).
 * Returns the end of the object, or NULL when the row is odd (an escaped or repeated name). */
static const char *members(const Spec *sp, const Name *names, int n, const char *p,
                           const char **vals) {
  const char *e = sp->end;
  for (int i = 0; i < n; i++) vals[i] = NULL;
  p = ws(p + 1, e);
  if (p < e && *p == '}') return p + 1;
  while (p < e) {
    int esc;
    const char *k = p + 1, *kend = str_end(p, e, &esc);
    size_t klen = (size_t)(kend - k);
    p = ws(kend + 1, e);
    p = ws(p + 1, e); /* past ':' */
    for (int i = 0; i < n; i++) {
      if (esc) return NULL; /* an escaped name might spell one we read */
      if (names[i].len == klen && memcmp(names[i].s, k, klen) == 0) {
        if (vals[i]) return NULL; /* given twice: the decoder keeps the last; let it decide */
        vals[i] = p;
        break;
      }
    }
    p = ws(skip(p, e), e);
    if (p < e && *p == ',') p = ws(p + 1, e);
    else return p + 1;
  }
  return NULL;
}

/* A plain string value at v (no escapes): sets *s, *len. */
static int plain_string(const char *v, const char *e, const char **s, size_t *len) {
  int esc;
  if (!v || *v != '"') return 0;
  const char *q = str_end(v, e, &esc);
  if (esc) return 0;
  *s = v + 1;
  *len = (size_t)(q - v - 1);
  return 1;
}

/* The code point of the \u escape at q (q at the backslash), *len set to the bytes it spans;
 * -1 for a surrogate that is not one half of a pair. The text is valid, so four hex digits follow
 * every \u. */
static long code_point(const char *q, const char *e, size_t *len) {
  unsigned hi = 0, lo = 0;
  *len = 6;
  if (!json_hex4(q + 2, &hi)) return -1; /* (valid text always has four hex digits here) */
  long cp = hi;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (e - q < 12 || q[6] != '\\' || q[7] != 'u' || !json_hex4(q + 8, &lo)) return -1;
    if (lo < 0xDC00 || lo > 0xDFFF) return -1;
    *len = 12;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  return cp;
}

/* Pushes the string at v (an opening quote) with its escapes undone; 0 (nothing pushed) for an
 * escape the decoder reads its own way. Checked to the end before the buffer exists, so the
 * buffer is never abandoned (see json_decode.c). */
static int push_string(lua_State *L, const char *v, const char *e) {
  int esc;
  const char *q = str_end(v, e, &esc), *s = v + 1;
  if (!esc) { lua_pushlstring(L, s, (size_t)(q - s)); return 1; }
  for (const char *r = s; r < q; r++) {
    size_t n;
    if (*r != '\\') continue;
    if (r[1] == 'u' && code_point(r, q, &n) < 0) return 0;
    r += r[1] == 'u' ? n - 1 : 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *r = s; r < q; r++) {
    if (*r != '\\') { luaL_addchar(&b, *r); continue; }
    size_t n;
    char c = r[1];
    switch (c) {
    case 'b': luaL_addchar(&b, '\b'); break;
    case 'f': luaL_addchar(&b, '\f'); break;
    case 'n': luaL_addchar(&b, '\n'); break;
    case 'r': luaL_addchar(&b, '\r'); break;
    case 't': luaL_addchar(&b, '\t'); break;
    case 'u': {
      long cp = code_point(r, q, &n);
      char u[4];
      size_t k = json_utf8_put(u, (unsigned)cp);
      luaL_addlstring(&b, u, k);
      r += n - 2;
      break;
    }
    default: luaL_addchar(&b, c); /* " \\ / */
    }
    r++;
  }
  luaL_pushresult(&b);
  return 1;
}

/* Pushes the scalar at v (NULL: false) converted as conv says; 0 (nothing pushed) when the
 * value needs the caller's rules. */
static int push_value(lua_State *L, const Spec *sp, const char *v, int conv) {
  const char *e = sp->end, *s;
  size_t n;
  lua_Integer i;
  if (!v) { lua_pushboolean(L, 0); return 1; }
  switch (*v) {
  case 't': lua_pushboolean(L, 1); return 1;
  case 'f': lua_pushboolean(L, 0); return 1;
  case 'n': lua_pushlightuserdata(L, NULL); return 1;
  case '{': case '[': return 0;
  case '"':
    if (!plain_string(v, e, &s, &n)) return conv == CONV_NONE ? push_string(L, v, e) : 0;
    if (conv == CONV_INT) {
      /* text read as a number: plain decimal digits here, tonumber's other forms in Lua */
      if (n == 0 || n > 18 || !int_literal(s, s + n, &i)) return 0;
      for (size_t k = (s[0] == '-'); k < n; k++)
        if (s[k] < '0' || s[k] > '9') return 0;
      lua_pushinteger(L, i);
      return 1;
    }
    if (conv == CONV_MDY && n >= 10 && s[4] == '-' && s[7] == '-') {
      int digits = 1;
      for (int k = 0; k < 10; k++)
        if (k != 4 && k != 7 && (s[k] < '0' || s[k] > '9')) digits = 0;
      if (digits) {
        char out[10] = {s[5], s[6], '/', s[8], s[9], '/', s[0], s[1], s[2], s[3]};
        lua_pushlstring(L, out, 10);
        return 1;
      }
    }
    if (conv == CONV_PAIRS && n % 2 == 0 && !memchr(s, ':', n)) {
      luaL_Buffer b;
      for (size_t k = 0; k < n; k++)
        if (!hex_digit(s[k])) return 0;
      luaL_buffinit(L, &b);
      for (size_t k = 0; k < n; k += 2) {
        if (k) luaL_addchar(&b, ':');
        luaL_addchar(&b, (char)(s[k] >= 'a' ? s[k] - 32 : s[k]));
        luaL_addchar(&b, (char)(s[k + 1] >= 'a' ? s[k + 1] - 32 : s[k + 1]));
      }
      luaL_pushresult(&b);
      return 1;
    }
    lua_pushlstring(L, s, n);
    return 1;
  default:
    if (!int_literal(v, e, &i)) return 0;
    lua_pushinteger(L, i);
    return 1;
  }
}

/* The normalised key of the value at v into buf: 1 with *len (0: no key), or 0 when odd (not
 * plain text, not hex, too long). */
static int norm_key(const Spec *sp, const char *v, char *buf, size_t *len) {
  const char *s;
  size_t n, o = 0, z = 0;
  if (!v || *v == 'n') { *len = 0; return 1; }
  if (!plain_string(v, sp->end, &s, &n)) return 0;
  for (size_t k = 0; k < n; k++) {
    char c = s[k];
    if (hex_sep(c)) continue;
    if (!hex_digit(c)) return 0; /* not hex: a problem */
    if (c >= 'a') c = (char)(c - 32);
    if (o >= ROWS_MAX_KEY) return 0;
    buf[o++] = c;
  }
  while (z < o && buf[z] == '0') z++;
  if (z == o && o > 0) z = o - 1; /* only zeros: "0" */
  memmove(buf, buf + z, o - z);
  *len = o - z;
  return 1;
}

/* The name/value list at v: lv[j] is where list slot j's value starts (NULL: none). 0 when odd. */
static int read_list(const Spec *sp, const char *v, const char **lv) {
  const char *e = sp->end;
  Name nv[2] = {sp->list_name, sp->list_value};
  for (int j = 0; j < sp->nlist; j++) lv[j] = NULL;
  if (!v || *v == 'n') return 1;
  if (*v != '[') return 0;
  const char *p = ws(v + 1, e);
  if (p < e && *p == ']') return 1;
  while (p < e) {
    const char *m[2], *s;
    size_t n;
    if (*p != '{') return 0;
    const char *q = members(sp, nv, 2, p, m);
    if (!q || !plain_string(m[0], e, &s, &n)) return 0;
    if (m[1] && (*m[1] == '{' || *m[1] == '[' || *m[1] == '-' || (*m[1] >= '0' && *m[1] <= '9')))
      return 0; /* numbers and structures: the decoder's reading */
    plain_string(m[0], e, &s, &n);
    for (int j = 0; j < sp->nlist; j++) {
      if (sp->lnames[j].len != n) continue;
      size_t k = 0;
      while (k < n && lower((unsigned char)s[k]) == (unsigned char)sp->lnames[j].s[k]) k++;
      if (k == n) lv[j] = m[1]; /* the last one named wins; no value clears */
    }
    p = ws(q, e);
    if (p < e && *p == ',') p = ws(p + 1, e);
    else return 1;
  }
  return 0;
}

/* One row at p. Returns 2 when settled here as a new row and kept, 1 for a new row not kept (not
 * matched, or without a key), 0 when skipped (seen before), -1 when odd (the caller hands it
 * on). *end is set to the end of the row unless it is odd. */
static int row(lua_State *L, const Spec *sp, const char *p, const char **end) {
  const char *vals[ROWS_MAX_NAMES], *lv[ROWS_MAX_LIST];
  char key[ROWS_MAX_KEY];
  size_t klen;
  lua_Integer id;
  if (*p != '{' || !(*end = members(sp, sp->names, sp->nnames, p, vals))) return -1;
  const char *iv = vals[sp->id];
  if (!iv || !int_literal(iv, sp->end, &id) || id < 1) return -1;
  if (lua_rawgeti(L, sp->seen, id) != LUA_TNIL) { lua_pop(L, 1); return 0; }
  lua_pop(L, 1);
  int kept = 1, put = 0;
  for (int m = 0; m < sp->nmatch && kept; m++) {
    const char *v = vals[sp->match[m]], *s;
    size_t n;
    lua_Integer i;
    if (sp->match_lower[m]) {
      /* a text match: anything but text is in no set */
      if (v && *v == '"') {
        if (!plain_string(v, sp->end, &s, &n)) return -1;
        luaL_Buffer b;
        char *out = luaL_buffinitsize(L, &b, n);
        for (size_t k = 0; k < n; k++) out[k] = (char)lower((unsigned char)s[k]);
        luaL_pushresultsize(&b, n);
      } else {
        kept = 0;
        break;
      }
    } else {
      /* an integer match: only an integer literal is read here */
      if (!v || !int_literal(v, sp->end, &i)) return -1;
      lua_pushinteger(L, i);
    }
    kept = lua_rawget(L, sp->match_set[m]) != LUA_TNIL;
    lua_pop(L, 1);
  }
  if (kept) {
    if (!norm_key(sp, vals[sp->key], key, &klen)) return -1;
    if (klen > 0) {
      if (sp->list >= 0 && !read_list(sp, vals[sp->list], lv)) return -1;
      lua_pushlstring(L, key, klen);
      if (lua_rawget(L, sp->map) != LUA_TNIL) { lua_pop(L, 1); return -1; } /* a repeated key */
      lua_pop(L, 1);
      lua_createtable(L, sp->nslots + 1, 0);
      lua_pushinteger(L, id);
      lua_rawseti(L, -2, 1);
      for (int j = 0; j < sp->nslots; j++) {
        const Slot *sl = &sp->slots[j];
        const char *v = sl->name < 0 ? lv[sl->list] : vals[sl->name];
        if (!push_value(L, sp, v, sl->name < 0 ? CONV_NONE : sl->conv)) { lua_pop(L, 1); return -1; }
        lua_rawseti(L, -2, j + 2);
      }
      lua_pushlstring(L, key, klen);
      lua_insert(L, -2);
      lua_rawset(L, sp->map);
      put = 1;
    }
  }
  lua_pushboolean(L, 1);
  lua_rawseti(L, sp->seen, id);
  return 1 + put;
}

/* ---------------------------------------------------------------- json.hexkey */


/* json.hexkey(v) -> the key json.rows makes of a row's key text: upper-case hex without
 * separators (':' and white space) or leading zeros ("0" for only zeros); nil when v is not a
 * string, holds no digit, or is not hex. metasync.serial's normalise: the join key of both sides,
 * made for every certificate of both listings, so the usual case (already canonical) returns v
 * itself. Validated before any buffer exists (see json_decode.c on abandoned buffers).
 * json_hexkey_at pushes the key of the value at idx (nil when there is none), for C callers. */
int json_hexkey_at(lua_State *L, int idx) {
  size_t n, o = 0, z = 0;
  if (lua_type(L, idx) != LUA_TSTRING) { lua_pushnil(L); return 1; }
  const char *s = lua_tolstring(L, idx, &n);
  int canonical = n > 0 && s[0] != '0';
  for (size_t k = 0; k < n; k++) {
    char c = s[k];
    if (hex_sep(c)) { canonical = 0; continue; }
    if (!hex_digit(c)) { lua_pushnil(L); return 1; }
    if (c >= 'a') canonical = 0;
    if (o == z && c == '0') z++; /* a leading zero */
    o++;
  }
  if (o == 0) { lua_pushnil(L); return 1; }
  if (canonical) { lua_pushvalue(L, idx); return 1; }
  if (z == o) { lua_pushliteral(L, "0"); return 1; }
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, o - z);
  size_t w = 0, digits = 0;
  for (size_t k = 0; k < n; k++) {
    char c = s[k];
    if (hex_sep(c)) continue;
    if (digits++ < z) continue;
    out[w++] = (char)(c >= 'a' ? c - 32 : c);
  }
  luaL_pushresultsize(&b, w);
  return 1;
}

int json_hexkey(lua_State *L) {
  lua_settop(L, 1);
  return json_hexkey_at(L, 1);
}

/* ---------------------------------------------------------------- the spec */

static int name_of(lua_State *L, Spec *sp, int idx, const char *what) {
  size_t len;
  if (lua_type(L, idx) != LUA_TSTRING) luaL_error(L, "json.rows: spec.%s must be a string", what);
  const char *s = lua_tolstring(L, idx, &len);
  for (int i = 0; i < sp->nnames; i++)
    if (sp->names[i].len == len && memcmp(sp->names[i].s, s, len) == 0) return i;
  if (sp->nnames == ROWS_MAX_NAMES) luaL_error(L, "json.rows: more than %d member names", ROWS_MAX_NAMES);
  sp->names[sp->nnames] = (Name){s, len};
  return sp->nnames++;
}

/* Reads spec (at index 2) into sp. Strings stay anchored by the spec's tables, which the stack
 * holds: spec itself, and a copy of each table whose entries are read. */
static void read_spec(lua_State *L, Spec *sp) {
  static const char *const tabs[] = {"map", "seen"};
  int *idx[] = {&sp->map, &sp->seen};
  for (int i = 0; i < 2; i++) {
    if (lua_getfield(L, 2, tabs[i]) != LUA_TTABLE) luaL_error(L, "json.rows: spec.%s must be a table", tabs[i]);
    *idx[i] = lua_gettop(L);
  }
  if (lua_getfield(L, 2, "other") != LUA_TFUNCTION) luaL_error(L, "json.rows: spec.other must be a function");
  sp->other = lua_gettop(L);
  lua_getfield(L, 2, "id");
  sp->id = name_of(L, sp, -1, "id");
  lua_getfield(L, 2, "key");
  sp->key = name_of(L, sp, -1, "key");
  sp->list = -1;
  if (lua_getfield(L, 2, "list") != LUA_TNIL) {
    sp->list = name_of(L, sp, -1, "list");
    lua_getfield(L, 2, "list_name");
    lua_getfield(L, 2, "list_value");
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "json.rows: spec.list_name and spec.list_value must be strings");
    sp->list_name.s = lua_tolstring(L, -2, &sp->list_name.len);
    sp->list_value.s = lua_tolstring(L, -1, &sp->list_value.len);
  }
  if (lua_getfield(L, 2, "match") == LUA_TTABLE) {
    int t = lua_gettop(L);
    for (lua_Integer i = 1; lua_rawgeti(L, t, i) == LUA_TTABLE; i++) {
      int m = lua_gettop(L);
      if (sp->nmatch == ROWS_MAX_MATCH) luaL_error(L, "json.rows: more than %d matches", ROWS_MAX_MATCH);
      lua_getfield(L, m, "name");
      sp->match[sp->nmatch] = name_of(L, sp, -1, "match[].name");
      if (lua_getfield(L, m, "set") != LUA_TTABLE) luaL_error(L, "json.rows: spec.match[].set must be a table");
      sp->match_set[sp->nmatch] = lua_gettop(L);
      lua_getfield(L, m, "lower");
      sp->match_lower[sp->nmatch] = lua_toboolean(L, -1);
      sp->nmatch++;
      luaL_checkstack(L, 8, "json.rows");
    }
  }
  if (lua_getfield(L, 2, "slots") != LUA_TTABLE) luaL_error(L, "json.rows: spec.slots must be a list");
  int t = lua_gettop(L);
  sp->nslots = (int)lua_rawlen(L, t);
  if (sp->nslots > ROWS_MAX_NAMES + ROWS_MAX_LIST) luaL_error(L, "json.rows: too many slots");
  sp->slots = lua_newuserdatauv(L, sizeof(Slot) * (size_t)(sp->nslots + 1), 0);
  for (int j = 0; j < sp->nslots; j++) {
    Slot *sl = &sp->slots[j];
    luaL_checkstack(L, 4, "json.rows");
    if (lua_rawgeti(L, t, j + 1) != LUA_TTABLE) luaL_error(L, "json.rows: spec.slots[%d] must be a table", j + 1);
    int s = lua_gettop(L);
    sl->conv = CONV_NONE;
    if (lua_getfield(L, s, "list") == LUA_TSTRING) {
      if (sp->nlist == ROWS_MAX_LIST) luaL_error(L, "json.rows: more than %d list slots", ROWS_MAX_LIST);
      sl->name = -1;
      sl->list = sp->nlist;
      sp->lnames[sp->nlist].s = lua_tolstring(L, -1, &sp->lnames[sp->nlist].len);
      sp->nlist++;
      lua_pop(L, 1); /* anchored by the slot table, which slots[] anchors */
    } else {
      lua_getfield(L, s, "key");
      sl->name = name_of(L, sp, -1, "slots[].key");
      lua_getfield(L, s, "conv");
      const char *c = lua_tostring(L, -1);
      if (c && strcmp(c, "mdy") == 0) sl->conv = CONV_MDY;
      else if (c && strcmp(c, "int") == 0) sl->conv = CONV_INT;
      else if (c && strcmp(c, "pairs") == 0) sl->conv = CONV_PAIRS;
      else if (c) luaL_error(L, "json.rows: spec.slots[%d].conv '%s' is not mdy, int or pairs", j + 1, c);
    }
  }
  if (sp->nlist > 0 && sp->list < 0) luaL_error(L, "json.rows: list slots need spec.list");
}

/* ---------------------------------------------------------------- json.rows */

int json_rows(lua_State *L) {
  size_t len, atlen;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_checktype(L, 2, LUA_TTABLE);
  Spec sp;
  memset(&sp, 0, sizeof sp);
  lua_getfield(L, 2, "at");
  const char *at = lua_tolstring(L, -1, &atlen);
  if (!at) luaL_error(L, "json.rows: spec.at must be a string");
  read_spec(L, &sp);
  if (!json_valid(L, s, len)) { lua_pushnil(L); return 1; }
  const char *p = s, *e = s + len, *list = NULL;
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) p += 3;
  sp.end = e;
  p = ws(p, e);
  /* The top level: an object with exactly one member named `at`, an array. */
  Name top = {at, atlen};
  const char *v[1];
  if (p >= e || *p != '{' || !members(&sp, &top, 1, p, v) || !v[0] || *v[0] != '[') {
    lua_pushboolean(L, 0);
    return 1;
  }
  list = v[0];
  /* A row needs a few slots (its entry, a buffer's box, a callback and its argument): reserved
   * here once, rather than on the margin Lua keeps past a C function's guaranteed slots. */
  luaL_checkstack(L, 16, "json.rows");
  lua_Integer n = 0, fresh = 0, kept = 0;
  p = ws(list + 1, e);
  if (p < e && *p == ']') p = e;
  while (p < e) {
    n++;
    const char *q = NULL;
    int r = row(L, &sp, p, &q);
    if (r < 0) q = skip(p, e);
    if (r > 0) fresh++;
    if (r > 1) kept++;
    if (r < 0) {
      lua_pushvalue(L, sp.other);
      lua_pushlstring(L, p, (size_t)(q - p));
      lua_call(L, 1, 0);
    }
    p = ws(q, e);
    if (p < e && *p == ',') p = ws(p + 1, e);
    else break;
  }
  lua_pushinteger(L, n);
  lua_pushinteger(L, fresh);
  lua_pushinteger(L, kept);
  return 3;
}
