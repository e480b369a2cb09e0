-- The checks config.lua and fieldsconf.lua share: value conversions that say what was
-- expected, case-insensitive key lookup (the old tool's binder ignored case) and unknown-key
-- warnings with a "did you mean". A module of its own so neither file requires the other.
local json = require("metasync.json")
local conffile = require("metasync.conffile")

local M = {}

-- The keys of a fields.json entry.
M.FIELD_KEYS = { "sectigoFieldName", "keyfactorMetadataFieldName", "keyfactorDescription",
  "keyfactorDataType", "keyfactorHint", "keyfactorValidation", "keyfactorEnrollment",
  "keyfactorMessage", "keyfactorOptions", "keyfactorDefaultValue", "keyfactorDisplayOrder",
  "keyfactorCaseSensitive", "keyfactorAllowAPI", "syncDirection" }

local LEVELS = { trace = 1, debug = 1, info = 1, warn = 1, error = 1, fatal = 1 }

-- levenshtein(a, b[, limit]) -> the edit distance between a and b, ignoring case; with limit,
-- any distance of at least limit comes back as limit. Only the band of cells within limit of
-- the diagonal can stay under it (Ukkonen), so a row costs 2 x limit cells, and a row whose
-- every cell reached limit ends the search: a key nowhere near a candidate costs a few cells
-- instead of the whole table (a file of junk keys made this the loader's main cost).
local byte = string.byte
function M.levenshtein(a, b, limit)
  a, b = a:lower(), b:lower()
  local la, lb = #a, #b
  limit = limit or math.max(la, lb) + 1
  if math.abs(la - lb) >= limit then return limit end
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j < limit and j or limit end
  for i = 1, la do
    local ca = byte(a, i)
    local lo, hi = math.max(1, i - limit + 1), math.min(lb, i + limit - 1)
    -- the cell left of the band: the real value when the band starts at column 1
    cur[lo - 1] = lo == 1 and (i < limit and i or limit) or limit
    local row_min = cur[lo - 1]
    for j = lo, hi do
      local d = prev[j - 1] + (ca == byte(b, j) and 0 or 1)
      local up, left = prev[j] + 1, cur[j - 1] + 1
      if up < d then d = up end
      if left < d then d = left end
      if d > limit then d = limit end
      cur[j] = d
      if d < row_min then row_min = d end
    end
    -- right of the band: read as "up" by the next row
    if hi < lb then cur[hi + 1] = limit end
    -- every later row is at least this row's minimum
    if row_min >= limit then return limit end
    prev, cur = cur, prev
  end
  return prev[lb]
end

-- Histograms of the lower-cased bytes of a string. Each edit removes at most one byte from
-- each side's surplus over the other's, so max(surplus of a, surplus of b) is a lower bound of
-- the distance, found in one pass; most junk keys are ruled out by it without the table.
local function histogram(s)
  local h = {}
  for i = 1, #s do
    local c = byte(s, i)
    h[c] = (h[c] or 0) + 1
  end
  return h
end
-- The candidates are the loader's known key names, a fixed set, so this stays small.
local cand_hist = {}

local function distance_bound(ha, la, hb, lb)
  local common = 0
  for c, n in pairs(ha) do
    local m = hb[c]
    if m then common = common + (n < m and n or m) end
  end
  local ea, eb = la - common, lb - common
  return ea > eb and ea or eb
end

-- suggest(key, candidates) -> closest candidate within a small edit distance, or nil. A key
-- longer than any real one gets no suggestion (the distance is quadratic in its length).
function M.suggest(key, candidates)
  if #key > 64 then return nil end
  local best, bd = nil, math.max(2, #key // 3) + 1
  local low = key:lower()
  local hk = histogram(low)
  for _, c in ipairs(candidates) do
    local lc = c:lower()
    local hc = cand_hist[lc]
    if not hc then hc = histogram(lc); cand_hist[lc] = hc end
    if distance_bound(hk, #low, hc, #lc) < bd then
      local d = M.levenshtein(low, lc, bd)
      if d < bd then best, bd = c, d end
    end
  end
  return best
end

-- show(s[, max]) -> s fit for a one-line message: control bytes escaped, long text cut.
function M.show(s, max)
  s, max = tostring(s), max or 60
  if #s > max then s = s:sub(1, max - 3) .. "..." end
  return (s:gsub("%c", function(c) return string.format("\\x%02X", c:byte()) end))
end

local function null(v) return v == nil or v == json.null end

-- is_list(v): a JSON array (an object such as {"a":1} is not a list, even an empty one)
local function is_list(v)
  if type(v) ~= "table" then return false end
  if json.is_array(v) then return true end
  if getmetatable(v) ~= nil then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n > 0 and n == #v
end
M.is_list = is_list

local NUL = "must not contain a NUL byte"

-- Conversions: each returns the value, or nil plus what was expected. spec is the key's entry
-- in config.KEYS (or nil).
local CONV = {}
function CONV.str(v)
  if type(v) == "string" then
    -- A NUL would be cut by every C API the value reaches (curl, headers, file names).
    if v:find("\0", 1, true) then return nil, NUL end
    return v
  end
  if type(v) == "number" then return tostring(v) end
  return nil, "expected a string"
end

-- url: http or https in any case (returned lower-case: the clients match "^https?://"), a
-- host, a port in 1..65535 when given, and no user:password@ (it would end up in logs and
-- in every request line; the login keys exist for that). The message never repeats the URL.
local URL = "expected a URL (http:// or https://)"
function CONV.url(v, spec)
  if type(v) ~= "string" then return nil, URL end
  if v:find("\0", 1, true) then return nil, NUL end
  local scheme, rest = v:match("^(%a+)://(.*)$")
  if not scheme or v:find("%s") then return nil, URL end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil, URL end
  local authority = rest:match("^[^/?#]*")
  if authority:find("@", 1, true) then
    return nil, "expected a URL without a user name or password" ..
      (spec and spec.hint and string.format(" (put them in %s)", spec.hint) or "")
  end
  local host, port
  if authority:sub(1, 1) == "[" then host, port = authority:match("^(%[[%x:%.]+%])(.*)$")
  else host, port = authority:match("^([^:]*)(.*)$") end
  if not host or host == "" then return nil, URL end
  if port ~= "" then
    local n = tonumber(port:match("^:(%d+)$") or "")
    if not n or n < 1 or n > 65535 then return nil, "expected a URL whose port is from 1 to 65535" end
  end
  return scheme .. "://" .. rest
end
function CONV.bool(v)
  if type(v) == "boolean" then return v end
  if type(v) == "string" then
    local s = v:lower():match("^%s*(.-)%s*$")
    if s == "true" then return true elseif s == "false" then return false end
  end
  return nil, "expected true or false"
end
-- num: finite only. An infinite timeout would reach curl as an out-of-range long (no timeout
-- at all); every numeric key also has a range in config.KEYS.
function CONV.num(v)
  if type(v) ~= "number" and type(v) ~= "string" then return nil, "expected a number" end
  local n = tonumber(v)
  if n and n == n and n ~= math.huge and n ~= -math.huge then return n end
  return nil, n and "expected a finite number" or "expected a number"
end
function CONV.int(v)
  if type(v) ~= "number" and type(v) ~= "string" then return nil, "expected an integer" end
  local n = tonumber(v)
  if n and math.tointeger(n) then return math.tointeger(n) end
  return nil, "expected an integer"
end
-- intlist: a JSON list, or a comma-joined string; spec.item_min/item_max bound each item.
function CONV.intlist(v, spec)
  local lo, hi = spec and spec.item_min, spec and spec.item_max
  local what = lo and string.format("expected a list of integers from %d to %d", lo, hi) or "expected a list of integers"
  local items = {}
  if type(v) == "string" then
    for part in v:gmatch("[^,%s]+") do items[#items + 1] = part end
  elseif is_list(v) then
    items = v
  else
    return nil, what
  end
  local out = {}
  for i, x in ipairs(items) do
    local n = CONV.int(x)
    if not n or (lo and (n < lo or n > hi)) then return nil, string.format("%s (item %d)", what, i) end
    out[#out + 1] = n
  end
  return out
end
-- changes: a count of certificates ("50" or 50) or a percentage ("10%"), as
-- {count = N} (N >= 0) or {percent = P} (0 < P <= 100).
local CHANGES = "expected a number of certificates or a percentage such as 10%"
function CONV.changes(v)
  local s = v
  if type(v) == "number" then s = math.tointeger(v) and tostring(math.tointeger(v)) or "" end
  if type(s) ~= "string" then return nil, CHANGES end
  s = s:match("^%s*(.-)%s*$")
  local p = s:match("^(%d+%.?%d*)%s*%%$")
  if p then
    local n = tonumber(p)
    if n > 0 and n <= 100 then return { percent = n } end
    return nil, "expected a percentage more than 0% and at most 100%"
  end
  local n = s:match("^%d+$") and math.tointeger(tonumber(s))
  if n then return { count = n } end
  return nil, CHANGES
end
-- enum: one of spec.values, any case.
function CONV.enum(v, spec)
  if type(v) == "string" then
    for _, x in ipairs(spec.values) do
      if x:lower() == v:lower() then return x end
    end
  end
  return nil, "expected one of " .. table.concat(spec.values, ", ")
end
function CONV.level(v)
  if type(v) == "string" and LEVELS[v:lower()] then return v:lower() end
  return nil, "expected one of trace, debug, info, warn, error, fatal"
end

-- key_near(text, err) -> the last object key before the decoder's "line L column C", so a
-- value the decoder refuses (1e999 is out of range) is reported with its key.
local function key_near(text, err)
  local l, c = tostring(err):match("line (%d+) column (%d+)")
  if not l then return nil end
  local pos, line = 1, 1
  while line < tonumber(l) do
    local nl = text:find("\n", pos, true)
    if not nl then break end
    pos, line = nl + 1, line + 1
  end
  local key
  for k in text:sub(1, pos + tonumber(c) - 1):gmatch('"([%w_%.%-]+)"%s*:') do key = k end
  return key
end

-- decode_file(path) -> doc, info | nil, one-line error, code ("absent" when nothing is at
-- the path, "error" otherwise). Only regular files up to conffile.MAX_BYTES are read.
local function decode_file(path)
  local text, info, code = conffile.read(path)
  if not text then return nil, string.format("%s: %s", path, info), code end
  local doc, err = json.decode(text)
  if doc == nil then
    local key = key_near(text, err)
    return nil, string.format("%s: malformed JSON: %s%s", path, M.show(err, 200),
      key and string.format(" (near key '%s')", key) or ""), "error"
  end
  return doc, info
end

-- pick(obj, key) -> value by case-insensitive key (the old tool's binder ignored case). The
-- lower-cased index of an object is built once (a loader asks for every known key, most of
-- them absent, and scanning the object for each cost more than the rest of the load). Of two
-- keys that differ only in case, the first in byte order wins, whatever the table's order.
-- The objects are decoded files, only read; a key added after the first miss would not be seen.
local lowered = setmetatable({}, { __mode = "k" })
function M.pick(obj, key)
  if obj[key] ~= nil then return obj[key], key end
  local index = lowered[obj]
  if not index then
    index = {}
    for k in pairs(obj) do
      if type(k) == "string" then
        local low = k:lower()
        local had = index[low]
        if had == nil or k < had then index[low] = k end
      end
    end
    lowered[obj] = index
  end
  local k = index[key:lower()]
  if k ~= nil then return obj[k], k end
end

-- unknown_keys: one warning per unknown key, at most MAX_UNKNOWN of them (a file of junk keys
-- would otherwise flood the log and cost a suggestion search each).
local MAX_UNKNOWN = 20
local MAX_SUGGESTIONS = 10
local searches = setmetatable({}, { __mode = "k" }) -- warnings list of a load -> searches made
function M.unknown_keys(obj, known, where, warnings)
  local set, extra = {}, 0
  for _, k in ipairs(known) do set[k:lower()] = true end
  local list = {}
  for k in pairs(obj) do
    if type(k) == "string" and not set[k:lower()] and k:sub(1, 1) ~= "_" then list[#list + 1] = k end
  end
  table.sort(list)
  for i, k in ipairs(list) do
    if i > MAX_UNKNOWN then extra = extra + 1
    else
      -- Past MAX_SUGGESTIONS searches in one load (one warnings list), the rest go without a
      -- "did you mean": a file of hundreds of junk objects must not cost a search per key.
      local done = searches[warnings] or 0
      local s = done < MAX_SUGGESTIONS and M.suggest(k, known)
      searches[warnings] = done + 1
      warnings[#warnings + 1] = string.format("%s: unknown key '%s'%s (ignored)", where, M.show(k),
        s and string.format(", did you mean '%s'?", s) or "")
    end
  end
  if extra > 0 then
    warnings[#warnings + 1] = string.format("%s: %d more unknown keys (ignored)", where, extra)
  end
end

M.null, M.CONV, M.decode_file = null, CONV, decode_file
return M
