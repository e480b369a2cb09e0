-- Fuzz target: metasync.serial.normalise, the join key of both sides. It must never raise, and
-- what it returns is nil or canonical: uppercase hex, no separators, no leading zeros ("0" for
-- an all-zero serial), and normalising it again changes nothing. The input goes in as the string
-- it is and, when it reads as a Lua number, as that number too (JSON hands some serials over as
-- numbers).
local H = require("harness").setup(...)
local serial = require("metasync.serial")

local function check(v)
  local ok, out = pcall(serial.normalise, v)
  if not ok then H.fail("normalise(%s) raised: %s", H.quote(v), tostring(out)) end
  if out == nil then return end
  if type(out) ~= "string" then H.fail("normalise(%s) returned a %s", H.quote(v), type(out)) end
  if not out:match("^[0-9A-F]+$") then H.fail("normalise(%s) = %s is not uppercase hex", H.quote(v), H.quote(out)) end
  if out ~= "0" and out:sub(1, 1) == "0" then H.fail("normalise(%s) = %s has a leading zero", H.quote(v), H.quote(out)) end
  local again = serial.normalise(out)
  if again ~= out then H.fail("not idempotent: normalise(%s) = %s, then %s", H.quote(v), H.quote(out), H.quote(again)) end
end

return function(data)
  check(data)
  local n = tonumber(data)
  if n then check(n) end
  -- Both sides print the same serial differently: colon-separated lower case must meet plain
  -- upper case.
  if data:match("^%x+$") then
    local colons = data:lower():gsub("(%x%x)", "%1:"):gsub(":$", "")
    local a, b = serial.normalise(data), serial.normalise(colons)
    if a ~= b then H.fail("%s and %s normalise apart: %s vs %s", H.quote(data), H.quote(colons), H.quote(a), H.quote(b)) end
  end
end
