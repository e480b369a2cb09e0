-- Small helpers shared by the simulator modules: JSON shim, PRNG, dates, serials, encodings.
local U = {}

-- JSON: the engine's module when the host provides it; plain lua-cjson otherwise (dev only:
-- it cannot mark empty arrays, and numbers come back as floats, hence U.int below).
local ok, mj = pcall(require, "metasync.json")
if ok then
  U.json = mj
else
  local cj = require("cjson")
  U.json = { decode = function(s)
    local okd, v = pcall(cj.decode, s)
    if okd then return v end
    return nil, tostring(v)
  end, encode = function(v) return cj.encode(v) end, null = cj.null,
    array = function(t) return t or {} end }
end
local json = U.json
U.null = json.null

function U.array(t) return json.array(t or {}) end

-- True for a decoded JSON array (an empty one included when the decoder marks arrays).
function U.is_array(v)
  if type(v) ~= "table" then return false end
  if json.is_array then return json.is_array(v) end
  return #v > 0
end

function U.encode(v) return json.encode(v) end

-- The host's native helpers, when this runs inside metasync-sim (its package.preload.sim is C;
-- elsewhere, e.g. a harness under `metasync run`, the Lua fallbacks below serve).
local native
do
  local pre = package.preload and package.preload.sim
  if pre and debug.getinfo(pre, "S").what == "C" then
    local okn, m = pcall(require, "sim")
    if okn and type(m) == "table" then native = m end
  end
end

-- A JSON string literal, exactly as the encoder writes a string (for JSON assembled from pieces).
U.jstr = native and native.jstr or json.encode

-- Decodes untrusted text; never raises. Returns value or nil, message.
function U.decode(s)
  if type(s) ~= "string" or s == "" then return nil, "empty body" end
  local okd, v, err = pcall(json.decode, s)
  if not okd then return nil, tostring(v) end
  if v == nil then return nil, err or "invalid JSON" end
  return v
end

-- An integer from a JSON number or a decimal string; nil when it is not one or out of int32.
function U.int(v, lo, hi)
  lo, hi = lo or -2147483648, hi or 2147483647
  local n
  if type(v) == "number" then
    n = math.tointeger(v)
  elseif type(v) == "string" and #v <= 12 and v:match("^%s*[-+]?%d+%s*$") then
    n = math.tointeger(tonumber(v))
  end
  if n and n >= lo and n <= hi then return n end
  return nil
end

function U.lower(s) return type(s) == "string" and s:lower() or s end

function U.trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- Deterministic PRNG (xorshift64*), independent of math.random's implementation.
local Rng = {}
Rng.__index = Rng

function U.rng(seed)
  local x = (math.tointeger(seed) or 0) * 0x2545F4914F6CDD1D + 0x1D872B41
  if x == 0 then x = 88172645463325252 end
  local r = setmetatable({ x = x }, Rng)
  for _ = 1, 8 do r:next() end
  return r
end

function Rng:next()
  local x = self.x
  x = x ~ (x << 13)
  x = x ~ (x >> 7)
  x = x ~ (x << 17)
  self.x = x
  return x >> 11 -- 53 non-negative bits
end

-- Uniform float in [0,1).
function Rng:float() return self:next() / 9007199254740992.0 end

-- Integer in [a,b] (or [1,a]).
function Rng:int(a, b)
  if not b then a, b = 1, a end
  return a + self:next() % (b - a + 1)
end

function Rng:pick(t) return t[self:int(#t)] end

local HEX = {}
for b = 0, 255 do HEX[b] = string.format("%02X", b) end

-- nbytes random bytes as uppercase hex (the same draws as nbytes calls of self:int(0, 255)).
local hexbuf = {}
function Rng:hex(nbytes)
  local out, x = hexbuf, self.x
  for i = 1, nbytes do -- Rng:next inlined
    x = x ~ (x << 13)
    x = x ~ (x >> 7)
    x = x ~ (x << 17)
    out[i] = HEX[(x >> 11) % 256]
  end
  self.x = x
  return table.concat(out, "", 1, nbytes)
end

-- Dates. Sectigo dates are day numbers since 1970-01-01; Keyfactor ones epoch seconds.
function U.days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

function U.civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return m <= 2 and y + 1 or y, m, d
end

local function valid_ymd(y, m, d)
  if m < 1 or m > 12 or d < 1 or d > 31 or y < 1 or y > 9999 then return false end
  local y2, m2, d2 = U.civil_from_days(U.days_from_civil(y, m, d))
  return y2 == y and m2 == m and d2 == d
end
U.valid_ymd = valid_ymd

-- "yyyy-MM-dd" strictly -> day number, or nil.
function U.parse_ymd(s)
  if type(s) ~= "string" then return nil end
  local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if not valid_ymd(y, m, d) then return nil end
  return U.days_from_civil(y, m, d)
end

-- Lenient date(-time) parser -> epoch seconds, has_time. Accepts yyyy-MM-dd, ISO 8601 with
-- optional fraction and Z/offset, M/d/yyyy with optional "h:mm:ss AM".
function U.parse_datetime(s)
  if type(s) ~= "string" or #s > 40 then return nil end
  s = U.trim(s)
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d?)%-(%d%d?)(.*)$")
  local H, M, S, off = 0, 0, 0, 0
  local has_time = false
  if y then
    if rest ~= "" then
      local h, mi, se, frac, tz = rest:match("^[T ](%d%d?):(%d%d):?(%d?%d?)(%.?%d*)(.*)$")
      if not h then return nil end
      H, M, S = tonumber(h), tonumber(mi), tonumber(se) or 0
      has_time = true
      if frac ~= "" and not frac:match("^%.%d+$") then return nil end
      if tz ~= "" and tz ~= "Z" then
        local sign, oh, om = tz:match("^([+-])(%d%d):?(%d%d)$")
        if not sign then return nil end
        off = (tonumber(oh) * 60 + tonumber(om)) * 60 * (sign == "-" and -1 or 1)
      end
    end
  else
    mo, d, y, rest = s:match("^(%d%d?)/(%d%d?)/(%d%d%d%d)(.*)$")
    if not mo then return nil end
    if rest ~= "" then
      local h, mi, se, ampm = rest:match("^ (%d%d?):(%d%d):?(%d?%d?)%s*([AaPp]?[Mm]?)$")
      if not h then return nil end
      H, M, S = tonumber(h), tonumber(mi), tonumber(se) or 0
      has_time = true
      ampm = ampm:upper()
      if ampm == "PM" and H < 12 then H = H + 12 elseif ampm == "AM" and H == 12 then H = 0 end
    end
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if not valid_ymd(y, mo, d) or H > 23 or M > 59 or S > 59 then return nil end
  return U.days_from_civil(y, mo, d) * 86400 + H * 3600 + M * 60 + S - off, has_time
end

function U.ymd(days)
  local y, m, d = U.civil_from_days(days)
  return string.format("%04d-%02d-%02d", y, m, d)
end

local function iso(secs)
  local days = secs // 86400
  local r = secs - days * 86400
  local y, m, d = U.civil_from_days(days)
  return string.format("%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, r // 3600, r % 3600 // 60, r % 60)
end
U.iso = native and native.iso or iso

-- Java-style date pattern -> compiled formatter(days) or nil, error.
local pattern_cache, pattern_count = {}, 0
function U.date_formatter(pat)
  local f = pattern_cache[pat]
  if f then return f end
  if #pat > 64 then return nil, "pattern too long" end
  local parts, i = {}, 1
  while i <= #pat do
    local c = pat:sub(i, i)
    if c == "'" then
      local j = pat:find("'", i + 1, true)
      if not j then return nil, "unterminated quote" end
      parts[#parts + 1] = pat:sub(i + 1, j - 1)
      i = j + 1
    elseif c:match("%a") then
      local j = i
      while pat:sub(j + 1, j + 1) == c do j = j + 1 end
      local tok = pat:sub(i, j)
      local known = { yyyy = 1, yy = 1, MM = 1, M = 1, dd = 1, d = 1, HH = 1, mm = 1, ss = 1, SSS = 1 }
      if not known[tok] then return nil, "unknown pattern letters " .. tok end
      parts[#parts + 1] = { tok }
      i = j + 1
    else
      parts[#parts + 1] = c
      i = i + 1
    end
  end
  -- Rendering is pure in the day, so each formatter remembers the days it rendered.
  local memo, nmemo = {}, 0
  f = function(days)
    local hit = memo[days]
    if hit then return hit end
    local y, m, d = U.civil_from_days(days)
    local out = {}
    for k, p in ipairs(parts) do
      if type(p) == "string" then out[k] = p
      else
        local t = p[1]
        if t == "yyyy" then out[k] = string.format("%04d", y)
        elseif t == "yy" then out[k] = string.format("%02d", y % 100)
        elseif t == "MM" then out[k] = string.format("%02d", m)
        elseif t == "M" then out[k] = tostring(m)
        elseif t == "dd" then out[k] = string.format("%02d", d)
        elseif t == "d" then out[k] = tostring(d)
        elseif t == "SSS" then out[k] = "000"
        else out[k] = "00" end
      end
    end
    local s = table.concat(out)
    if nmemo >= 100000 then memo, nmemo = {}, 0 end
    memo[days], nmemo = s, nmemo + 1
    return s
  end
  if pattern_count < 64 then
    pattern_cache[pat] = f
    pattern_count = pattern_count + 1
  end
  return f
end

-- Keyfactor 25.1 metadata date rendering: "M/d/yyyy h:mm:ss tt" (dates carry midnight).
function U.kf_date(ymd, fmt)
  if fmt == "yyyy-MM-dd" then return ymd end
  local y, m, d = ymd:match("^(%d+)%-(%d+)%-(%d+)$")
  return string.format("%d/%d/%d 12:00:00 AM", tonumber(m), tonumber(d), tonumber(y))
end

-- Serial numbers: drop ':' and whitespace, uppercase, strip leading zeros.
function U.norm_serial(s)
  if type(s) ~= "string" then return "" end
  return (s:gsub("[:%s]", ""):upper():gsub("^0+", ""))
end

function U.colon_hex(hex)
  if #hex % 2 == 1 then hex = "0" .. hex end
  return (hex:gsub("(%x%x)", "%1:"):sub(1, -2))
end

local b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64dec = {}
for i = 1, 64 do b64dec[b64:byte(i)] = i - 1 end

function U.b64decode(s)
  if #s > 4096 then return nil end
  s = s:gsub("%s", ""):gsub("=+$", "")
  local out, bits, nbits = {}, 0, 0
  for i = 1, #s do
    local v = b64dec[s:byte(i)]
    if not v then return nil end
    bits = (bits << 6) | v
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((bits >> nbits) & 0xFF)
    end
  end
  return table.concat(out)
end

function U.b64encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local idx = { n >> 18, (n >> 12) & 63, (n >> 6) & 63, n & 63 }
    for k = 1, 4 do out[#out + 1] = b64:sub(idx[k] + 1, idx[k] + 1) end
    if not b then out[#out], out[#out - 1] = "=", "=" elseif not c then out[#out] = "=" end
  end
  return table.concat(out)
end

local function pct(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- application/x-www-form-urlencoded -> name->value (last wins).
function U.form(body)
  local t = {}
  if type(body) ~= "string" or #body > 65536 then return t end
  for pair in body:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    t[pct(k)] = pct(v)
  end
  return t
end

function U.is_email(s)
  return type(s) == "string" and #s <= 320 and s:match("^[%w%.%%%+%-_']+@[%w%-]+%.[%w%.%-]+$") ~= nil
    and not s:find("..", 1, true)
end

-- Text echoed into an error message: clipped, and never invalid UTF-8 or control characters.
function U.clean(s, max)
  s = tostring(s):sub(1, max or 256)
  if not utf8.len(s) then s = s:gsub("[\128-\255]", "?") end
  return (s:gsub("[%c]", "?"))
end

-- Copies a plain tree (no cycles) so dumps never alias live state.
function U.copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = U.copy(x) end
  return t
end

return U
