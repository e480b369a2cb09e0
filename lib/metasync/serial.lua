-- Serial numbers are the join key between Sectigo and Keyfactor. The two sides print them
-- differently (colon-separated bytes, plain hex, leading zeros, lower or upper case), so both
-- are reduced to one canonical form before any comparison.
local M = {}

-- normalise(s) -> canonical uppercase hex without separators or leading zeros, or nil when
-- there is nothing to match on (nil, empty, all separators). A serial of only zeros becomes "0".
local find, byte = string.find, string.byte

function M.normalise(s)
  if s == nil then return nil end
  if type(s) == "number" then
    -- A serial that is not an integer (1.5, 1e300) is no serial at all.
    if math.type(s) ~= "integer" then return nil end
    s = string.format("%X", s)
  end
  if type(s) ~= "string" then return nil end
  -- The common case, already canonical: one scan, no new string (called for every
  -- certificate on both sides).
  if s ~= "" and byte(s, 1) ~= 48 and not find(s, "[^0-9A-F]") then return s end
  local t = s:gsub("[:%s]", ""):upper()
  if t == "" then return nil end
  local stripped = t:gsub("^0+", "")
  if stripped == "" then return "0" end
  return stripped
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
