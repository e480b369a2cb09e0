/* metasync.json decoding: json.decode(s [, {select = names, at = key, meta = mt}]).
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
 *
 * Selective decoding (opts.select): the direct elements of the item list (the top-level array, or
 * the array under opts.at in the top-level object) that are objects keep only the selected keys.
 * Other members are run through skip_value, a scanner that checks exactly what the decoder checks
 * (same messages, same positions, same depth limit) but creates no Lua values; a raw key is
 * matched against the selection by its bytes, so only kept keys are ever pushed. opts.meta (with
 * select): the metatable each such item gets, set here rather than by a Lua loop over the page
 * (a caller's guard against reading a key that was not kept).
 */
#include "json_internal.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Object tables are created with room for as many members as the last object closed at the same
 * depth had: the items of a page share a shape, so this saves every rehash on the way to ~30 keys
 * (capped so that one huge object cannot make its successors hoard memory). */
#define JSON_HINT_MAX 1024

/* The selected key names: a small open hash over (length, three bytes), chained. */
typedef struct {
  const char *s; /* anchored by the names table at Select.namesidx */
  size_t len;
  int next;      /* 1-based index of the next name in the same bucket; 0 ends the chain */
} SelName;

typedef struct {
  uint64_t lens;  /* bit n: some name has n bytes (n < 63); bit 63: some name has 63 or more */
  int namesidx;  /* stack index of {name, ...}: kept keys are pushed from it without hashing */
  unsigned shift;
  int *bucket;   /* 1-based heads */
  SelName *names;
} Select;

typedef struct {
  lua_State *L;
  const char *start, *p, *end;
  int depth;
  int mtidx;              /* stack index of the shared array metatable */
  const char *errpos;     /* where the error was detected */
  const char *errmsg;     /* static text */
  const Select *sel;      /* NULL: decode everything */
  const char *at;         /* NULL: the item list is the top-level array */
  int metaidx;            /* stack index of opts.meta, or 0 */
  size_t atlen;
  unsigned short ohint[JSON_MAX_DEPTH + 1];
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

/* ---------------------------------------------------------------- strings */

/* The first '"' or '\\' at or after q, or end. Eight bytes at a time: a word holds a byte equal
 * to c when w ^ c*ones has a zero byte, and the lowest flagged byte is exact (the classic test
 * can only flag false positives above a true one). */
static const char *scan_plain(const char *q, const char *end) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  while (end - q >= 8) {
    uint64_t w, a, b, hit;
    memcpy(&w, q, 8);
    a = w ^ (ones * '"');
    b = w ^ (ones * '\\');
    hit = ((a - ones) & ~a & highs) | ((b - ones) & ~b & highs);
    if (hit) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return q + (__builtin_ctzll(hit) >> 3);
#else
      break;
#endif
    }
    q += 8;
  }
  while (q < end && *q != '"' && *q != '\\') q++;
  return q;
}

int json_hex4(const char *q, unsigned *out) {
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

/* q is just past "\u" (the backslash at esc): reads the code point, joining a surrogate pair.
 * Returns the position after the escape, or NULL having set the error. */
static const char *read_u(Decoder *d, const char *esc, const char *q, unsigned *out) {
  unsigned cp, lo;
  if (d->end - q < 4 || !json_hex4(q, &cp)) return dec_fail(d, esc, "invalid \\u escape"), NULL;
  q += 4;
  if (cp >= 0xDC00 && cp <= 0xDFFF)
    return dec_fail(d, esc, "lone low surrogate in \\u escape"), NULL;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (d->end - q < 6 || q[0] != '\\' || q[1] != 'u' || !json_hex4(q + 2, &lo) || lo < 0xDC00 ||
        lo > 0xDFFF)
      return dec_fail(d, esc, "high surrogate not followed by a low surrogate"), NULL;
    q += 6;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  *out = cp;
  return q;
}

size_t json_utf8_put(char *buf, unsigned cp) {
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

/* q is inside the string that opens at d->p: checks the rest and moves d->p past it. */
static int skip_string_from(Decoder *d, const char *q) {
  const char *end = d->end;
  for (;;) {
    q = scan_plain(q, end);
    if (q >= end) return dec_fail(d, end, "unterminated string");
    if (*q == '"') break;
    const char *esc = q++;
    if (q >= end) return dec_fail(d, end, "unterminated string");
    switch (*q++) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': break;
    case 'u': {
      unsigned cp;
      if (!(q = read_u(d, esc, q, &cp))) return 0;
      break;
    }
    default:
      return dec_fail(d, esc, "invalid escape in string");
    }
  }
  d->p = q + 1;
  return 1;
}

/* d->p is at the opening quote: checks the string and moves past it, pushing nothing. */
static int skip_string(Decoder *d) {
  return skip_string_from(d, d->p + 1);
}

/* d->p is at the opening quote. Pushes the string.
 * A string with escapes is checked to its end before any buffer exists, so that the unescaping
 * cannot fail: a luaL_Buffer must not be left behind on an error, because dropping its
 * to-be-closed box with lua_settop can leave Lua 5.4.4 with a stack top pointing into the freed
 * old stack (a use-after-free that the decoder had on malformed strings longer than 1 KiB). The
 * unescaped text is never longer than the escaped one, which sizes the buffer. */
static int parse_string(Decoder *d) {
  const char *s = d->p + 1, *q = scan_plain(s, d->end);
  if (q < d->end && *q == '"') { /* common case: nothing to unescape */
    lua_pushlstring(d->L, s, (size_t)(q - s));
    d->p = q + 1;
    return 1;
  }
  if (!skip_string_from(d, q)) return 0;
  const char *e = d->p - 1; /* the closing quote */
  luaL_Buffer b;
  char *out = luaL_buffinitsize(d->L, &b, (size_t)(e - s));
  size_t n = 0;
  for (const char *r = s; r < e;) {
    if (*r != '\\') {
      const char *run = r;
      r = scan_plain(r, e);
      memcpy(out + n, run, (size_t)(r - run));
      n += (size_t)(r - run);
      continue;
    }
    r++;
    switch (*r++) {
    case 'b': out[n++] = '\b'; break;
    case 'f': out[n++] = '\f'; break;
    case 'n': out[n++] = '\n'; break;
    case 'r': out[n++] = '\r'; break;
    case 't': out[n++] = '\t'; break;
    case 'u': {
      unsigned cp = 0, lo = 0;
      json_hex4(r, &cp);
      r += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF) { /* checked: a low surrogate follows */
        json_hex4(r + 2, &lo);
        r += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      n += json_utf8_put(out + n, cp);
      break;
    }
    default: out[n++] = r[-1]; /* '"', '\\' or '/' */
    }
  }
  luaL_pushresultsize(&b, n);
  return 1;
}

/* ---------------------------------------------------------------- numbers */

/* A float with an integral value inside int64 is pushed as an integer (the contract). */
static void push_number(lua_State *L, lua_Number x) {
  lua_Integer i;
  if (floor(x) == x && lua_numbertointeger(x, &i)) lua_pushinteger(L, i);
  else lua_pushnumber(L, x);
}

/* Checks the number syntax at d->p and moves past it. *isfloat: it has a fraction or an exponent;
 * *finite: it is certainly below 1e307 in magnitude and short enough for lua_stringtonumber in
 * any locale (at most 200 characters), so converting it cannot fail. */
static int scan_number(Decoder *d, int *isfloat, int *finite) {
  const char *s = d->p, *q = s;
  long mag; /* the value is below 10^mag */
  *isfloat = 0;
  if (*q == '-') q++;
  if (!is_digit(d, q)) return dec_fail(d, s, "invalid number");
  const char *digits = q;
  if (*q == '0') q++;
  else while (is_digit(d, q)) q++;
  mag = (long)(q - digits);
  if (q < d->end && *q == '.') {
    q++;
    if (!is_digit(d, q)) return dec_fail(d, s, "invalid number");
    while (is_digit(d, q)) q++;
    *isfloat = 1;
  }
  if (q < d->end && (*q == 'e' || *q == 'E')) {
    int eneg = 0;
    long ev = 0;
    q++;
    if (q < d->end && (*q == '+' || *q == '-')) eneg = *q++ == '-';
    if (!is_digit(d, q)) return dec_fail(d, s, "invalid number");
    for (; is_digit(d, q); q++)
      if (ev < 100000) ev = ev * 10 + (*q - '0');
    mag += eneg ? -ev : ev;
    *isfloat = 1;
  }
  *finite = q - s <= 200 && mag <= 307;
  d->p = q;
  return 1;
}

/* Pushes the number s..q through Lua's own conversion (it copes with the locale's decimal
 * point). */
static int convert_number(Decoder *d, const char *s, const char *q) {
  lua_pushlstring(d->L, s, (size_t)(q - s));
  if (lua_stringtonumber(d->L, lua_tostring(d->L, -1)) == 0)
    return dec_fail(d, s, "invalid number");
  lua_Number x = lua_tonumber(d->L, -1);
  lua_pop(d->L, 2);
  if (isinf(x)) return dec_fail(d, s, "number out of range");
  push_number(d->L, x);
  return 1;
}

static int parse_number(Decoder *d) {
  const char *s = d->p;
  int isfloat, finite;
  if (!scan_number(d, &isfloat, &finite)) return 0;
  const char *q = d->p;
  if (!isfloat) { /* exact int64 when it fits; overflow falls through to a float */
    int neg = *s == '-';
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
  return convert_number(d, s, q);
}

/* parse_number's checks; only a number that might be out of range is converted (and dropped). */
static int skip_number(Decoder *d) {
  const char *s = d->p;
  int isfloat, finite;
  if (!scan_number(d, &isfloat, &finite)) return 0;
  if (finite) return 1;
  if (!lua_checkstack(d->L, 3)) return dec_fail(d, s, "out of Lua stack");
  if (!convert_number(d, s, d->p)) return 0;
  lua_pop(d->L, 1);
  return 1;
}

static int parse_literal(Decoder *d, const char *word, size_t len) {
  if ((size_t)(d->end - d->p) < len || memcmp(d->p, word, len) != 0)
    return dec_fail(d, d->p, "invalid literal");
  d->p += len;
  return 1;
}

/* ---------------------------------------------------------------- skipping */

/* Moves past one value, checking it exactly as parse_value would, without touching the Lua stack
 * (bar a rare out-of-range check in skip_number). Iterative: open[] holds the closing bracket
 * owed at each level entered here. */
static int skip_value(Decoder *d) {
  char open[JSON_MAX_DEPTH];
  int n = 0;
value:
  skip_ws(d);
  if (d->p >= d->end) return dec_fail(d, d->p, "expected value");
  switch (*d->p) {
  case '{':
  case '[': {
    char close = *d->p == '{' ? '}' : ']';
    if (++d->depth > JSON_MAX_DEPTH) return dec_fail(d, d->p, "nesting deeper than 200 levels");
    d->p++;
    skip_ws(d);
    if (d->p < d->end && *d->p == close) {
      d->p++;
      d->depth--;
      break;
    }
    open[n++] = close;
    if (close == ']') goto value;
    goto member;
  }
  case '"':
    if (!skip_string(d)) return 0;
    break;
  case 't':
    if (!parse_literal(d, "true", 4)) return 0;
    break;
  case 'f':
    if (!parse_literal(d, "false", 5)) return 0;
    break;
  case 'n':
    if (!parse_literal(d, "null", 4)) return 0;
    break;
  default:
    if (*d->p != '-' && (*d->p < '0' || *d->p > '9')) return dec_fail(d, d->p, "expected value");
    if (!skip_number(d)) return 0;
  }
  /* a value is done: move to the next element or member, closing what ends here */
  while (n > 0) {
    char close = open[n - 1];
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      if (close == ']') goto value;
      goto member;
    }
    if (d->p < d->end && *d->p == close) {
      d->p++;
      d->depth--;
      n--;
      continue;
    }
    return dec_fail(d, d->p, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
  }
  return 1;
member:
  skip_ws(d);
  if (d->p >= d->end || *d->p != '"') return dec_fail(d, d->p, "expected string key");
  if (!skip_string(d)) return 0;
  skip_ws(d);
  if (d->p >= d->end || *d->p != ':') return dec_fail(d, d->p, "expected ':'");
  d->p++;
  goto value;
}

/* ---------------------------------------------------------------- selection */

static unsigned sel_bucket(const Select *sel, const char *s, size_t n) {
  unsigned h = (unsigned)n;
  if (n) {
    h = h * 0x01000193u ^ (unsigned char)s[0];
    h = h * 0x01000193u ^ (unsigned char)s[n / 2];
    h = h * 0x01000193u ^ (unsigned char)s[n - 1];
  }
  return (h * 2654435769u) >> sel->shift;
}

/* 1-based index of the name s[0..n) in the selection, or 0. */
static int sel_find(const Select *sel, const char *s, size_t n) {
  if (!(sel->lens >> (n < 63 ? n : 63) & 1)) return 0;
  for (int i = sel->bucket[sel_bucket(sel, s, n)]; i; i = sel->names[i - 1].next) {
    const SelName *k = &sel->names[i - 1];
    if (k->len == n && memcmp(k->s, s, n) == 0) return i;
  }
  return 0;
}

/* Reads opts.select (at stack index idx) into sel: a list of names or a set {name = true}.
 * Pushes the names table and the hash's userdata. */
static void sel_build(lua_State *L, int idx, Select *sel) {
  lua_newtable(L);
  sel->namesidx = lua_gettop(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    if (kt == LUA_TSTRING) {
      if (lua_toboolean(L, -1)) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, sel->namesidx, ++n);
      }
    } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2) && lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, sel->namesidx, ++n);
    } else {
      luaL_argerror(L, 2, "option 'select' must be a list of key names or a set {name = true}");
    }
    lua_pop(L, 1);
  }
  unsigned bits = 3;
  while ((1u << bits) < 2u * (unsigned)n && bits < 24) bits++;
  size_t nb = (size_t)1 << bits;
  sel->shift = 32 - bits;
  sel->lens = 0;
  sel->bucket = lua_newuserdatauv(L, nb * sizeof(int) + (size_t)n * sizeof(SelName), 0);
  sel->names = (SelName *)(void *)(sel->bucket + nb);
  memset(sel->bucket, 0, nb * sizeof(int));
  for (int i = 1; i <= n; i++) {
    SelName *k = &sel->names[i - 1];
    lua_rawgeti(L, sel->namesidx, i);
    k->s = lua_tolstring(L, -1, &k->len);
    lua_pop(L, 1);
    sel->lens |= (uint64_t)1 << (k->len < 63 ? k->len : 63);
    unsigned b = sel_bucket(sel, k->s, k->len);
    k->next = sel->bucket[b];
    sel->bucket[b] = i;
  }
}

/* d->p is at a key's opening quote. Returns 1 with the key pushed when it is selected, 0 (nothing
 * pushed) when it is not, -1 on an error. Only a key with escapes is decoded to be compared. */
static int select_key(Decoder *d) {
  const char *k = d->p + 1, *q = scan_plain(k, d->end);
  if (q < d->end && *q == '"') {
    int i = sel_find(d->sel, k, (size_t)(q - k));
    d->p = q + 1;
    if (!i) return 0;
    lua_rawgeti(d->L, d->sel->namesidx, i);
    return 1;
  }
  if (!parse_string(d)) return -1;
  size_t n;
  const char *s = lua_tolstring(d->L, -1, &n);
  if (sel_find(d->sel, s, n)) return 1;
  lua_pop(d->L, 1);
  return 0;
}

/* ---------------------------------------------------------------- containers */

static int enter(Decoder *d) {
  if (++d->depth > JSON_MAX_DEPTH)
    return dec_fail(d, d->p, "nesting deeper than 200 levels");
  if (!lua_checkstack(d->L, 8)) return dec_fail(d, d->p, "out of Lua stack");
  d->p++;
  return 1;
}

static int parse_selected(Decoder *d);

/* items: this is the item list, whose object elements keep only the selected keys. */
static int parse_array(Decoder *d, int items) {
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
    if (items) skip_ws(d);
    if (items && d->p < d->end && *d->p == '{') {
      if (!parse_selected(d)) return 0;
    } else if (!parse_value(d)) {
      return 0;
    }
    lua_rawseti(d->L, -2, i);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') { d->p++; continue; }
    if (d->p < d->end && *d->p == ']') { d->p++; break; }
    return dec_fail(d, d->p, "expected ',' or ']'");
  }
  d->depth--;
  return 1;
}

static void close_object(Decoder *d, size_t members) {
  d->ohint[d->depth] = (unsigned short)(members < JSON_HINT_MAX ? members : JSON_HINT_MAX);
  d->depth--;
}

/* top: this is the top-level object, whose member d->at (when set) may hold the item list. */
static int parse_object(Decoder *d, int top) {
  if (!enter(d)) return 0;
  lua_createtable(d->L, 0, d->ohint[d->depth]);
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    close_object(d, 0);
    return 1;
  }
  for (size_t n = 1;; n++) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"') return dec_fail(d, d->p, "expected string key");
    if (!parse_string(d)) return 0;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') return dec_fail(d, d->p, "expected ':'");
    d->p++;
    int list = 0;
    if (top && d->at) {
      size_t klen;
      const char *k = lua_tolstring(d->L, -1, &klen);
      skip_ws(d);
      list = klen == d->atlen && memcmp(k, d->at, klen) == 0 && d->p < d->end && *d->p == '[';
    }
    if (!(list ? parse_array(d, 1) : parse_value(d))) return 0;
    lua_rawset(d->L, -3); /* duplicate keys: the last one wins */
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') { d->p++; continue; }
    if (d->p < d->end && *d->p == '}') { d->p++; close_object(d, n); break; }
    return dec_fail(d, d->p, "expected ',' or '}'");
  }
  return 1;
}

/* An item of the item list: an object keeping only the selected keys (the rest is skipped). */
static int parse_selected(Decoder *d) {
  if (!enter(d)) return 0;
  lua_createtable(d->L, 0, d->ohint[d->depth]);
  if (d->metaidx) {
    lua_pushvalue(d->L, d->metaidx);
    lua_setmetatable(d->L, -2);
  }
  size_t kept = 0;
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    close_object(d, 0);
    return 1;
  }
  for (;;) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"') return dec_fail(d, d->p, "expected string key");
    int keep = select_key(d);
    if (keep < 0) return 0;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') return dec_fail(d, d->p, "expected ':'");
    d->p++;
    if (keep) {
      if (!parse_value(d)) return 0;
      lua_rawset(d->L, -3);
      kept++;
    } else if (!skip_value(d)) {
      return 0;
    }
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') { d->p++; continue; }
    if (d->p < d->end && *d->p == '}') { d->p++; close_object(d, kept); break; }
    return dec_fail(d, d->p, "expected ',' or '}'");
  }
  return 1;
}

static int parse_value(Decoder *d) {
  skip_ws(d);
  if (d->p >= d->end) return dec_fail(d, d->p, "expected value");
  switch (*d->p) {
  case '{': return parse_object(d, 0);
  case '[': return parse_array(d, 0);
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

/* The document: with a selection, the item list gets parse_array(d, 1); any other shape is
 * decoded in full. */
static int parse_root(Decoder *d) {
  if (d->sel) {
    skip_ws(d);
    if (d->p < d->end && !d->at && *d->p == '[') return parse_array(d, 1);
    if (d->p < d->end && d->at && *d->p == '{') return parse_object(d, 1);
  }
  return parse_value(d);
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

/* json_valid: whether s..s+len is one JSON document json.decode would accept (same checks,
 * same depth limit), creating no Lua values: json.rows (json_rows.c) walks only valid text. */
int json_valid(lua_State *L, const char *s, size_t len) {
  Decoder d = {.L = L, .start = s, .p = s, .end = s + len};
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) d.start = d.p = s + 3;
  int top = lua_gettop(L);
  int ok = skip_value(&d);
  lua_settop(L, top);
  if (!ok) return 0;
  skip_ws(&d);
  return d.p == d.end;
}

/* json.decode(s [, {select = names, at = key, meta = mt}]) -> value | nil, "line L column C: message" */
int json_decode(lua_State *L) {
  size_t len;
  luaL_checktype(L, 1, LUA_TSTRING);
  const char *s = lua_tolstring(L, 1, &len);
  Decoder d = {.L = L, .start = s, .p = s, .end = s + len, .mtidx = lua_upvalueindex(1)};
  Select sel;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    int t = lua_getfield(L, 2, "at");
    if (t == LUA_TSTRING) d.at = lua_tolstring(L, 3, &d.atlen);
    else if (t != LUA_TNIL) luaL_argerror(L, 2, "option 'at' must be a string");
    t = lua_getfield(L, 2, "select");
    if (t == LUA_TTABLE) {
      sel_build(L, 4, &sel);
      d.sel = &sel;
    } else if (t != LUA_TNIL) {
      luaL_argerror(L, 2, "option 'select' must be a table");
    }
    t = lua_getfield(L, 2, "meta");
    if (t == LUA_TTABLE && d.sel) d.metaidx = lua_gettop(L);
    else if (t != LUA_TNIL) luaL_argerror(L, 2, "option 'meta' must be a table, given with 'select'");
  }
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) d.start = d.p = s + 3; /* UTF-8 BOM */
  int top = lua_gettop(L);
  if (parse_root(&d)) {
    skip_ws(&d);
    if (d.p == d.end) return 1;
    dec_fail(&d, d.p, "expected end of input");
  }
  lua_settop(L, top);
  lua_pushnil(L);
  push_decode_error(&d);
  return 2;
}
