-- Fuzz target: metasync.names, the banned-characters table (bannedcharacters.json) and the
-- rewrite of field names into what Keyfactor accepts ([A-Za-z0-9_-]).
-- Input: the file's text, then "\n--\n", then field names (one a line).
-- Properties: parse returns a table or nil and a one-line message naming the file, and never
-- raises; encode/parse is a round trip; rewrite never raises, lists as missing exactly the
-- banned characters without a replacement, and a name with nothing missing comes out valid.
local H = require("harness").setup(...)
local names = require("metasync.names")

local FILE = "bannedcharacters.json"

local function same_table(a, b)
  if #a.list ~= #b.list then return false end
  for i, e in ipairs(a.list) do
    local f = b.list[i]
    if f.character ~= e.character or f.replacement ~= e.replacement then return false end
  end
  return true
end

local function check_name(t, name)
  local ok, new, missing = pcall(t.rewrite, t, name)
  if not ok then H.fail("rewrite(%s) raised: %s", H.quote(name), tostring(new)) end
  if type(new) ~= "string" or type(missing) ~= "table" then H.fail("rewrite(%s) returned %s, %s", H.quote(name), type(new), type(missing)) end
  local bad = names.banned(name)
  local want = {}
  for _, c in ipairs(bad) do
    local e = t.by_char[c]
    if not (e and e.replacement) then want[#want + 1] = c end
  end
  if #want ~= #missing then H.fail("rewrite(%s): %d missing, expected %d", H.quote(name), #missing, #want) end
  for i, c in ipairs(want) do
    if missing[i] ~= c then H.fail("rewrite(%s): missing[%d] = %s, expected %s", H.quote(name), i, H.quote(missing[i]), H.quote(c)) end
  end
  if #missing == 0 and not new:match("^[A-Za-z0-9_%-]*$") then
    H.fail("rewrite(%s) = %s with nothing missing is not a valid Keyfactor name", H.quote(name), H.quote(new))
  end
  for _, c in ipairs(bad) do
    local ok2, d = pcall(names.describe, c)
    if not ok2 or type(d) ~= "string" then H.fail("describe(%s) raised: %s", H.quote(c), tostring(d)) end
  end
end

return function(data)
  local parts = H.split(data, "\n--\n", 2)
  local ok, t, err = pcall(names.parse, parts[1], FILE)
  if not ok then H.fail("parse raised: %s", tostring(t)) end
  if not t then
    if type(err) ~= "string" or err:sub(1, #FILE + 2) ~= FILE .. ": " then H.fail("parse error does not name the file: %s", H.quote(err)) end
    if err:find("\n", 1, true) then H.fail("parse error is not one line: %s", H.quote(err)) end
    t = names.new_table()
  else
    local text = names.encode(t)
    local back, berr = names.parse(text, FILE)
    if not back then H.fail("encode/parse: %s does not parse back: %s", H.quote(text), tostring(berr)) end
    if not same_table(t, back) then H.fail("encode/parse changed the table: %s", H.quote(text)) end
    local pending = 0
    for _, e in ipairs(t.list) do if not e.replacement then pending = pending + 1 end end
    if t:pending() ~= pending then H.fail("pending() = %d, expected %d", t:pending(), pending) end
  end
  local list = parts[2] and H.split(parts[2], "\n") or { parts[1] }
  for _, name in ipairs(list) do check_name(t, name) end
  -- A character added without a replacement is then missing from every name holding it.
  for _, name in ipairs(list) do
    for _, c in ipairs(names.banned(name)) do t:add(c, nil) end
    check_name(t, name)
  end
end
