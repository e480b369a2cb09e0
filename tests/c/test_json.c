/* Unit tests for metasync.json (engine/json.c). */
#include "testutil.h"

static void test_numbers(lua_State *L) {
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local t = json.decode('[5, -3, 0, 2.5, 1e3, 5.0, -0, 1.5e-3]')\n"
               "assert(math.type(t[1]) == 'integer' and t[1] == 5)\n"
               "assert(math.type(t[2]) == 'integer' and t[2] == -3)\n"
               "assert(math.type(t[3]) == 'integer' and t[3] == 0)\n"
               "assert(math.type(t[4]) == 'float' and t[4] == 2.5)\n"
               "assert(math.type(t[5]) == 'integer' and t[5] == 1000)\n"
               "assert(math.type(t[6]) == 'integer' and t[6] == 5)\n"
               "assert(math.type(t[7]) == 'integer' and t[7] == 0)\n"
               "assert(t[8] == 0.0015)\n");
  /* exact int64, including the extremes; beyond it a float */
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local t = json.decode('[9007199254740993, 9223372036854775807, "
               "-9223372036854775808, 12345678901234567890, 9223372036854775808]')\n"
               "assert(t[1] == 9007199254740993 and math.type(t[1]) == 'integer')\n"
               "assert(t[2] == math.maxinteger and t[3] == math.mininteger)\n"
               "assert(math.type(t[4]) == 'float' and t[4] == 12345678901234567890.0)\n"
               "assert(math.type(t[5]) == 'float' and t[5] == 2^63)\n");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({9007199254740993, 123456789012345678, "
                       "math.mininteger, -1, 0})"),
            "[9007199254740993,123456789012345678,-9223372036854775808,-1,0]");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({0.1, 2.5, -1e300, 1/3, 5.0, 1e21})"),
            "[0.1,2.5,-1e+300,0.3333333333333333,5,1e+21]");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode(0.1 + 0.2)"), "0.30000000000000004");
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "for _, v in ipairs{0/0, 1/0, -1/0} do\n"
               "  local ok, err = pcall(json.encode, {v})\n"
               "  assert(not ok and err:find('NaN or infinity'), err)\n"
               "end\n"
               "local v, err = json.decode('[1e400]')\n"
               "assert(v == nil and err:find('out of range'), err)\n"
               "for _, bad in ipairs{'[NaN]', '[Infinity]', '[0x10]', '[01]', '[1.]', '[.5]', "
               "'[-]', '[1e]', '[+1]'} do\n"
               "  assert(json.decode(bad) == nil, bad)\n"
               "end\n");
}

static void test_values(lua_State *L) {
  LUA_CHECK(L, "local json, cjson = require 'metasync.json', require 'cjson'\n"
               "assert(json.null == cjson.null and type(json.null) == 'userdata')\n"
               "local t = json.decode('{\"a\": null, \"b\": [null, true, false]}')\n"
               "assert(t.a == json.null and t.b[1] == json.null)\n"
               "assert(t.b[2] == true and t.b[3] == false and #t.b == 3)\n"
               "assert(json.decode('null') == json.null)\n"
               "assert(json.decode('  \"x\"  ') == 'x' and json.decode('7') == 7)\n"
               "assert(json.encode(json.null) == 'null' and json.encode(nil) == 'null')\n"
               "assert(json.encode{a = json.null} == '{\"a\":null}')\n"
               "assert(json.encode(true) == 'true' and json.encode(false) == 'false')\n");
  /* strings: escapes both ways, unicode, surrogate pairs, embedded NUL */
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local s = json.decode([[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\"]])\n"
               "assert(s == 'a\"b\\\\c/d\\b\\f\\n\\r\\tA\\u{e9}\\u{20ac}', s)\n"
               "assert(json.decode([[\"\\ud83d\\ude00\"]]) == '\\u{1F600}')\n"
               "assert(json.decode([[\"a\\u0000b\"]]) == 'a\\0b')\n"
               "assert(json.decode('\"caf\\u{e9}\"') == 'caf\\u{e9}')\n"
               "for _, bad in ipairs{[[\"\\ud800\"]], [[\"\\udc00\"]], [[\"\\ud800\\u0041\"]], "
               "[[\"\\x\"]], [[\"\\u12\"]], [[\"\\u12g4\"]], '\"abc', '\"abc\\\\'} do\n"
               "  local v, err = json.decode(bad)\n"
               "  assert(v == nil and type(err) == 'string', bad)\n"
               "end\n");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode('q\"b\\\\s/\\n\\r\\t\\b\\f\\1\\31\\127\\u{e9}')"),
            "\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\xc3\xa9\"");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode('a\\0b')"), "\"a\\u0000b\"");
}

static void test_arrays(lua_State *L) {
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode(require'metasync.json'.array({}))"), "[]");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode(require'metasync.json'.array())"), "[]");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({})"), "{}");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({1, 'two', {3}})"), "[1,\"two\",[3]]");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({a = {}, b = require'metasync.json'.array{}}, "
                       "{sort_keys = true})"),
            "{\"a\":{},\"b\":[]}");
  /* decoded arrays carry the mark, so [] survives a round trip */
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode(require'metasync.json'.decode("
                       "'{\"x\":[],\"y\":{}}'), {sort_keys = true})"),
            "{\"x\":[],\"y\":{}}");
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local t = {}\n"
               "assert(json.array(t) == t and json.is_array(t))\n"
               "assert(json.array(t) == t)  -- marking twice is fine\n"
               "assert(not json.is_array({}) and not json.is_array('x') and not json.is_array())\n"
               "assert(json.is_array(json.decode('[1]')) and not json.is_array(json.decode('{}')))\n"
               "assert(getmetatable(json.array{}) == getmetatable(json.array{}))\n"
               "local ok, err = pcall(json.array, setmetatable({}, {}))\n"
               "assert(not ok and err:find('already has a metatable'), err)\n"
               "assert(not pcall(json.array, 5))\n"
               "ok, err = pcall(json.encode, json.array{1, nil, 3})\n"
               "assert(not ok and err:find('holes'), err)\n"
               "ok, err = pcall(json.encode, json.array{x = 1})\n"
               "assert(not ok and err:find('string keys'), err)\n");
  /* sparse and non-sequence integer keys become an object with string keys */
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({[1]='a', [3]='c'}, {sort_keys=true})"),
            "{\"1\":\"a\",\"3\":\"c\"}");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({[10]='x', [2]='y', [-1]='z'}, {sort_keys=true})"),
            "{\"-1\":\"z\",\"2\":\"y\",\"10\":\"x\"}");
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local ok, err = pcall(json.encode, {1, 2, x = 3})\n"
               "assert(not ok and err:find('mixed'), err)\n"
               "ok, err = pcall(json.encode, {[true] = 1})\n"
               "assert(not ok and err:find('cannot encode table with key of type boolean'), err)\n"
               "ok, err = pcall(json.encode, {[1.5] = 1})\n"
               "assert(not ok and err:find('key of type number'), err)\n"
               "ok, err = pcall(json.encode, {f = print})\n"
               "assert(not ok and err:find('cannot encode value of type function'), err)\n"
               "ok, err = pcall(json.encode, {co = coroutine.create(print)})\n"
               "assert(not ok and err:find('thread'), err)\n");
}

/* encode errors say where the bad value is */
static void test_error_paths(lua_State *L) {
  CHECK_STR(tu_eval(L, "select(2, pcall(require'metasync.json'.encode, "
                       "{certs = {{id = 1}, {id = 2, fn = print}}}))"),
            "cannot encode value of type function (at $.certs[2].fn)");
  CHECK_STR(tu_eval(L, "select(2, pcall(require'metasync.json'.encode, "
                       "{['a b'] = {[7] = {x = 0/0}}}))"),
            "cannot encode NaN or infinity as JSON (at $[\"a b\"][\"7\"].x)");
  CHECK_STR(tu_eval(L, "select(2, pcall(require'metasync.json'.encode, {list = {1, 2, k = 3}}))"),
            "cannot encode table with mixed string and integer keys (at $.list)");
  CHECK_STR(tu_eval(L, "select(2, pcall(require'metasync.json'.encode, print))"),
            "cannot encode value of type function");
}

static void test_pretty(lua_State *L) {
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({b = {1, 2}, a = 'x', c = {}, "
                       "d = require'metasync.json'.array(), e = {z = true, y = false}}, {pretty = true})"),
            "{\n"
            "  \"a\": \"x\",\n"
            "  \"b\": [\n"
            "    1,\n"
            "    2\n"
            "  ],\n"
            "  \"c\": {},\n"
            "  \"d\": [],\n"
            "  \"e\": {\n"
            "    \"y\": false,\n"
            "    \"z\": true\n"
            "  }\n"
            "}");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({k = {1}}, {pretty = true, indent = 4})"),
            "{\n    \"k\": [\n        1\n    ]\n}");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode({zeta = 1, alpha = 2, Mid = 3, al = 4}, "
                       "{sort_keys = true})"),
            "{\"Mid\":3,\"al\":4,\"alpha\":2,\"zeta\":1}");
  CHECK_STR(tu_eval(L, "require'metasync.json'.encode(5, {pretty = true})"), "5");
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "assert(not pcall(json.encode, {}, {pretty = 'yes'}))\n"
               "assert(not pcall(json.encode, {}, {indent = 99}))\n"
               "assert(not pcall(json.encode, {}, 'pretty'))\n"
               "assert(not pcall(json.encode))\n");
}

static void test_depth(lua_State *L) {
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local ok200 = string.rep('[', 200) .. string.rep(']', 200)\n"
               "local v = json.decode(ok200)\n"
               "assert(type(v) == 'table')\n"
               "assert(json.encode(v) == ok200)\n"
               "local bad = string.rep('[', 201) .. string.rep(']', 201)\n"
               "local r, err = json.decode(bad)\n"
               "assert(r == nil and err:find('line 1 column 201: nesting deeper than 200'), err)\n"
               "r, err = json.decode(string.rep('{\"a\":', 300) .. '1' .. string.rep('}', 300))\n"
               "assert(r == nil and err:find('nesting'), err)\n"
               "-- a hostile input must not crash: a million brackets\n"
               "assert(json.decode(string.rep('[', 1000000)) == nil)\n"
               "local t = {} local cur = t\n"
               "for i = 1, 199 do cur[1] = {} cur = cur[1] end\n"
               "assert(#json.encode(t) == 400)\n"
               "cur[1] = {}\n"
               "local ok, e = pcall(json.encode, t)\n"
               "assert(not ok and e:find('nesting deeper than 200'), e)\n"
               "local cyc = {} cyc.self = cyc\n"
               "ok, e = pcall(json.encode, cyc)\n"
               "assert(not ok and e:find('cycle'), e)\n"
               "local shared = {1}\n"
               "assert(json.encode({shared, shared}) == '[[1],[1]]')  -- a DAG is not a cycle\n");
}

static void test_errors(lua_State *L) {
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('{\\n  \"a\": 1,\\n  \"b\": [1, 2,, 3]\\n}'))"),
            "line 3 column 14: expected value, found ','");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode(''))"),
            "line 1 column 1: expected value (unexpected end of input)");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('  \\n  '))"),
            "line 2 column 3: expected value (unexpected end of input)");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('[1] x'))"),
            "line 1 column 5: expected end of input, found 'x'");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('{\"a\" 1}'))"),
            "line 1 column 6: expected ':', found '1'");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('{\"a\":1,}'))"),
            "line 1 column 8: expected string key, found '}'");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('[1 2]'))"),
            "line 1 column 4: expected ',' or ']', found '2'");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('[tru]'))"),
            "line 1 column 2: invalid literal, found 't'");
  /* columns count characters, not bytes */
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('[\"\\u{e9}\\u{e9}\", ?]'))"),
            "line 1 column 8: expected value, found '?'");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('\"abc'))"),
            "line 1 column 5: unterminated string (unexpected end of input)");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('[\\1]'))"),
            "line 1 column 2: expected value, found byte 0x01");
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local ok, err = pcall(json.decode, 42)\n"
               "assert(not ok and err:find('string expected'), err)\n"
               "assert(not pcall(json.decode))\n"
               "assert(not pcall(json.decode, {}))\n");
}

static void test_bom_and_roundtrip(lua_State *L) {
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local v = json.decode('\\239\\187\\191{\"openapi\": \"3.0.1\"}')\n"
               "assert(v.openapi == '3.0.1')\n"
               "local _, err = json.decode('\\239\\187\\191{\\n x}')\n"
               "assert(err == \"line 2 column 2: expected string key, found 'x'\", err)\n"
               "assert(json.decode('\\239\\187\\191') == nil)\n");
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local src = '{\"arr\":[1,2.5,\"s\",null,true,false,[],{}],\"n\":-12,\"o\":{\"k\":\"v\\\\n\"}}'\n"
               "local out = json.encode(json.decode(src), {sort_keys = true})\n"
               "assert(out == src, out)\n"
               "local pretty = json.encode(json.decode(src), {pretty = true})\n"
               "assert(json.encode(json.decode(pretty), {sort_keys = true}) == src)\n"
               "-- a big document: many elements, long strings\n"
               "local big = {}\n"
               "for i = 1, 20000 do big[i] = {id = i, name = ('n'):rep(i % 50), v = i / 7} end\n"
               "local s = json.encode(big)\n"
               "local back = json.decode(s)\n"
               "assert(#back == 20000 and back[20000].id == 20000 and back[777].v == 777 / 7)\n"
               "assert(math.type(back[5].id) == 'integer')\n"
               "local str = ('x\"\\\\'):rep(100000)\n"
               "assert(json.decode(json.encode(str)) == str)\n");
}

/* json.decode(s, {select = ..., at = ...}): only the selected keys of the items are decoded */
static void test_select(lua_State *L) {
#define DEC_SEL(doc, opts) \
  "require'metasync.json'.encode(require'metasync.json'.decode(" doc ", " opts "), {sort_keys = true})"
  CHECK_STR(tu_eval(L, DEC_SEL("'[{\"Id\": 9007199254740993, \"X\": {\"Id\": 1}, \"SerialNumber\": "
                               "null, \"Metadata\": {\"a\": [1, {\"b\": []}], \"c\": {}}}, 5, [{\"X\": 1}], []]'",
                               "{select = {'Id', 'SerialNumber', 'Metadata'}}")),
            "[{\"Id\":9007199254740993,\"Metadata\":{\"a\":[1,{\"b\":[]}],\"c\":{}},\"SerialNumber\":null},"
            "5,[{\"X\":1}],[]]");
  CHECK_STR(tu_eval(L, DEC_SEL("'{\"statusCode\": 0, \"message\": \"\", \"reports\": [{\"id\": 1, "
                               "\"junk\": [1, 2]}, {\"junk\": 3}], \"more\": {\"junk\": 4}}'",
                               "{select = {id = true}, at = 'reports'}")),
            "{\"message\":\"\",\"more\":{\"junk\":4},\"reports\":[{\"id\":1},{}],\"statusCode\":0}");
  CHECK_STR(tu_eval(L, DEC_SEL("'{\"reports\": {\"id\": 1, \"junk\": 2}}'",
                               "{select = {'id'}, at = 'reports'}")),
            "{\"reports\":{\"id\":1,\"junk\":2}}");
  CHECK_STR(tu_eval(L, DEC_SEL("'{\"a\": [{\"id\": 1, \"junk\": 2}]}'", "{select = {'id'}}")),
            "{\"a\":[{\"id\":1,\"junk\":2}]}");
  CHECK_STR(tu_eval(L, DEC_SEL("'[]'", "{select = {'id'}}")), "[]");
#undef DEC_SEL
  /* errors inside skipped members: the same message and position as without select */
#define SEL_ERR(doc) "select(2, require'metasync.json'.decode(" doc ", {select = {'keep'}}))"
  CHECK_STR(tu_eval(L, SEL_ERR("'[{\"keep\": 1,\\n  \"skip\": {\"a\": [1, 2,, 3]}}]'")),
            "line 2 column 23: expected value, found ','");
  CHECK_STR(tu_eval(L, SEL_ERR("'[{\"skip\": \"\\\\ud800x\"}]'")),
            "line 1 column 12: high surrogate not followed by a low surrogate, found '\\'");
  CHECK_STR(tu_eval(L, SEL_ERR("'[{\"skip\": \"\\\\q\"}]'")),
            "line 1 column 12: invalid escape in string, found '\\'");
  CHECK_STR(tu_eval(L, SEL_ERR("'[{\"skip\": [1e400]}]'")),
            "line 1 column 12: number out of range, found '1'");
  CHECK_STR(tu_eval(L, SEL_ERR("'[{\"skip\": {\"a\" 1}}]'")),
            "line 1 column 16: expected ':', found '1'");
  CHECK_STR(tu_eval(L, SEL_ERR("'[{\"skip\": \"abc'")),
            "line 1 column 15: unterminated string (unexpected end of input)");
  CHECK_STR(tu_eval(L, SEL_ERR("'[{\"skip\": ' .. string.rep('[', 199) .. string.rep(']', 199) .. '}]'")),
            "line 1 column 209: nesting deeper than 200 levels, found '['");
  CHECK_STR(tu_eval(L, "select(2, require'metasync.json'.decode('[{\"skip\": ' .. string.rep('[', 199) "
                       ".. string.rep(']', 199) .. '}]'))"),
            "line 1 column 209: nesting deeper than 200 levels, found '['");
#undef SEL_ERR
  LUA_CHECK(L, "local json = require 'metasync.json'\n"
               "local ok, err = pcall(json.decode, '[]', {select = 'Id'})\n"
               "assert(not ok and err:find(\"option 'select' must be a table\"), err)\n"
               "ok, err = pcall(json.decode, '[]', {select = {1, 2}})\n"
               "assert(not ok and err:find('list of key names'), err)\n"
               "ok, err = pcall(json.decode, '[]', {select = {'a'}, at = true})\n"
               "assert(not ok and err:find(\"option 'at' must be a string\"), err)\n"
               "ok, err = pcall(json.decode, '[]', 5)\n"
               "assert(not ok and err:find('table expected'), err)\n");
}

int main(void) {
  lua_State *L = tu_state();
  test_numbers(L);
  test_values(L);
  test_arrays(L);
  test_pretty(L);
  test_error_paths(L);
  test_depth(L);
  test_errors(L);
  test_bom_and_roundtrip(L);
  test_select(L);
  char path[4096];
  if (tu_lua_twin(path, sizeof path, __FILE__, "test_json.lua")) LUA_FILE_CHECK(L, path);
  lua_close(L);
  return tu_done("test_json");
}
