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
print("ok")
