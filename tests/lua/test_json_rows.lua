-- json.rows (engine/json_rows.c) builds bulk index entries straight from a report's text; the
-- rows it cannot settle exactly go back to the Lua path. Over rows with every odd form a report
-- could carry (ids as text, 0, 1.5 or huge; serials with colons, spaces, leading zeros, not hex
-- or not text; escapes in values and names; members given twice; name/value lists of every odd
-- shape; numbers the decoder must read), the index and the failures must be exactly those of
-- decoding every row and taking it in Lua.
local json = require("metasync.json")
local bulk = require("metasync.bulk")
require("metasync.log").set_level("fatal")

local today = os.time() // 86400

local function pick(r, list) return list[r(#list)] end

-- Row parts as raw JSON text, so forms a Lua table cannot say (a member twice, an escaped name)
-- are there too.
local IDS = { "%d", "%d", "%d", '"%d"', "0", "-3", "1.5", "null", "99999999999999999999", "%d.0", '"x"' }
local SERIALS = { '"%08X"', '"%08X"', '"00%08X"', '"%08x"', '"%02X:%02X:%02X:%02X"', '" %08X "', '""', '":::"', '"XYZ"',
  "12", "null", '"\\u0041%07X"', '"0000"', "true" }
local STATUS = { '"Issued"', '"Issued"', '"ISSUED"', '"Revoked"', "2", "null", '"Iss\\u0075ed"' }
local TYPES = { "1018", "1018", "1025", '"1018"', "1018.0", "null" }
local VALUES = { '"CC-%d"', '"CC-%d"', '"Line\\none"', '"caf\\u00e9 \\ud83d\\ude00"', "null", "42", "4.5", "true", "false", '{"a":1}',
  '["x"]', '"\\"q\\" \\\\ \\/"' }
local NAMES = { '"Cost Center"', '"cost center"', '"COST CENTER"', '"Notes"', '"Other"', "7", '"Co\\u0073t Center"' }
local KEYSIZE = { '"2048"', "2048", '" 2048"', '"0x10"', "2048.0", "null", '"-5"', '"12345678901234567890"' }
local DATES = { '"2026-03-04T00:00:00.000Z"', '"2026-03-04"', '"03/04/2026"', '"bad"', "null", '"2026-\\u00303-04"', "5" }
local SERIALS2 = { '"0a1b2c"', '"0A:1B"', '"abc"', '"ZZ12"', '""', "null", '"0A\\u00311B"' }

local function cf_list(r, i)
  local forms = r(12)
  if forms == 1 then return nil end
  if forms == 2 then return "null" end
  if forms == 3 then return "[]" end
  if forms == 4 then return "{}" end
  if forms == 5 then return '"text"' end
  local items = {}
  for _ = 1, r(4) do
    local k = r(10)
    if k == 1 then items[#items + 1] = "5"
    elseif k == 2 then items[#items + 1] = string.format('{"value":%s}', pick(r, VALUES):format(i))
    elseif k == 3 then items[#items + 1] = string.format('{"name":%s}', pick(r, NAMES))
    elseif k == 4 then items[#items + 1] = string.format('{"name":%s,"name":"Notes","value":"v"}', pick(r, NAMES))
    else items[#items + 1] = string.format('{"name":%s,"value":%s}', pick(r, NAMES), pick(r, VALUES):format(i)) end
  end
  return "[" .. table.concat(items, ",") .. "]"
end

local function row_text(r, i)
  if r(60) == 1 then return pick(r, { "7", "null", '"row"', "[]" }) end
  local id = r(4) == 1 and r(math.max(1, i - 1)) or i -- repeats of earlier ids too
  local m = {}
  local function add(name, v) if v then m[#m + 1] = string.format('"%s":%s', name, v) end end
  if r(30) > 1 then add("id", pick(r, IDS):format(id)) end
  if r(30) > 1 then
    local s = pick(r, SERIALS)
    local n = r(3) == 1 and r(200) or i -- repeats of other serials too
    if s:find("%%02X") then add("serialNumber", s:format(n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255))
    else add("serialNumber", s:format(n)) end
  end
  if r(20) > 1 then add("status", pick(r, STATUS)) end
  if r(20) > 1 then add("typeId", pick(r, TYPES)) end
  add("customFields", cf_list(r, i))
  if r(5) > 1 then add("publicKeySize", pick(r, KEYSIZE)) end
  if r(5) > 1 then add("expires", pick(r, DATES)) end
  if r(5) > 1 then add("serialNumberCopy", "1") end
  add("commonName", pick(r, { '"a.example"', '"b\\u002eexample"', "null" }))
  add("issuer", pick(r, { '"CN=CA"', "null" }))
  if r(40) == 1 then add("status", '"Issued"') end -- a member twice
  if r(40) == 1 then m[#m + 1] = '"\\u0069d":5' end -- an escaped name
  if r(15) == 1 then m[#m + 1] = '"extra":{"deep":[1,2,{"x":"}"}]}' end
  return "{" .. table.concat(m, ",") .. "}"
end

local slots = bulk.plan({ "Cost Center", "Notes" }, { "keySize", "expires", "commonName", "certificateDetails.issuer", "certType.id" })

-- run(body, fast, filters) -> map, dups, bad: bulk.build over one window holding body, read by
-- json.rows (fast) or decoded whole and taken row by row in Lua.
local function run(body, fast, filters)
  local client = {}
  function client.report(_, req, read)
    local first = req.to == os.date("!%Y-%m-%d", (today + 1) * 86400)
    local text = first and body or '{"reports":[]}'
    if fast then
      local doc, err = read(text)
      assert(doc, err)
      return doc.reports
    end
    return json.decode(text, { select = bulk.keys(slots), at = "reports" }).reports
  end
  local map, dups, bad = {}, 0, {}
  local ok, err = bulk.build({ sectigo = client }, filters, slots, map, function(key, e)
    if map[key] ~= nil then dups = dups + 1 else map[key] = e end
  end, function(key, label, reason) bad[#bad + 1] = table.concat({ tostring(key), label, reason }, " | ") end)
  assert(ok, tostring(err))
  return map, dups, bad
end

local function show(v) return v == json.null and "null" or (type(v) == "string" and string.format("%q", v) or tostring(v)) end

local function same(a, b, what)
  for k, e in pairs(a) do
    local f = b[k]
    assert(f, what .. ": serial " .. k .. " only in the Lua path's index")
    assert(#e == #f, what .. ": entry " .. k .. " sizes")
    for i = 1, #e do
      local x, y = e[i], f[i]
      if type(x) == "table" and type(y) == "table" then x, y = json.encode(x), json.encode(y) end
      assert(x == y and math.type(x) == math.type(y),
        string.format("%s: serial %s slot %d: Lua %s, json.rows %s", what, k, i, show(e[i]), show(f[i])))
    end
  end
  for k in pairs(b) do assert(a[k], what .. ": serial " .. k .. " only in json.rows' index") end
end

local filters_list = {
  { { status = "Issued" } },
  { { status = "Issued", ssl_type_id = 1018 } },
  { {} },
}
local total_fast = 0
for seed = 1, 6 do
  local state = seed * 7919
  local function r(n) -- a small deterministic generator: the same rows on every machine
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n + 1
  end
  local rows = {}
  for i = 1, 1500 do rows[i] = row_text(r, i) end
  local body = '{"total":1500,"reports":[' .. table.concat(rows, ",") .. '],"more":"x"}'
  for fi, filters in ipairs(filters_list) do
    local what = string.format("seed %d filters %d", seed, fi)
    local m1, d1, b1 = run(body, false, filters)
    local m2, d2, b2 = run(body, true, filters)
    same(m1, m2, what)
    assert(d1 == d2, what .. ": duplicate serials " .. d1 .. " vs " .. d2)
    assert(#b1 == #b2, what .. ": failures " .. #b1 .. " vs " .. #b2)
    for i = 1, #b1 do assert(b1[i] == b2[i], what .. ": failure " .. i .. ": " .. b1[i] .. " vs " .. b2[i]) end
    for _ in pairs(m2) do total_fast = total_fast + 1 end
  end
end
assert(total_fast > 1000, "the worlds keep certificates: " .. total_fast)

-- The fast path really is taken: plain rows never reach other().
local map, seen, other = {}, {}, 0
local spec = { at = "reports", id = "id", key = "serialNumber", list = "customFields", list_name = "name", list_value = "value",
  slots = { { list = "notes" }, { key = "publicKeySize", conv = "int" }, { key = "expires", conv = "mdy" }, { key = "sn", conv = "pairs" } },
  map = map, seen = seen, other = function() other = other + 1 end }
local n, fresh, kept = json.rows([[{"reports":[
  {"id":1,"serialNumber":"00:0a:bc","customFields":[{"name":"NOTES","value":"a\nb"}],"publicKeySize":"2048","expires":"2027-01-31T00:00:00Z","sn":"0abc"},
  {"id":1,"serialNumber":"FF"},
  {"id":2,"serialNumber":null},
  {"id":3,"serialNumber":"1.5e3"}]}]], spec)
assert(n == 4 and fresh == 2 and kept == 1 and other == 1, string.format("counts %s %s %s %s", n, fresh, kept, other))
local e = map["ABC"]
assert(e and e[1] == 1 and e[2] == "a\nb" and e[3] == 2048 and math.type(e[3]) == "integer" and e[4] == "01/31/2027" and e[5] == "0A:BC")
assert(seen[1] and seen[2] and not seen[3], "seen marks the rows settled here, not the ones handed on")

-- Other shapes: false (the caller decodes them); text that is not JSON: nil.
spec.other = function() error("not called") end
assert(json.rows('[{"id":1}]', spec) == false)
assert(json.rows('{"reports":{}}', spec) == false)
assert(json.rows('{"reports":[],"reports":[]}', spec) == false)
assert(json.rows('{"rep\\u006frts":[]}', spec) == false)
assert(json.rows('{}', spec) == false)
assert(json.rows('{"reports":[{"id":1,}]}', spec) == nil)
assert(json.rows('{"reports":[' .. string.rep("[", 300) .. string.rep("]", 300) .. ']}', spec) == nil, "the depth limit holds")
assert(json.rows("", spec) == nil)
assert(not pcall(json.rows, "{}", { at = "reports" }), "a spec without its tables is refused")
print("ok")
