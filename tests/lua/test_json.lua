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
print("ok")
