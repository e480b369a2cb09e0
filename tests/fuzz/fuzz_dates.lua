-- Fuzz target: metasync.dates, the .NET custom date formats of keyfactorDateFormat, and the
-- date conversions of metasync.values that use them.
-- Input: a format, "\n--\n", a value (without the separator, the whole input is the value and
-- the format is the stock "M/d/yyyy h:mm:ss tt").
-- Properties:
--   * parse, parse_any, format and the value conversions never raise (on strings);
--   * a parsed date is a valid calendar date and time (integers, in range);
--   * format(parse(s)) parses back to the same date in ISO form, and in the fuzzed format when
--     that format is unambiguous (see round_trips below);
--   * to_keyfactor / to_sectigo of a date give yyyy-MM-dd or nil and a reason.
local H = require("harness").setup(...)
local dates, values

local function load()
  package.loaded["metasync.dates"], package.loaded["metasync.values"] = nil, nil
  dates, values = require("metasync.dates"), require("metasync.values")
end
load()
-- dates caches every format it compiles, without bound: harmless for the one format a
-- configuration has, but every input here brings a new one. A fresh module now and then keeps
-- the process from growing (the cache is not what is under test).
local reset = H.every(20000, load)

local function valid(t)
  for _, k in ipairs { "year", "month", "day", "hour", "min", "sec" } do
    if math.type(t[k]) ~= "integer" then return false end
  end
  return t.year >= 1 and t.year <= 9999 and t.month >= 1 and t.month <= 12 and t.day >= 1
    and t.day <= dates.days_in_month(t.year, t.month) and t.hour >= 0 and t.hour <= 23
    and t.min >= 0 and t.min <= 59 and t.sec >= 0 and t.sec <= 59
end

-- The format's parts, as dates.lua compiles them (quoted text and \x are literal; tokens are
-- matched longest first). Kept here on purpose: the oracle must not share the code it checks.
local TOKENS = { "yyyy", "MM", "M", "dd", "d", "HH", "H", "hh", "h", "mm", "ss", "tt" }
local function parts_of(fmt)
  local out, i, n = {}, 1, #fmt
  while i <= n do
    local ch = fmt:sub(i, i)
    if ch == "'" or ch == '"' then
      local j = fmt:find(ch, i + 1, true) or (n + 1)
      out[#out + 1] = { lit = fmt:sub(i + 1, j - 1) }
      i = j + 1
    elseif ch == "\\" and i < n then
      out[#out + 1] = { lit = fmt:sub(i + 1, i + 1) }
      i = i + 2
    else
      local hit
      for _, t in ipairs(TOKENS) do
        if fmt:sub(i, i + #t - 1) == t then hit = t; break end
      end
      out[#out + 1] = hit and { tok = hit } or { lit = ch }
      i = i + (hit and #hit or 1)
    end
  end
  return out
end

-- round_trips(fmt): format then parse gives the date back, for formats a person would write:
-- a variable-width number (M d H h) is never followed directly by a digit (a number or a
-- literal digit: "Md" prints 1/12 and 11/2 alike), the hour is not given twice in both clocks
-- (H and h), and there is no leading or trailing white space (parse trims the value).
local VARIABLE = { M = true, d = true, H = true, h = true }
local NUMERIC = { yyyy = true, MM = true, M = true, dd = true, d = true, HH = true, H = true,
  hh = true, h = true, mm = true, ss = true }
local function round_trips(fmt)
  if fmt:match("^%s") or fmt:match("%s$") then return false end
  local parts, h24, h12 = parts_of(fmt), false, false
  for i, p in ipairs(parts) do
    if p.tok == "H" or p.tok == "HH" then h24 = true end
    if p.tok == "h" or p.tok == "hh" then h12 = true end
    if VARIABLE[p.tok] then
      local j = i + 1
      while parts[j] and parts[j].lit == "" do j = j + 1 end
      local nxt = parts[j]
      if nxt and (NUMERIC[nxt.tok] or (nxt.lit and nxt.lit:match("^%d"))) then return false end
    end
  end
  -- White space the format prints first or last (in a literal, maybe quoted) is trimmed away
  -- by parse, which then misses the literal.
  local nonempty = {}
  for _, p in ipairs(parts) do
    if p.tok or p.lit ~= "" then nonempty[#nonempty + 1] = p end
  end
  local first, last = nonempty[1], nonempty[#nonempty]
  if first and first.lit and first.lit:match("^%s") then return false end
  if last and last.lit and last.lit:match("%s$") then return false end
  return not (h24 and h12)
end

local function check_date(t, what)
  if not valid(t) then H.fail("%s gave an invalid date %04d-%02d-%02d %02d:%02d:%02d", what,
    tonumber(t.year) or -1, tonumber(t.month) or -1, tonumber(t.day) or -1, tonumber(t.hour) or -1,
    tonumber(t.min) or -1, tonumber(t.sec) or -1) end
end

local ISO = "yyyy-MM-ddTHH:mm:ss"

return function(data)
  reset()
  local parts = H.split(data, "\n--\n", 2)
  local fmt, s
  if parts[2] then fmt, s = parts[1], parts[2] else fmt, s = "M/d/yyyy h:mm:ss tt", parts[1] end
  local ok, t, why = pcall(dates.parse, s, fmt)
  if not ok then H.fail("parse(%s, %s) raised: %s", H.quote(s), H.quote(fmt), tostring(t)) end
  if t then
    check_date(t, string.format("parse(%s, %s)", H.quote(s), H.quote(fmt)))
    local ok2, out = pcall(dates.format, t, fmt)
    if not ok2 or type(out) ~= "string" then H.fail("format(.., %s) raised: %s", H.quote(fmt), tostring(out)) end
    local iso = dates.format(t, ISO)
    local back = dates.parse(iso, ISO)
    if not back or not dates.equal(back, t) then H.fail("ISO round trip of %s failed: %s", H.quote(s), iso) end
    if round_trips(fmt) then
      local again, err = dates.parse(out, fmt)
      if not again then H.fail("format %s: %s does not parse back: %s", H.quote(fmt), H.quote(out), tostring(err)) end
      if not dates.equal(again, t) then
        H.fail("format %s: %s parses back as %s, not %s", H.quote(fmt), H.quote(out), dates.format(again, ISO), iso)
      end
    end
  elseif type(why) ~= "string" then
    H.fail("parse(%s, %s) failed without a reason", H.quote(s), H.quote(fmt))
  end
  for _, f in ipairs { fmt, false } do
    local ok3, d = pcall(dates.parse_any, s, f or nil)
    if not ok3 then H.fail("parse_any(%s, %s) raised: %s", H.quote(s), H.quote(f), tostring(d)) end
    if d then check_date(d, "parse_any(" .. H.quote(s) .. ")") end
  end
  -- The conversions a run applies to a date value, both ways.
  for _, call in ipairs {
    { "to_keyfactor", function() return values.to_keyfactor(s, 3, { date_format = fmt }) end },
    { "to_sectigo", function() return values.to_sectigo(s, "DATE", { date_format = fmt }) end },
  } do
    local ok4, v, reason = pcall(call[2])
    if not ok4 then H.fail("%s(%s) raised: %s", call[1], H.quote(s), tostring(v)) end
    if v ~= nil and not (type(v) == "string" and v:match("^%d%d%d%d%-%d%d%-%d%d$")) then
      H.fail("%s(%s) = %s is not yyyy-MM-dd", call[1], H.quote(s), H.quote(v))
    end
    if v == nil and type(reason) ~= "string" then H.fail("%s(%s) failed without a reason", call[1], H.quote(s)) end
  end
  for _, other in ipairs { "2025-07-23", "7/23/2025 12:00:00 AM", fmt } do
    local ok5, e = pcall(values.equal, s, other, "date", fmt)
    if not ok5 then H.fail("values.equal(%s, %s) raised: %s", H.quote(s), H.quote(other), tostring(e)) end
    local ok6, c = pcall(values.canonical, s, "date", fmt)
    if not ok6 then H.fail("values.canonical(%s) raised: %s", H.quote(s), tostring(c)) end
  end
end
