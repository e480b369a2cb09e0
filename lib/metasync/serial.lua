-- Serial numbers are the join key between Sectigo and Keyfactor. The two sides print them
-- differently (colon-separated bytes, plain hex, leading zeros, lower or upper case), so both
-- are reduced to one canonical form before any comparison.
local json = require("metasync.json")
local fields = require("metasync.fields")

local M = {}

-- normalise(s) -> canonical uppercase hex without separators or leading zeros, or nil when
-- there is nothing to match on (nil, empty, all separators) or s is not a string. A serial of
-- only zeros becomes "0".
-- Both APIs send serials as strings. A number is a record broken on the way, and no reading of
-- it is safe: 1.5e3 and 1500 decode alike, and "1500" (hex digits) and 1500 (a value, 5DC)
-- would name different certificates, so a guess could write onto the wrong one.
-- (In C, json.hexkey, because it runs for every certificate on both sides; the bulk report's
-- reader, json.rows, makes its keys the same way.)
M.normalise = json.hexkey

-- parse(v) -> key | nil, problem. Without a problem there is no serial at all (missing, null,
-- empty or only separators): what a certificate not yet issued shows, not an error. A problem
-- ("a number (12.5), not a serial number") is a malformed record, which the caller reports.
function M.parse(v)
  local key = M.normalise(v)
  if key or v == nil or v == json.null then return key end
  if type(v) == "string" then
    if not v:find("[^:%s]") then return nil end -- empty or only separators: no serial yet
    return nil, string.format("'%s' is not a hexadecimal serial number", v:sub(1, 64))
  end
  return nil, fields.describe(v) .. ", not a serial number"
end

-- index(list, key_of) -> table keyed by normalised serial. Entries without a usable serial are
-- counted, not indexed: an empty serial must never match anything. Duplicates keep the first
-- entry and are returned so the caller can log them.
function M.index(list, serial_of)
  local idx, skipped, dups = {}, 0, {}
  for _, item in ipairs(list) do
    local key = M.normalise(serial_of(item))
    if not key then
      skipped = skipped + 1
    elseif idx[key] then
      dups[#dups + 1] = key
    else
      idx[key] = item
    end
  end
  return idx, skipped, dups
end

return M
