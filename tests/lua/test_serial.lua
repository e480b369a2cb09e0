local serial = require("metasync.serial")
local json = require("metasync.json")
local n = serial.normalise
assert(n("AB:CD:EF:01") == "ABCDEF01")
assert(n("00ab cd\tef01") == "ABCDEF01")
assert(n("0:0A") == "A")
assert(n("") == nil and n(nil) == nil and n("  : ") == nil, "an empty serial never matches")
assert(n("000") == "0")
assert(n("00:AB:CD") == n("abcd"))
assert(n("ABCDEF01") == "ABCDEF01" and n("0ABC") == "ABC" and n("ab") == "AB", "fast path and the rest agree")
-- a number is no serial: 1.5e3 decodes as 1500, and neither "1500" nor 0x5DC is a safe reading
assert(n(0xAB) == nil and n(1500) == nil and n(1.5) == nil and n(1e300) == nil and n(-5) == nil, "a number is no serial")
assert(n({}) == nil and n(true) == nil and n(json.null) == nil)
-- parse: no serial at all is no problem (a certificate not yet issued); a value that is not
-- a serial is one, and says what it was
local p = serial.parse
for _, v in ipairs({ "", " : ", json.null }) do
  local key, problem = p(v)
  assert(key == nil and problem == nil, "no serial: " .. tostring(v))
end
assert(select("#", p(nil)) >= 1 and p(nil) == nil and select(2, p(nil)) == nil)
assert(p("0a:11") == "A11" and select(2, p("0a:11")) == nil)
local function problem(v) local k, why = p(v); assert(k == nil); return why end
assert(problem(12.5) == "a number (12.5), not a serial number", tostring(problem(12.5)))
assert(problem(json.decode("[1.5e3]")[1]) == "a number (1500), not a serial number")
assert(problem(json.decode("{}")) == "an object, not a serial number")
assert(problem(json.decode("[]")) == "a list, not a serial number")
assert(problem(false) == "a boolean (false), not a serial number")
local idx, skipped, dups = serial.index({ { s = "0A:BC" }, { s = "" }, { s = "abc" }, { s = nil } },
  function(x) return x.s end)
assert(idx["ABC"].s == "0A:BC", "first entry wins")
assert(skipped == 2)
assert(#dups == 1 and dups[1] == "ABC")
-- not hexadecimal is not a serial, and a malformed record says so
assert(serial.normalise("@") == nil and serial.normalise("g1") == nil and serial.normalise("0A:ZZ") == nil, "non-hex")
local key, why = serial.parse("g1")
assert(key == nil and why and why:find("not a hexadecimal serial number", 1, true), tostring(why))
key, why = serial.parse(" : ")
assert(key == nil and why == nil, "only separators: no serial yet, not a problem")
-- The C normalisation (json.hexkey) against the rules written out in Lua (how metasync.serial
-- did it before): separators [:%s] dropped, upper case, hex only, leading zeros dropped.
local function model(v)
  if type(v) ~= "string" then return nil end
  local t = v:gsub("[:%s]", ""):upper()
  if t == "" or t:find("[^0-9A-F]") then return nil end
  local stripped = t:gsub("^0+", "")
  return stripped == "" and "0" or stripped
end
local alphabet = { "0", "0", "0", "1", "9", "A", "F", "a", "f", "G", "g", "z", ":", " ", "\t", "\v", "\f", "\r", "\n", "\0", "\xff", "-" }
local state = 12345
local function r(k) state = (state * 1103515245 + 12345) % 2147483648; return state % k + 1 end
for _ = 1, 20000 do
  local parts = {}
  for i = 1, r(12) - 1 do parts[i] = alphabet[r(#alphabet)] end
  local v = table.concat(parts)
  assert(n(v) == model(v), string.format("normalise(%q) = %s, the rules say %s", v, tostring(n(v)), tostring(model(v))))
end
local long = string.rep("0", 5000) .. string.rep("ab", 3000)
assert(n(long) == model(long) and #n(long) == 6000, "a long serial")
local canon = "ABCDEF0123456789"
assert(rawequal(n(canon), canon), "a canonical serial comes back as it is")
print("ok")
