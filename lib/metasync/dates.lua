-- Dates in .NET custom format strings, the notation keyfactorDateFormat uses
-- ("M/d/yyyy h:mm:ss tt"). Only the tokens the old tool's users need are supported:
-- M MM d dd yyyy h hh H HH mm ss tt; text in single or double quotes and any other
-- character is literal. A date is a table {year, month, day, hour, min, sec}.
local M = {}

local TOKENS = { "yyyy", "MM", "M", "dd", "d", "HH", "H", "hh", "h", "mm", "ss", "tt" }

local cache = {}

-- compile(fmt) -> list of {tok=...} or {lit=...}
local function compile(fmt)
  local c = cache[fmt]
  if c then return c end
  c = {}
  local i, n = 1, #fmt
  while i <= n do
    local ch = fmt:sub(i, i)
    if ch == "'" or ch == '"' then
      local j = fmt:find(ch, i + 1, true) or (n + 1)
      c[#c + 1] = { lit = fmt:sub(i + 1, j - 1) }
      i = j + 1
    elseif ch == "\\" and i < n then
      c[#c + 1] = { lit = fmt:sub(i + 1, i + 1) }
      i = i + 2
    else
      local hit
      for _, t in ipairs(TOKENS) do
        if fmt:sub(i, i + #t - 1) == t then hit = t; break end
      end
      if hit then
        c[#c + 1] = { tok = hit }
        i = i + #hit
      else
        c[#c + 1] = { lit = ch }
        i = i + 1
      end
    end
  end
  cache[fmt] = c
  return c
end

local function leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end
local MDAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

function M.days_in_month(y, m)
  if m == 2 and leap(y) then return 29 end
  return MDAYS[m]
end

local function valid(t)
  return t.year >= 1 and t.year <= 9999 and t.month >= 1 and t.month <= 12
    and t.day >= 1 and t.day <= M.days_in_month(t.year, t.month)
    and t.hour >= 0 and t.hour <= 23 and t.min >= 0 and t.min <= 59
    and t.sec >= 0 and t.sec <= 59
end

-- Digit counts each numeric token accepts when parsing (min, max).
local WIDTH = { yyyy = { 4, 4 }, MM = { 1, 2 }, M = { 1, 2 }, dd = { 1, 2 }, d = { 1, 2 },
  HH = { 1, 2 }, H = { 1, 2 }, hh = { 1, 2 }, h = { 1, 2 }, mm = { 1, 2 }, ss = { 1, 2 } }

-- parse(s, fmt) -> date table, or nil, reason. The whole string must match (surrounding
-- whitespace aside); the result is range-checked, so "2/30/2025" is refused.
function M.parse(s, fmt)
  if type(s) ~= "string" or type(fmt) ~= "string" then return nil, "not a string" end
  s = s:match("^%s*(.-)%s*$")
  local t = { year = 1, month = 1, day = 1, hour = 0, min = 0, sec = 0 }
  local pm, h12
  local pos = 1
  for _, part in ipairs(compile(fmt)) do
    if part.lit then
      if s:sub(pos, pos + #part.lit - 1) ~= part.lit then
        return nil, string.format("'%s' does not match format '%s'", s, fmt)
      end
      pos = pos + #part.lit
    elseif part.tok == "tt" then
      local ap = s:sub(pos, pos + 1):upper()
      if ap ~= "AM" and ap ~= "PM" then
        return nil, string.format("'%s' does not match format '%s'", s, fmt)
      end
      pm = (ap == "PM")
      pos = pos + 2
    else
      local w = WIDTH[part.tok]
      local digits = s:match("^%d+", pos) or ""
      if #digits > w[2] then digits = digits:sub(1, w[2]) end
      if #digits < w[1] then
        return nil, string.format("'%s' does not match format '%s'", s, fmt)
      end
      local v = tonumber(digits)
      pos = pos + #digits
      local tok = part.tok
      if tok == "yyyy" then t.year = v
      elseif tok == "MM" or tok == "M" then t.month = v
      elseif tok == "dd" or tok == "d" then t.day = v
      elseif tok == "HH" or tok == "H" then t.hour = v
      elseif tok == "hh" or tok == "h" then h12 = v
      elseif tok == "mm" then t.min = v
      elseif tok == "ss" then t.sec = v end
    end
  end
  if pos <= #s then return nil, string.format("'%s' does not match format '%s'", s, fmt) end
  if h12 then
    if h12 < 1 or h12 > 12 then return nil, "hour out of range in '" .. s .. "'" end
    t.hour = h12 % 12 + ((pm and 12) or 0)
  elseif pm ~= nil and t.hour < 12 and pm then
    t.hour = t.hour + 12
  end
  if not valid(t) then return nil, string.format("'%s' is not a valid date", s) end
  return t
end

-- format(t, fmt) -> string
function M.format(t, fmt)
  local out = {}
  for _, part in ipairs(compile(fmt)) do
    local tok = part.tok
    if part.lit then out[#out + 1] = part.lit
    elseif tok == "yyyy" then out[#out + 1] = string.format("%04d", t.year)
    elseif tok == "MM" then out[#out + 1] = string.format("%02d", t.month)
    elseif tok == "M" then out[#out + 1] = tostring(t.month)
    elseif tok == "dd" then out[#out + 1] = string.format("%02d", t.day)
    elseif tok == "d" then out[#out + 1] = tostring(t.day)
    elseif tok == "HH" then out[#out + 1] = string.format("%02d", t.hour)
    elseif tok == "H" then out[#out + 1] = tostring(t.hour)
    elseif tok == "hh" or tok == "h" then
      local h = t.hour % 12
      if h == 0 then h = 12 end
      out[#out + 1] = tok == "hh" and string.format("%02d", h) or tostring(h)
    elseif tok == "mm" then out[#out + 1] = string.format("%02d", t.min)
    elseif tok == "ss" then out[#out + 1] = string.format("%02d", t.sec)
    elseif tok == "tt" then out[#out + 1] = t.hour < 12 and "AM" or "PM" end
  end
  return table.concat(out)
end

-- Formats tried after the caller's own: ISO first (unambiguous), then the US forms both APIs
-- use by default (Sectigo "MM/dd/yyyy", Keyfactor 25.1 "M/d/yyyy h:mm:ss tt").
local FALLBACK = { "yyyy-MM-dd", "yyyy-MM-ddTHH:mm:ss", "yyyy-MM-dd HH:mm:ss",
  "M/d/yyyy h:mm:ss tt", "M/d/yyyy H:mm:ss", "M/d/yyyy" }

-- parse_any(s, fmt) -> date table or nil. ISO timestamps may carry fractions and a zone
-- ("2025-07-23T00:00:00.000Z"); the zone is dropped because metadata dates are calendar days.
-- Dates repeat across an inventory (the same renewal dates on many certificates, every
-- comparison parsing both sides), so results are remembered per format: a bounded memo, whose
-- date tables are shared and must not be changed by callers.
local memo, memo_size, MEMO_MAX = {}, 0, 20000
local NOFMT = {}
local parse_uncached

function M.parse_any(s, fmt)
  if type(s) ~= "string" then return nil end
  local m = memo[fmt or NOFMT]
  if not m then
    m = {}
    memo[fmt or NOFMT] = m
  end
  local r = m[s]
  if r ~= nil then return r or nil end
  r = parse_uncached(s, fmt)
  if memo_size >= MEMO_MAX then memo, memo_size = {}, 0; memo[fmt or NOFMT] = {}; m = memo[fmt or NOFMT] end
  m[s] = r or false
  memo_size = memo_size + 1
  return r
end

function parse_uncached(s, fmt)
  s = s:match("^%s*(.-)%s*$")
  if fmt then
    local t = M.parse(s, fmt)
    if t then return t end
  end
  local iso = s:match("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d)[%.%d]*[Zz]?$")
    or s:match("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d)[%.%d]*[%+%-]%d%d:?%d%d$")
  if iso then return M.parse(iso, "yyyy-MM-ddTHH:mm:ss") end
  -- A day-first format (d/M/yyyy) must never fall back to month-first forms: "7/12/2025" would be
  -- read as the wrong day without a word. Only the unambiguous ISO forms are tried then.
  local dpos, mpos = fmt and fmt:find("d", 1, true), fmt and fmt:find("M", 1, true)
  local day_first = dpos and mpos and dpos < mpos
  for _, f in ipairs(FALLBACK) do
    if not (day_first and f:sub(1, 1) == "M") then
      local t = M.parse(s, f)
      if t then return t end
    end
  end
  return nil
end

-- equal(a, b) -> true when both dates are the same instant to the second.
function M.equal(a, b)
  return a.year == b.year and a.month == b.month and a.day == b.day
    and a.hour == b.hour and a.min == b.min and a.sec == b.sec
end

return M
