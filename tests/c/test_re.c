/* Unit tests for metasync.re (engine/re.c). */
#include "testutil.h"

#define R "local re = require 'metasync.re'\n"

static void test_compile(lua_State *L) {
  LUA_CHECK(L, R "local rx = re.compile('a(b+)c')\n"
               "assert(type(rx) == 'userdata')\n"
               "assert(tostring(rx) == 're: a(b+)c', tostring(rx))\n"
               "local bad, err = re.compile('ab(c')\n"
               "assert(bad == nil and err:match('^offset 4: .*parenthesis'), err)\n"
               "bad, err = re.compile('x{2,1}')\n"
               "assert(bad == nil and err:match('^offset %d+: '), err)\n"
               "bad, err = re.compile('a\\255b')\n"
               "assert(bad == nil and err:find('UTF%-8'), err)\n"
               "local ok, e = pcall(re.compile, 'a', 'q')\n"
               "assert(not ok and e:find(\"unknown flag 'q'\"), e)\n"
               "assert(not pcall(re.compile))\n"
               "assert(not pcall(re.compile, {}))\n");
  /* __close and __gc: a closed pattern refuses further use */
  LUA_CHECK(L, R "local kept\n"
               "do local rx <close> = re.compile('x') kept = rx assert(rx:match('x') == 'x') end\n"
               "assert(tostring(kept) == 're: x (closed)')\n"
               "local ok, e = pcall(kept.match, kept, 'x')\n"
               "assert(not ok and e:find('closed pattern'), e)\n"
               "getmetatable(kept).__gc(kept)  -- freeing twice is harmless\n"
               "for i = 1, 2000 do re.compile('(a|b)' .. i) end\n"
               "collectgarbage() collectgarbage()\n"
               "assert(not pcall(re.compile('x').match, 'notrx', 'x'))\n");
}

static void test_match_find(lua_State *L) {
  LUA_CHECK(L, R "local rx = re.compile('(\\\\d+)-(\\\\d+)')\n"
               "local a, b = rx:match('tel 12-345 x')\n"
               "assert(a == '12' and b == '345')\n"
               "assert(re.compile('\\\\d+'):match('ab 42 c') == '42')\n"
               "assert(rx:match('nothing') == nil)\n"
               "local s, e, c1, c2 = rx:find('tel 12-345 x')\n"
               "assert(s == 5 and e == 10 and c1 == '12' and c2 == '345')\n"
               "s, e = re.compile('b+'):find('abbbc')\n"
               "assert(s == 2 and e == 4 and select('#', re.compile('b+'):find('abbbc')) == 2)\n"
               "-- init: 1-based, negative from the end, past the end gives nil\n"
               "local d = re.compile('\\\\d')\n"
               "assert(d:match('1a2b3', 2) == '2' and d:match('1a2b3', -1) == '3')\n"
               "assert(d:match('1a2b3', -100) == '1' and d:match('1a2b3', 0) == '1')\n"
               "assert(d:match('1a2b3', 6) == nil and d:match('1a2b3', 60) == nil)\n"
               "assert(re.compile('$'):find('abc', 4) == 4)\n"
               "assert(select(2, d:find('1a2b3', 4)) == 5)\n"
               "-- unset groups are false, keeping positions\n"
               "local x, y, z = re.compile('(a)|(b)(c)?'):match('b')\n"
               "assert(x == false and y == 'b' and z == false)\n"
               "-- the subject may hold NUL bytes and the pattern too\n"
               "assert(re.compile('a\\0b'):find('xa\\0b') == 2)\n");
  /* lookbehind sees text before init, ^ does not match at init */
  LUA_CHECK(L, R "assert(re.compile('(?<=a)b'):find('ab', 2) == 2)\n"
               "assert(re.compile('^b'):find('ab', 2) == nil)\n");
}

static void test_exec(lua_State *L) {
  LUA_CHECK(L, R "local rx = re.compile('(?<year>\\\\d{4})-(?<month>\\\\d\\\\d)(-(?<day>\\\\d\\\\d))?')\n"
               "local s, e, caps = rx:exec('on 2024-06 ok')\n"
               "assert(s == 4 and e == 10)\n"
               "assert(caps[1] == '2024' and caps[2] == '06' and caps[3] == false and caps[4] == false)\n"
               "assert(caps.year == '2024' and caps.month == '06' and caps.day == false)\n"
               "s, e, caps = rx:exec('2024-06-30')\n"
               "assert(caps.day == '30' and caps[3] == '-30' and #caps == 4)\n"
               "assert(rx:exec('none') == nil)\n"
               "s, e, caps = re.compile('x+'):exec('axxb')\n"
               "assert(s == 2 and e == 3 and next(caps) == nil)\n"
               "s, e, caps = re.exec('k=v', '(?<k>\\\\w)=(?<v>\\\\w)')\n"
               "assert(caps.k == 'k' and caps.v == 'v')\n");
}

static void test_flags(lua_State *L) {
  LUA_CHECK(L, R "assert(re.compile('abc', 'i'):match('xABCx') == 'ABC')\n"
               "assert(re.compile('abc'):match('ABC') == nil)\n"
               "assert(re.compile('\\u{e9}t\\u{e9}', 'i'):match('\\u{c9}T\\u{c9}') == '\\u{c9}T\\u{c9}')\n"
               "assert(re.compile('^b$', 'm'):match('a\\nb\\nc') == 'b')\n"
               "assert(re.compile('^b$'):match('a\\nb\\nc') == nil)\n"
               "assert(re.compile('a.c', 's'):match('a\\nc') == 'a\\nc')\n"
               "assert(re.compile('a.c'):match('a\\nc') == nil)\n"
               "assert(re.compile('a b # comment\\n c', 'x'):match('abc') == 'abc')\n"
               "assert(re.compile('A.C', 'is'):match('a\\nc') == 'a\\nc')\n"
               "-- UTF-8 mode: . is one character, \\d stays ASCII\n"
               "assert(re.compile('^.$'):match('\\u{20ac}') == '\\u{20ac}')\n"
               "assert(re.compile('\\\\d'):match('\\u{663}') == nil)\n"
               "assert(re.match('ab', 'B', 1, 'i') == 'b')\n"
               "assert(not pcall(re.match, 'ab', 'b', 1, 'z'))\n");
}

static void test_gmatch(lua_State *L) {
  LUA_CHECK(L, R "local out = {}\n"
               "for k, v in re.compile('(\\\\w+)=(\\\\w+)'):gmatch('a=1, b=2,c=3') do out[#out + 1] = k .. v end\n"
               "assert(table.concat(out, ' ') == 'a1 b2 c3')\n"
               "out = {}\n"
               "for w in re.gmatch('one two  three', '\\\\S+') do out[#out + 1] = w end\n"
               "assert(#out == 3 and out[3] == 'three')\n"
               "-- empty matches: no infinite loop, one per position, none adjacent to a match\n"
               "out = {}\n"
               "for m in re.compile('x*'):gmatch('axxb') do out[#out + 1] = '<' .. m .. '>' end\n"
               "assert(table.concat(out) == '<><xx><>', table.concat(out))  -- as string.gmatch\n"
               "local n = 0\n"
               "for m in re.compile(''):gmatch('\\u{e9}\\u{20ac}a') do n = n + 1 assert(m == '') end\n"
               "assert(n == 4, n)  -- between UTF-8 characters, not bytes\n"
               "local it = re.compile('a'):gmatch('a')\n"
               "assert(it() == 'a' and it() == nil and it() == nil)\n"
               "n = 0 for _ in re.compile('b'):gmatch('bbb', 2) do n = n + 1 end\n"
               "assert(n == 2)\n"
               "local ok, e = pcall(function() for _ in re.gmatch('a\\255', 'a') do end end)\n"
               "assert(not ok and e:find('UTF%-8'), e)\n");
}

static void test_gsub(lua_State *L) {
  LUA_CHECK(L, R "local rx = re.compile('(\\\\w+)@(\\\\w+)')\n"
               "local s, n = rx:gsub('ann@x, bob@y', '%2:%1 (%0) 100%%')\n"
               "assert(s == 'x:ann (ann@x) 100%, y:bob (bob@y) 100%' and n == 2, s)\n"
               "s, n = re.compile('o'):gsub('foo boo', '0', 3)\n"
               "assert(s == 'f00 b0o' and n == 3)\n"
               "assert(re.compile('o'):gsub('foo', '[%1]') == 'f[o][o]')  -- %1 = whole match\n"
               "assert(re.compile('o'):gsub('foo', 7) == 'f77')\n"
               "assert(re.compile('z'):gsub('foo', 'x') == 'foo')\n"
               "assert(select(2, re.compile('z'):gsub('foo', 'x')) == 0)\n"
               "assert(re.compile('o'):gsub('foo', 'x', 0) == 'foo')\n"
               "local ok, e = pcall(rx.gsub, rx, 'a@b', '%3')\n"
               "assert(not ok and e:find('invalid capture index %%3'), e)\n"
               "ok, e = pcall(rx.gsub, rx, 'a@b', '%x')\n"
               "assert(not ok and e:find(\"invalid use of '%%'\"), e)\n"
               "ok, e = pcall(rx.gsub, rx, 'a@b', 'end%')\n"
               "assert(not ok, e)\n"
               "assert(not pcall(rx.gsub, rx, 'a@b', true))\n"
               "-- table: keyed by the first capture (or the whole match); false/nil keeps it\n"
               "local t = {ann = 'ANN', bob = false}\n"
               "s, n = rx:gsub('ann@x bob@y cy@z', t)\n"
               "assert(s == 'ANN bob@y cy@z' and n == 3, s)\n"
               "assert(re.compile('\\\\w+'):gsub('a b', {a = 1}) == '1 b')\n"
               "ok, e = pcall(re.gsub, 'a', 'a', {a = {}})\n"
               "assert(not ok and e:find('invalid replacement value %(a table%)'), e)\n"
               "-- function: called with the captures\n"
               "s = rx:gsub('ann@x bob@y', function(u, h) if u == 'bob' then return nil end return h .. '/' .. u end)\n"
               "assert(s == 'x/ann bob@y', s)\n"
               "s = re.gsub('a1b22', '\\\\d+', function(d) return #d end)\n"
               "assert(s == 'a1b2', s)\n"
               "-- a callback that uses the same pattern must not disturb the outer gsub\n"
               "local d = re.compile('\\\\d')\n"
               "s = d:gsub('1 2 3', function(x) assert(d:match('z9') == '9') return x + 1 end)\n"
               "assert(s == '2 3 4', s)\n"
               "-- empty matches\n"
               "assert(re.gsub('abc', 'x*', '-') == '-a-b-c-')\n"
               "assert(re.gsub('baaac', 'a*', '-') == '-b-c-')\n"
               "assert(re.gsub('\\u{e9}\\u{e9}', '', '.') == '.\\u{e9}.\\u{e9}.')\n"
               "assert(re.gsub('hello world', '^', '> ') == '> hello world')\n"
               "assert(re.gsub('a\\nb', '^', '> ', nil, 'm') == '> a\\n> b')\n"
               "assert(re.gsub('ABC', 'b', '_', nil, 'i') == 'A_C')\n"
               "-- invalid UTF-8 subject: nil, message\n"
               "local r, err = re.gsub('ok\\255', 'o', 'x')\n"
               "assert(r == nil and err:find('UTF%-8'), err)\n");
}

static void test_errors_and_limits(lua_State *L) {
  LUA_CHECK(L, R "local v, err = re.compile('a'):match('xx\\255a')\n"
               "assert(v == nil and err:match('^offset 2: UTF%-8 error'), err)\n"
               "v, err = re.find('\\u{e9}a', 'a', 2)  -- init inside a character\n"
               "assert(v == nil and type(err) == 'string', err)\n"
               "-- catastrophic backtracking stops with a message instead of hanging\n"
               "local rx = re.compile('(a+)+$')\n"
               "v, err = rx:match(string.rep('a', 40) .. 'b')\n"
               "assert(v == nil and err == 'match limit exceeded', err)\n"
               "v, err = rx:gsub(string.rep('a', 40) .. 'b', 'x')\n"
               "assert(v == nil and err == 'match limit exceeded', err)\n"
               "assert(rx:match('aaa') == 'aaa')  -- still usable afterwards\n"
               "-- module functions raise on a bad pattern\n"
               "local ok, e = pcall(re.match, 'x', '(')\n"
               "assert(not ok and e:find('bad argument #2') and e:find('offset 1'), e)\n"
               "assert(not pcall(re.match, nil, 'x'))\n"
               "assert(not pcall(re.compile('x').match, re.compile('x'), {}))\n"
               "-- a long subject with many matches stays linear (UTF check once per gsub)\n"
               "local big = string.rep('ab\\u{e9} ', 200000)\n"
               "local t0 = os.clock()\n"
               "local out, n = re.gsub(big, '\\u{e9}', 'e')\n"
               "assert(n == 200000 and #out == #big - 200000)\n"
               "assert(os.clock() - t0 < 5, 'gsub too slow')\n");
}

/* The module-level cache hands back the same compiled pattern for the same (flags, pattern). */
static int cache_probe(lua_State *L) {
  lua_getupvalue(L, 1, 1); /* re.match's cache table */
  return 1;
}

static void test_cache(lua_State *L) {
  lua_register(L, "cache_of", cache_probe);
  LUA_CHECK(L, R "local cache = cache_of(re.match)\n"
               "assert(type(cache) == 'table' and getmetatable(cache).__mode == 'v')\n"
               "collectgarbage() collectgarbage()\n"
               "assert(re.match('abc', 'b') == 'b')\n"
               "local n = 0 for k, v in pairs(cache) do n = n + 1 assert(k == '\\0b' and tostring(v) == 're: b') end\n"
               "assert(n == 1)\n"
               "local first = cache['\\0b']\n"
               "assert(re.find('abc', 'b') == 2 and cache['\\0b'] == first)\n"
               "re.match('ABC', 'b', 1, 'i')\n"
               "assert(cache['i\\0b'] and cache['i\\0b'] ~= first)\n"
               "assert(cache_of(re.gsub) == cache and cache_of(re.gmatch) == cache)\n"
               "first = nil collectgarbage() collectgarbage()\n"
               "assert(next(cache) == nil)  -- unused entries do not pile up\n"
               "assert(re.match('abc', 'b') == 'b')\n");
}

int main(void) {
  lua_State *L = tu_state();
  test_compile(L);
  test_match_find(L);
  test_exec(L);
  test_flags(L);
  test_gmatch(L);
  test_gsub(L);
  test_errors_and_limits(L);
  test_cache(L);
  char path[4096];
  if (tu_lua_twin(path, sizeof path, __FILE__, "test_re.lua")) LUA_FILE_CHECK(L, path);
  lua_close(L);
  return tu_done("test_re");
}
