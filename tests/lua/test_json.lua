-- metasync.json as the library uses it: API payloads in, request bodies out.
local json = require("metasync.json")

-- integers come back as integers, other numbers as floats
local page = json.decode([[
{"certificates": [
  {"id": 1234567, "serialNumber": "0A:BC", "term": 365, "score": 0.5, "big": 9007199254740993},
  {"id": 42, "serialNumber": null, "customFields": []}
], "total": 2}
]])
assert(math.type(page.total) == "integer" and page.total == 2)
local c1, c2 = page.certificates[1], page.certificates[2]
assert(math.type(c1.id) == "integer" and c1.id == 1234567)
assert(tostring(c1.term) == "365", "an integer prints without .0")
assert(math.type(c1.score) == "float" and c1.score == 0.5)
assert(c1.big == 9007199254740993, "integers beyond 2^53 are exact")
assert(c2.serialNumber == json.null and c2.serialNumber ~= nil)
assert(json.null == require("cjson").null)
assert(json.is_array(c2.customFields) and #c2.customFields == 0)
assert(json.is_array(page.certificates) and not json.is_array(c1))

-- an empty list read from an API goes back as [], never {}
assert(json.encode(c2.customFields) == "[]")
assert(json.encode({ id = 42, customFields = c2.customFields }, { sort_keys = true })
  == '{"customFields":[],"id":42}')
assert(json.encode({}) == "{}")
assert(json.encode(json.array()) == "[]")
assert(json.encode(json.array({ "a", "b" })) == '["a","b"]')

-- request bodies
local body = json.encode({
  Id = 5,
  Metadata = { Owner = "ops team", Ticket = "T-1", Ratio = 0.25, Flags = { true, false } },
}, { sort_keys = true })
assert(body == '{"Id":5,"Metadata":{"Flags":[true,false],"Owner":"ops team","Ratio":0.25,"Ticket":"T-1"}}',
  body)
assert(json.encode(123456789012345) == "123456789012345", "no exponent form for big integers")
assert(json.encode(-0.0) == "-0")
assert(json.encode(1e-7) == "1e-07")
assert(json.encode("line1\nline2\t\"q\" \\ /") == [["line1\nline2\t\"q\" \\ /"]])
assert(json.encode("\u{1F600}") == '"\u{1F600}"', "UTF-8 goes out as is")

-- pretty output: two spaces, sorted keys
local pretty = json.encode({ name = "x", list = { 1, { a = json.null } }, empty = json.array() },
  { pretty = true })
assert(pretty == [[
{
  "empty": [],
  "list": [
    1,
    {
      "a": null
    }
  ],
  "name": "x"
}]], pretty)
assert(json.encode({ a = 1 }, { pretty = true, indent = 0 }) == '{\n"a": 1\n}')

-- errors carry line and column
local v, err = json.decode('{\n  "ok": true,\n  "bad": tru\n}')
assert(v == nil and err == "line 3 column 10: invalid literal, found 't'", err)
v, err = json.decode('{"a": 1')
assert(v == nil and err:match("^line 1 column 8: .*end of input"), err)
v, err = json.decode("")
assert(v == nil and err:match("^line 1 column 1: "), err)
v, err = json.decode("[1,2]]")
assert(v == nil and err:match("^line 1 column 6: expected end of input"), err)
assert(not pcall(json.decode, nil), "non-string input is misuse")
assert(not pcall(json.decode, 12), "numbers are not coerced")

-- a byte-order mark is skipped (some OpenAPI documents start with one)
assert(json.decode("\xEF\xBB\xBF{\"openapi\":\"3.0.1\"}").openapi == "3.0.1")

-- depth limits in both directions
assert(json.decode(("["):rep(200) .. ("]"):rep(200)))
v, err = json.decode(("["):rep(201) .. ("]"):rep(201))
assert(v == nil and err:find("nesting deeper than 200"), err)
local deep = {}
local cur = deep
for _ = 1, 200 do
  cur[1] = {}
  cur = cur[1]
end
local ok, e = pcall(json.encode, deep)
assert(not ok and e:find("nesting deeper than 200"), e)

-- values JSON cannot hold are refused loudly
for _, bad in ipairs({ print, { f = print }, { 0 / 0 }, { math.huge }, { [{}] = 1 }, { 1, x = 2 } }) do
  assert(not pcall(json.encode, bad))
end
local cyc = { list = {} }
cyc.list[1] = cyc
ok, e = pcall(json.encode, cyc)
assert(not ok and e:find("cycle"), e)

-- round trip of a realistic document
local doc = {
  certificates = json.array({
    { id = 1, cn = "a.example.com", sans = json.array({ "a.example.com", "b.example.com" }),
      meta = { cost_center = "42", renewal = json.null } },
    { id = 2, cn = "caf\u{e9}.example", sans = json.array(), meta = {} },
  }),
  count = 2,
  ratio = 2 / 3,
}
local text = json.encode(doc, { sort_keys = true })
local back = json.decode(text)
assert(json.encode(back, { sort_keys = true }) == text, text)
assert(back.ratio == 2 / 3 and back.certificates[2].cn == "caf\u{e9}.example")
assert(json.encode(json.decode(json.encode(doc, { pretty = true })), { sort_keys = true }) == text)

-- a malformed string longer than luaL_Buffer's first block (1 KiB) with escapes, at every stack
-- height of a fresh coroutine: the decoder used to drop the buffer's to-be-closed box with
-- lua_settop, which in Lua 5.4.4 can leave the stack top in the freed old stack (crashes or
-- garbled results here; valgrind reports the invalid writes)
for depth = 1, 40 do
  local s = ("["):rep(depth) .. '"' .. ("ab\\n"):rep(400) .. "x"
  local _, want = json.decode(s)
  assert(want == string.format("line 1 column %d: unterminated string (unexpected end of input)",
    #s + 1), want)
  for pad = 0, 24 do
    local args = {}
    for i = 1, pad do args[i] = i end
    for _, opts in ipairs({ false, { select = { "a" } } }) do
      local ok, got, n, first, last = pcall(coroutine.wrap(function(...)
        local _, e = json.decode(s, opts or nil)
        local t = { ... }
        return e, #t, t[1], t[#t]
      end), table.unpack(args))
      assert(ok and got == want and n == pad and first == args[1] and last == args[pad],
        string.format("depth %d pad %d: %s", depth, pad, tostring(got)))
    end
  end
end

-- selective decoding: json.decode(s, {select = names [, at = key]})
do
  local function enc(v) return json.encode(v, { sort_keys = true }) end

  -- a Keyfactor-like page: the item list is the top-level array
  local page = [==[
[ {"Id": 9007199254740993, "SerialNumber": "0A:BC", "Thumbprint": "AB12", "Big": -9223372036854775808,
   "Metadata": {"Owner": "ops", "Id": 7, "Nested": {"deep": [1, {"x": null}], "e": []}, "Empty": {}},
   "SubjectAltNameElements": [{"Id": 1, "Value": "a.example.com", "Type": 2, "ValueHash": null}],
   "Locations": [], "Ratio": 0.25, "Flag": false, "Nothing": null, "Text": "caf\u00e9 \"q\" \\ \/"},
  {"Id": 2, "SerialNumber": null, "Metadata": {}, "Other": [[[{"a": 1}]]]},
  {},
  42, "string item", null, true, [ {"Id": 5, "Other": 6} ], []
]]==]
  local sel = json.decode(page, { select = { "Id", "SerialNumber", "Metadata", "Nothing", "Ratio",
    "Flag", "Text", "Big", "Locations" } })
  assert(json.is_array(sel) and #sel == 9, "the item list keeps its mark and every element")
  local a = sel[1]
  assert(math.type(a.Id) == "integer" and a.Id == 9007199254740993, "int64 exact")
  assert(a.Big == math.mininteger and math.type(a.Big) == "integer")
  assert(a.SerialNumber == "0A:BC" and a.Ratio == 0.25 and math.type(a.Ratio) == "float")
  assert(a.Flag == false and a.Nothing == json.null and a.Text == 'caf\u{e9} "q" \\ /')
  assert(a.Thumbprint == nil and a.SubjectAltNameElements == nil, "unselected keys are absent")
  -- values under selected keys are complete: nested objects are not filtered
  assert(enc(a.Metadata) ==
    '{"Empty":{},"Id":7,"Nested":{"deep":[1,{"x":null}],"e":[]},"Owner":"ops"}', enc(a.Metadata))
  assert(json.is_array(a.Metadata.Nested.e) and not json.is_array(a.Metadata.Empty))
  assert(json.is_array(a.Locations) and #a.Locations == 0 and json.encode(a.Locations) == "[]")
  local n = 0
  for _ in pairs(a) do n = n + 1 end
  assert(n == 9, "exactly the selected keys that occur")
  assert(enc(sel[2]) == '{"Id":2,"Metadata":{},"SerialNumber":null}', enc(sel[2]))
  assert(next(sel[3]) == nil and not json.is_array(sel[3]), "an empty object item stays an object")
  -- items that are not objects are decoded as without select (arrays in full: only direct items)
  assert(sel[4] == 42 and sel[5] == "string item" and sel[6] == json.null and sel[7] == true)
  assert(enc(sel[8]) == '[{"Id":5,"Other":6}]' and json.is_array(sel[8]))
  assert(json.is_array(sel[9]) and #sel[9] == 0)

  -- meta: every object item gets the metatable (nested objects and other items do not)
  local mt = { __index = function() return "guarded" end }
  local m = json.decode(page, { select = { "Id", "Metadata" }, meta = mt })
  assert(getmetatable(m[1]) == mt and getmetatable(m[2]) == mt and getmetatable(m[3]) == mt)
  assert(m[1].Thumbprint == "guarded" and getmetatable(m[1].Metadata) == nil)
  assert(getmetatable(m[8]) ~= mt and getmetatable(m[8][1]) ~= mt, "only direct object items")
  local okm, errm = pcall(json.decode, page, { meta = mt })
  assert(not okm and tostring(errm):find("option 'meta' must be a table, given with 'select'"), tostring(errm))
  assert(not pcall(json.decode, page, { select = { "Id" }, meta = 5 }))

  -- a set table selects the same; false leaves a name out
  local set = json.decode(page, { select = { Id = true, Metadata = true, SerialNumber = false } })
  assert(enc(set[2]) == '{"Id":2,"Metadata":{}}', enc(set[2]))
  assert(enc(json.decode(page, { select = { "Id", Metadata = true } })[2]) == '{"Id":2,"Metadata":{}}')
  -- an empty selection keeps no keys; the items are still there
  local none = json.decode(page, { select = {} })
  assert(#none == 9 and next(none[1]) == nil and none[4] == 42)
  -- exact, case-sensitive names: no prefixes, no case folding
  local t = json.decode('[{"Id":1,"id":2,"ID":3,"Ids":4,"I":5,"":6,"Id ":7}]', { select = { "Id" } })
  assert(enc(t) == '[{"Id":1}]', enc(t))
  t = json.decode('[{"":6,"x":1}]', { select = { "" } })
  assert(enc(t) == '[{"":6}]', enc(t))
  -- keys written with escapes match by their decoded name
  t = json.decode('[{"I\\u0064":1,"Serial\\tNo":2,"\\u00e9t\\u00e9":3,"k\\"q":4}]',
    { select = { "Id", "Serial\tNo", "\u{e9}t\u{e9}", 'k"q' } })
  assert(enc(t) == '[{"Id":1,"Serial\\tNo":2,"k\\"q":4,"\u{e9}t\u{e9}":3}]', enc(t))
  -- duplicate keys: the last one wins, as without select
  t = json.decode('[{"Id":1,"x":0,"Id":2}]', { select = { "Id" } })
  assert(t[1].Id == 2)
  -- a large selection (more names than buckets in a small hash)
  local many, doc = {}, {}
  for i = 1, 300 do
    many[i] = "k" .. i
    doc[#doc + 1] = string.format('"k%d":%d,"x%d":%d', i, i, i, -i)
  end
  t = json.decode("[{" .. table.concat(doc, ",") .. "}]", { select = many })
  local cnt = 0
  for k, v in pairs(t[1]) do
    cnt = cnt + 1
    assert(k == "k" .. v)
  end
  assert(cnt == 300)

  -- opts.at: the item list is the array under that key of the top-level object
  local report = [[{"statusCode": 0, "message": "", "extra": {"id": 1, "keep": "all", "list": [{"x": 1}]},
    "reports": [{"id": 11, "commonName": "a", "customFields": [{"name": "n", "value": "v"}], "junk": {"a": [1, 2]}},
                {"id": 12, "commonName": "b", "customFields": []}, 7]}]]
  local r = json.decode(report, { select = { "id", "customFields" }, at = "reports" })
  assert(r.statusCode == 0 and r.message == "", "the top-level object's other members are decoded")
  assert(enc(r.extra) == '{"id":1,"keep":"all","list":[{"x":1}]}', enc(r.extra))
  assert(json.is_array(r.reports) and #r.reports == 3)
  assert(enc(r.reports[1]) == '{"customFields":[{"name":"n","value":"v"}],"id":11}', enc(r.reports[1]))
  assert(json.is_array(r.reports[2].customFields) and r.reports[2].commonName == nil)
  assert(r.reports[3] == 7)
  -- without at, a top-level object is decoded in full; with at, a top-level array is
  assert(enc(json.decode(report, { select = { "id" } })) == enc(json.decode(report)))
  assert(enc(json.decode(page, { select = { "Id" }, at = "reports" })) == enc(json.decode(page)))
  -- no such key, or not an array under it: decoded in full (the caller checks the shape)
  for _, doc2 in ipairs({ '{"rows":[{"id":1,"x":2}]}', '{"reports":{"id":1,"x":2}}',
    '{"reports":null,"x":[{"id":1,"y":2}]}', '{"reports":"[{}]"}', '"reports"', '5', 'null' }) do
    assert(enc(json.decode(doc2, { select = { "id" }, at = "reports" })) == enc(json.decode(doc2)), doc2)
  end
  -- an empty item list keeps its mark, with or without at
  assert(json.encode(json.decode("[]", { select = { "id" } })) == "[]")
  assert(json.encode(json.decode('{"reports":[]}', { select = { "id" }, at = "reports" })) ==
    '{"reports":[]}')
  -- at without select changes nothing; no opts or empty opts is today's decode
  assert(enc(json.decode(report, { at = "reports" })) == enc(json.decode(report)))
  assert(enc(json.decode(page, {})) == enc(json.decode(page)))
  assert(enc(json.decode(page, nil)) == enc(json.decode(page)))
  -- a byte-order mark and surrounding whitespace are fine
  t = json.decode('\xEF\xBB\xBF \n [ {"a":1,"b":2} ] \n', { select = { "a" } })
  assert(enc(t) == '[{"a":1}]')

  -- misuse raises
  assert(not pcall(json.decode, "[]", "select"))
  assert(not pcall(json.decode, "[]", { select = "Id" }))
  assert(not pcall(json.decode, "[]", { select = { 1, 2 } }))
  assert(not pcall(json.decode, "[]", { select = { [{}] = true } }))
  assert(not pcall(json.decode, "[]", { select = { "Id" }, at = 5 }))

  -- malformed JSON inside a skipped member fails exactly as without select
  local function same(s, opts)
    local v1, e1 = json.decode(s)
    local v2, e2 = json.decode(s, opts)
    assert((v1 == nil) == (v2 == nil), s)
    assert(e1 == e2, string.format("%s: %s vs %s", s, tostring(e1), tostring(e2)))
    return e2
  end
  local O = { select = { "keep" } }
  local bad = {
    '[{"skip": tru}]', '[{"skip": [1, 2,, 3]}]', '[{"skip": {"a" 1}}]', '[{"skip": {"a":1,}}]',
    '[{"skip": {1: 2}}]', '[{"skip": [1 2]}]', '[{"skip": "abc}]', '[{"skip": "a\\x"}]',
    '[{"skip": "\\u12g4"}]', '[{"skip": "\\u12"}]', '[{"skip": "\\ud800"}]', '[{"skip": "\\udc00"}]',
    '[{"skip": "\\ud800\\u0041"}]', '[{"skip": "\\ud83d\\ude0"}]', '[{"skip": 01}]', '[{"skip": 1.}]',
    '[{"skip": -}]', '[{"skip": 1e}]', '[{"skip": +1}]', '[{"skip": .5}]', '[{"skip": 0x10}]',
    '[{"skip": NaN}]', '[{"skip": 1e400}]', '[{"skip": -1e400}]', '[{"skip": [1e309]}]',
    '[{"skip": ' .. ("9"):rep(400) .. '}]', '[{"skip": 0.' .. ("0"):rep(300) .. '1e700}]',
    '[{"skip": }]', '[{"skip" }]', '[{"skip": 1 "keep": 2}]', '[{"keep": 1, "skip": [}]',
    '[{"skip": [}]', '[{"skip": {]}]', '[{"skip": [1]]}]', '[{"sk\\ip": 1}]', '[{"skip": 1',
    '[{"skip": "', '[{"skip": "\\', '[{"skip": "\\u', '[{"skip', '[{"skip": [[[', '[{"skip": {"a":',
    '[{"skip": \1}]', '[{"skip": nul}]', '[{"skip": falsey}]', '[{"skip": 1}] x', '[{"skip": 1},]',
  }
  for _, s in ipairs(bad) do
    local e = same(s, O)
    assert(e, "must be an error: " .. s)
    assert(e:match("^line %d+ column %d+: "), e)
  end
  assert(same('[{"a": 1,\n "skip": {"x": [1, 2,, 3]}}]', O) == "line 2 column 22: expected value, found ','")
  assert(same('[{"skip": "\\u12g4"}]', O) == "line 1 column 12: invalid \\u escape, found '\\'")
  assert(same('[{"skip": 1e400}]', O) == "line 1 column 11: number out of range, found '1'")
  -- and the same with at, including errors in the top-level members around the list
  local OA = { select = { "keep" }, at = "reports" }
  for _, s in ipairs({ '{"reports": [{"skip": [1,,2]}]}', '{"reports": [{"skip": "\\q"}], "x": 1',
    '{"x": tru, "reports": []}', '{"reports": [{"keep": 1}] "x": 1}', '{"reports": [{"skip": 1e999}]}' }) do
    assert(same(s, OA), s)
  end
  -- what the full decoder accepts inside strings, the skipper accepts: raw control bytes,
  -- invalid UTF-8, every escape, surrogate pairs, NULs
  for _, s in ipairs({ '[{"skip": "a\1\31\127b", "keep": 1}]', '[{"skip": "\xff\xfe", "keep": 1}]',
    '[{"skip": "\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\uFFFF\\ud83d\\ude00", "keep": 1}]',
    '[{"sk\1ip": 0, "keep": 1}]', '[{"skip": 1e-400, "keep": 1}]', '[{"skip": -0.0e+5, "keep": 1}]',
    '[{"skip": 12345678901234567890123, "keep": 1}]', '[{"skip": 0.' .. ("0"):rep(300) .. '1e600, "keep": 1}]',
    '[{"skip": ' .. ("9"):rep(300) .. ', "keep": 1}]' }) do
    assert(same(s, O) == nil, s)
    assert(json.decode(s, O)[1].keep == 1, s)
  end

  -- the depth limit still applies inside skipped members (the item object is level 2)
  local ok198 = '[{"skip":' .. ("["):rep(198) .. ("]"):rep(198) .. ',"keep":1}]'
  assert(json.decode(ok198, O)[1].keep == 1)
  local bad199 = '[{"skip":' .. ("["):rep(199) .. ("]"):rep(199) .. ',"keep":1}]'
  local e = same(bad199, O)
  assert(e == "line 1 column 208: nesting deeper than 200 levels, found '['", e)
  e = same('[{"skip":' .. ('{"a":'):rep(300) .. "1" .. ("}"):rep(300) .. "}]", O)
  assert(e and e:find("nesting deeper than 200"), e)
  assert(same('{"reports":[{"skip":' .. ("["):rep(198) .. ("]"):rep(198) .. '}]}', OA) ==
    "line 1 column 218: nesting deeper than 200 levels, found '['")
  assert(same('[{"skip":' .. ("["):rep(1000000), O))

  -- huge strings in skipped members: no copy, no trouble
  local huge = ("x"):rep(10 * 1024 * 1024)
  t = json.decode('[{"skip":"' .. huge .. '","keep":"k"},{"keep":2,"skip":"' .. ('\\"\\u00e9'):rep(100000) .. '"}]', O)
  assert(t[1].keep == "k" and t[1].skip == nil and t[2].keep == 2)
  assert(same('[{"skip":"' .. huge .. '\\u00zz"}]', O))

  -- property: on any prefix or one-byte corruption of a document, select and no select agree on
  -- success and on the error, and a success is the full decode restricted to the selected keys
  local function restricted(v, names, at)
    local list = v
    if at then
      list = type(v) == "table" and not json.is_array(v) and v[at]
    end
    if type(list) ~= "table" or not json.is_array(list) then return v end
    for i, it in ipairs(list) do
      if type(it) == "table" and not json.is_array(it) then
        local k = {}
        for _, name in ipairs(names) do k[name] = it[name] end
        list[i] = k
      end
    end
    return v
  end
  local names = { "a", "c", "" }
  local samples = {
    '[{"a":1,"b":{"a":[1,2,{"c":null}],"d":"x\\u00e9"},"c":[],"":-1.5e3},{"b":[[]],"a":"s"},3,[{"a":1}]]',
    '{"r":[{"a":{"b":1},"z":"\\ud83d\\ude00","c":true},{"c":false,"q":[1,{"a":2}]}],"a":{"z":1},"b":[{"z":2}]}',
  }
  for si, doc2 in ipairs(samples) do
    local opts = { select = names, at = si == 2 and "r" or nil }
    local function check(s)
      local v1, e1 = json.decode(s)
      local v2, e2 = json.decode(s, opts)
      assert(e1 == e2, string.format("%q: %s vs %s", s, tostring(e1), tostring(e2)))
      if v1 ~= nil then assert(enc(restricted(v1, names, opts.at)) == enc(v2), s) end
    end
    for i = 0, #doc2 do check(doc2:sub(1, i)) end
    for i = 1, #doc2 do
      for _, c in ipairs({ "", " ", "[", "]", "{", "}", '"', "\\", ",", ":", "1", "x", "\0" }) do
        check(doc2:sub(1, i - 1) .. c .. doc2:sub(i + 1))
      end
    end
  end
end
print("ok")
