local serial = require("metasync.serial")
local n = serial.normalise
assert(n("AB:CD:EF:01") == "ABCDEF01")
assert(n("00ab cd\tef01") == "ABCDEF01")
assert(n("0:0A") == "A")
assert(n("") == nil and n(nil) == nil and n("  : ") == nil, "an empty serial never matches")
assert(n("000") == "0")
assert(n("00:AB:CD") == n("abcd"))
local idx, skipped, dups = serial.index({ { s = "0A:BC" }, { s = "" }, { s = "abc" }, { s = nil } },
  function(x) return x.s end)
assert(idx["ABC"].s == "0A:BC", "first entry wins")
assert(skipped == 2)
assert(#dups == 1 and dups[1] == "ABC")
print("ok")
