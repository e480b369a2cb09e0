-- metasync.match: the native part of a streamed listing. match.keys gives the verdict the Lua
-- key function gave (de-duplication by integer id, records without an id always kept, non-records
-- dropped); match.page matches exactly the plain records and hands every other one back, in
-- order. Then the same random pages through both: the native match and the Lua path it
-- replaces (serial.parse, the id rule, the index lookup) agree on every record.
local match = require("metasync.match")
local json = require("metasync.json")
local serial = require("metasync.serial")

-- keys: ids integer or integral floats; repeats within and across pages are dropped once seen
local seen = {}
local page = { { Id = 1 }, { Id = 2.0 }, { Id = 1 }, "junk", { Id = "3" }, { Id = 1.5 }, { Id = "3" }, { }, json.null, { Id = 2 } }
local keep, fresh, dropped = match.keys(page, "Id", seen)
local want = { true, true, false, false, true, true, true, true, false, false }
for i = 1, #page do assert(keep[i] == want[i], "keep[" .. i .. "] = " .. tostring(keep[i])) end
assert(fresh == 6, "fresh " .. fresh)
assert(dropped and #dropped == 2 and dropped[1] == 4 and dropped[2] == 9, "dropped items listed")
assert(seen[1] and seen[2] and not seen[3], "seen holds integer ids only")
keep, fresh, dropped = match.keys({ { Id = 2 }, { Id = 3 } }, "Id", seen)
assert(keep[1] == false and keep[2] == true and fresh == 1 and dropped == nil, "a later page sees earlier ids")
keep, fresh = match.keys({}, "Id", {})
assert(next(keep) == nil and fresh == 0)

-- page: what is plain is matched; the rest comes back by index
local map = { AB = 11, CD = { 12, "v" }, EF = { false }, ["1"] = 13 }
local broken = { CD = false, BAD = true }
page = {
  { Id = 1, SerialNumber = "ab" },         -- 1 matched (normalised), integer value
  { Id = 2, SerialNumber = "CD" },         -- 2 matched, entry (broken[CD] is false: not broken)
  { Id = 3, SerialNumber = "EF" },         -- 3 odd: entry without an id
  { Id = 4, SerialNumber = "99" },         -- 4 odd: not in the map
  { Id = 0, SerialNumber = "AB" },         -- 5 odd: id 0 is no id
  { Id = 1.5, SerialNumber = "AB" },       -- 6 odd
  { SerialNumber = "0:1" },                -- 7 matched: no id at all is fine; key "1"
  { Id = 8, SerialNumber = 171 },          -- 8 odd: a number is no serial
  { Id = 9, SerialNumber = "BAD" },        -- 9 odd: broken
  { Id = 10, SerialNumber = "AB" },        -- 10 skipped: keep false
  { Id = 11, SerialNumber = "AB" },        -- 11 odd: include said no
  { Id = 12, SerialNumber = "AB" },        -- 12 odd: include raised
  { Id = 13 },                             -- 13 odd: no serial
}
keep = { true, true, true, true, true, true, true, true, true, false, true, true, true }
local verdict = { true, true, true, true, true, true, true, true, true, true, false, { "boom" }, true }
local out = { "before" }
local n, odd = match.page(page, keep, verdict, { id = "Id", key = "SerialNumber", map = map, broken = broken }, out)
assert(n == 3, "matched " .. n)
assert(#out == 13 and out[1] == "before", "appended after what out held")
assert(out[2] == page[1] and out[3] == "AB" and out[4] == 11 and out[5] == false)
assert(out[6] == page[2] and out[7] == "CD" and out[8] == 12 and out[9] == map.CD)
assert(out[10] == page[7] and out[11] == "1" and out[12] == 13 and out[13] == false)
assert(table.concat(odd, ",") == "3,4,5,6,8,9,11,12,13", "odd " .. table.concat(odd, ","))
-- keep nil: every item; no broken set
n, odd = match.page({ { Id = 1, SerialNumber = "AB" } }, nil, { true }, { id = "Id", key = "SerialNumber", map = map }, {})
assert(n == 1 and #odd == 0)
assert(not pcall(match.page, {}, nil, {}, { id = "Id", key = "SerialNumber" }, {}), "a map is required")
assert(not pcall(match.page, {}, nil, {}, { id = 1, key = "SerialNumber", map = {} }, {}), "field names are strings")

-- random pages: native and Lua agree on each record
math.randomseed(tonumber(os.getenv("SEED") or "") or 5)
local R = math.random
local SERIALS = { "AB", "ab", "0AB", "a:b", "CD", "ZZ", "", ":", "00", 17, json.null, true, "12 34" }
local IDS = { 1, 2, 3, 2.0, 0, -1, 1.5, "7", json.null, true }
local m = { AB = 1, CD = { 2, "x" }, ["0"] = 3, ["1234"] = { 4 } }
local bro = { ZZ = true, ["1234"] = true }
local agreed = 0
for _ = 1, 500 do
  local p, kp, vp = {}, {}, {}
  for i = 1, R(0, 30) do
    local item = {}
    if R(6) > 1 then item.Id = IDS[R(#IDS)] end
    if R(8) > 1 then item.SerialNumber = SERIALS[R(#SERIALS)] end
    p[i], kp[i], vp[i] = item, R(5) > 1, R(4) > 1 or (R(2) == 1 and { "e" } or false)
  end
  local o = {}
  local got_n, got_odd = match.page(p, kp, vp, { id = "Id", key = "SerialNumber", map = m, broken = bro }, o)
  local lua_out, lua_odd = {}, {}
  for i, item in ipairs(p) do
    if kp[i] then
      local raw = rawget(item, "Id")
      local id = math.type(raw) and math.tointeger(raw)
      local ok_id = raw == nil or (id and id >= 1)
      local key = serial.parse(rawget(item, "SerialNumber"))
      local e = key and not bro[key] and m[key]
      local v = type(e) == "table" and e[1] or e
      if vp[i] == true and ok_id and key and v then
        for _, x in ipairs { item, key, v, type(e) == "table" and e or false } do lua_out[#lua_out + 1] = x end
      else
        lua_odd[#lua_odd + 1] = i
      end
    end
  end
  assert(got_n * 4 == #lua_out and #o == #lua_out, "matched count")
  for i = 1, #o do assert(rawequal(o[i], lua_out[i]), "slot " .. i) end
  assert(table.concat(got_odd, ",") == table.concat(lua_odd, ","), "odd records")
  agreed = agreed + got_n
end
assert(agreed > 300, "matched records compared: " .. agreed)
print("ok")
