/* metasync.json: JSON for Lua with real integers, an array mark and the cjson null sentinel.
 *
 * Decoding is done here rather than by lua-cjson 2.1.0 (Debian) because what cjson gives back
 * cannot be repaired after the fact:
 *  - every number goes through strtod, so 9007199254740993 arrives as 9007199254740992.0 (a walk
 *    over the result can turn 5.0 into 5 but cannot restore lost digits); 12345678901234567890
 *    becomes 1.2345678901234567e19 and "-0" becomes -0.0;
 *  - "[]" and "{}" both come back as the same empty table, so a decoded [] would re-encode as {}
 *    (the APIs we talk to reject that);
 *  - it accepts NaN, Infinity and hex numbers by default, and reports errors as a character
 *    offset ("... at character 23") rather than a line and column.
 * json.null stays cjson.null (a NULL lightuserdata), so values pass freely between the two.
 *
 * Number rules: an integer literal that fits int64 is a Lua integer (exactly); one that does not
 * is a float. Any other number whose value is integral and within int64 also becomes an integer
 * ("5.0", "1e3", "-0" all decode to integers), as the contract asks. Non-finite results ("1e400")
 * are refused. Strings are taken as bytes: invalid UTF-8 and raw control characters are passed
 * through (lenient, like cjson) but \u escapes must form valid code points.
 */
#include "modules.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 200
#define JSON_ARRAY_MT "metasync.json.array"
#define JSON_MAX_INDENT 16

/* ---------------------------------------------------------------- decoding */

typedef struct {
  lua_State *L;
  const char *start, *p, *end;
  int depth;
  int mtidx;              /* stack index of the shared array metatable */
  const char *errpos;     /* where the error was detected */
  const char *errmsg;     /* static text */
} Decoder;

static int dec_fail(Decoder *d, const char *at, const char *msg) {
  d->errpos = at;
  d->errmsg = msg;
  return 0;
}

static void skip_ws(Decoder *d) {
  while (d->p < d->end &&
         (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
    d->p++;
}

static int is_digit(Decoder *d, const char *q) {
  return q < d->end && *q >= '0' && *q <= '9';
}

static int parse_value(Decoder *d);

static int hex4(const char *q, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = q[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static size_t utf8_put(char *buf, unsigned cp) {
  if (cp < 0x80) { buf[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    buf[0] = (char)(0xC0 | (cp >> 6));
    buf[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    buf[0] = (char)(0xE0 | (cp >> 12));
    buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  buf[0] = (char)(0xF0 | (cp >> 18));
  buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  buf[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* d->p is at the opening quote. Pushes the string. */
static int parse_string(Decoder *d) {
  const char *q = ++d->p;
  while (q < d->end && *q != '"' && *q != '\\') q++;
  if (q >= d->end) return dec_fail(d, d->end, "unterminated string");
  if (*q == '"') { /* common case: nothing to unescape */
    lua_pushlstring(d->L, d->p, (size_t)(q - d->p));
    d->p = q + 1;
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(d->L, &b);
  luaL_addlstring(&b, d->p, (size_t)(q - d->p));
  for (;;) {
    if (q >= d->end) return dec_fail(d, d->end, "unterminated string");
    if (*q == '"') break;
    if (*q != '\\') {
      const char *run = q;
      while (q < d->end && *q != '"' && *q != '\\') q++;
      luaL_addlstring(&b, run, (size_t)(q - run));
      continue;
    }
    const char *esc = q++;
    if (q >= d->end) return dec_fail(d, d->end, "unterminated string");
    switch (*q++) {
    case '"': luaL_addchar(&b, '"'); break;
    case '\\': luaL_addchar(&b, '\\'); break;
    case '/': luaL_addchar(&b, '/'); break;
    case 'b': luaL_addchar(&b, '\b'); break;
    case 'f': luaL_addchar(&b, '\f'); break;
    case 'n': luaL_addchar(&b, '\n'); break;
    case 'r': luaL_addchar(&b, '\r'); break;
    case 't': luaL_addchar(&b, '\t'); break;
    case 'u': {
      unsigned cp, lo;
      char out[4];
      if (d->end - q < 4 || !hex4(q, &cp)) return dec_fail(d, esc, "invalid \\u escape");
      q += 4;
      if (cp >= 0xDC00 && cp <= 0xDFFF) return dec_fail(d, esc, "lone low surrogate in \\u escape");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (d->end - q < 6 || q[0] != '\\' || q[1] != 'u' || !hex4(q + 2, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
          return dec_fail(d, esc, "high surrogate not followed by a low surrogate");
        q += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      luaL_addlstring(&b, out, utf8_put(out, cp));
      break;
    }
    default:
      return dec_fail(d, esc, "invalid escape in string");
    }
  }
  luaL_pushresult(&b);
  d->p = q + 1;
  return 1;
}

/* A float with an integral value inside int64 is pushed as an integer (the contract). */
static void push_number(lua_State *L, lua_Number x) {
  lua_Integer i;
  if (floor(x) == x && lua_numbertointeger(x, &i)) lua_pushinteger(L, i);
  else lua_pushnumber(L, x);
}

static int parse_number(Decoder *d) {
  const char *s = d->p, *q = s;
  int isfloat = 0, neg = 0;
  if (*q == '-') { neg = 1; q++; }
  if (!is_digit(d, q)) return dec_fail(d, s, "invalid number");
  if (*q == '0') q++;
  else while (is_digit(d, q)) q++;
  if (q < d->end && *q == '.') {
    q++;
    if (!is_digit(d, q)) return dec_fail(d, s, "invalid number");
    while (is_digit(d, q)) q++;
    isfloat = 1;
  }
  if (q < d->end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < d->end && (*q == '+' || *q == '-')) q++;
    if (!is_digit(d, q)) return dec_fail(d, s, "invalid number");
    while (is_digit(d, q)) q++;
    isfloat = 1;
  }
  d->p = q;
  if (!isfloat) { /* exact int64 when it fits; overflow falls through to a float */
    unsigned long long acc = 0, limit = neg ? (1ULL << 63) : (1ULL << 63) - 1;
    const char *r = s + neg;
    int ok = 1;
    for (; r < q; r++) {
      unsigned dig = (unsigned)(*r - '0');
      if (acc > (limit - dig) / 10) { ok = 0; break; }
      acc = acc * 10 + dig;
    }
    if (ok) {
      /* negate in unsigned arithmetic so -2^63 does not overflow */
      lua_pushinteger(d->L, neg ? (lua_Integer)(0ULL - acc) : (lua_Integer)acc);
      return 1;
    }
  }
  /* lua_stringtonumber wants a NUL-terminated string and copes with the locale's decimal point */
  lua_pushlstring(d->L, s, (size_t)(q - s));
  if (lua_stringtonumber(d->L, lua_tostring(d->L, -1)) == 0)
    return dec_fail(d, s, "invalid number");
  lua_Number x = lua_tonumber(d->L, -1);
  lua_pop(d->L, 2);
  if (isinf(x)) return dec_fail(d, s, "number out of range");
  push_number(d->L, x);
  return 1;
}

static int parse_literal(Decoder *d, const char *word, size_t len) {
  if ((size_t)(d->end - d->p) < len || memcmp(d->p, word, len) != 0)
    return dec_fail(d, d->p, "invalid literal");
  d->p += len;
  return 1;
}

static int enter(Decoder *d) {
  if (++d->depth > JSON_MAX_DEPTH)
    return dec_fail(d, d->p, "nesting deeper than 200 levels");
  if (!lua_checkstack(d->L, 8)) return dec_fail(d, d->p, "out of Lua stack");
  d->p++;
  return 1;
}

static int parse_array(Decoder *d) {
  if (!enter(d)) return 0;
  lua_newtable(d->L);
  lua_pushvalue(d->L, d->mtidx);
  lua_setmetatable(d->L, -2);
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    d->depth--;
    return 1;
  }
  for (lua_Integer i = 1;; i++) {
    if (!parse_value(d)) return 0;
    lua_rawseti(d->L, -2, i);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') { d->p++; continue; }
    if (d->p < d->end && *d->p == ']') { d->p++; break; }
    return dec_fail(d, d->p, "expected ',' or ']'");
  }
  d->depth--;
  return 1;
}

static int parse_object(Decoder *d) {
  if (!enter(d)) return 0;
  lua_newtable(d->L);
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    d->depth--;
    return 1;
  }
  for (;;) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"') return dec_fail(d, d->p, "expected string key");
    if (!parse_string(d)) return 0;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') return dec_fail(d, d->p, "expected ':'");
    d->p++;
    if (!parse_value(d)) return 0;
    lua_rawset(d->L, -3); /* duplicate keys: the last one wins */
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') { d->p++; continue; }
    if (d->p < d->end && *d->p == '}') { d->p++; break; }
    return dec_fail(d, d->p, "expected ',' or '}'");
  }
  d->depth--;
  return 1;
}

static int parse_value(Decoder *d) {
  skip_ws(d);
  if (d->p >= d->end) return dec_fail(d, d->p, "expected value");
  switch (*d->p) {
  case '{': return parse_object(d);
  case '[': return parse_array(d);
  case '"': return parse_string(d);
  case 't':
    if (!parse_literal(d, "true", 4)) return 0;
    lua_pushboolean(d->L, 1);
    return 1;
  case 'f':
    if (!parse_literal(d, "false", 5)) return 0;
    lua_pushboolean(d->L, 0);
    return 1;
  case 'n':
    if (!parse_literal(d, "null", 4)) return 0;
    lua_pushlightuserdata(d->L, NULL);
    return 1;
  default:
    if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return parse_number(d);
    return dec_fail(d, d->p, "expected value");
  }
}

/* Pushes "line L column C: what[, found ...]"; columns count UTF-8 characters, from 1. */
static void push_decode_error(Decoder *d) {
  lua_State *L = d->L;
  long line = 1, col = 1;
  for (const char *q = d->start; q < d->errpos; q++) {
    if (*q == '\n') { line++; col = 1; }
    else if (((unsigned char)*q & 0xC0) != 0x80) col++;
  }
  if (d->errpos >= d->end) {
    lua_pushfstring(L, "line %d column %d: %s (unexpected end of input)", (int)line, (int)col,
                    d->errmsg);
    return;
  }
  unsigned char c = (unsigned char)*d->errpos;
  if (c > 0x20 && c < 0x7f)
    lua_pushfstring(L, "line %d column %d: %s, found '%c'", (int)line, (int)col, d->errmsg, c);
  else {
    char hex[8];
    snprintf(hex, sizeof hex, "0x%02x", c);
    lua_pushfstring(L, "line %d column %d: %s, found byte %s", (int)line, (int)col, d->errmsg, hex);
  }
}

/* json.decode(s) -> value | nil, "line L column C: message" */
static int l_decode(lua_State *L) {
  size_t len;
  luaL_checktype(L, 1, LUA_TSTRING);
  const char *s = lua_tolstring(L, 1, &len);
  Decoder d = {L, s, s, s + len, 0, lua_upvalueindex(1), NULL, NULL};
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) d.start = d.p = s + 3; /* UTF-8 BOM */
  int top = lua_gettop(L);
  if (parse_value(&d)) {
    skip_ws(&d);
    if (d.p == d.end) return 1;
    dec_fail(&d, d.p, "expected end of input");
  }
  lua_settop(L, top);
  lua_pushnil(L);
  push_decode_error(&d);
  return 2;
}

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
      {"decode", l_decode}, {"encode", l_encode}, {"array", l_array},
      {"is_array", l_is_array}, {NULL, NULL}};
  lua_newtable(L);
  /* shared by every array decoded or marked, so marking costs one pointer per table */
  luaL_newmetatable(L, JSON_ARRAY_MT);
  luaL_setfuncs(L, funcs, 1);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
