-- Keyfactor Command query language: `Field -op "value"` terms joined by AND/OR (AND binds
-- tighter) with parentheses. compile(query, resolve, today) -> predicate(item) | nil, message.
-- resolve(name) -> {kind = "string"|"number"|"date", get = function(item) ... end} or nil.
local U = require("util")

local Q = {}

local STRING_OPS = { eq = 1, ne = 1, contains = 1, notcontains = 1, startswith = 1, endswith = 1,
  lt = 1, le = 1, gt = 1, ge = 1 }
local ORDER_OPS = { eq = 1, ne = 1, lt = 1, le = 1, gt = 1, ge = 1 }
local MAX_LEN, MAX_DEPTH, MAX_TOKENS = 8192, 64, 2000

local function tokenize(q)
  local toks, i, n = {}, 1, #q
  while i <= n do
    local c = q:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif c == "(" or c == ")" then
      toks[#toks + 1] = { t = c, pos = i }
      i = i + 1
    elseif c == '"' or c == "'" then
      local buf, j = {}, i + 1
      while true do
        local d = q:sub(j, j)
        if d == "" then return nil, "unterminated string starting at position " .. i end
        if d == "\\" and j < n then
          buf[#buf + 1] = q:sub(j + 1, j + 1)
          j = j + 2
        elseif d == c then
          if q:sub(j + 1, j + 1) == c then buf[#buf + 1] = c; j = j + 2 else break end
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      toks[#toks + 1] = { t = "str", v = table.concat(buf), pos = i }
      i = j + 1
    else
      local j = i
      while j <= n and not q:sub(j, j):match("[%s()\"']") do j = j + 1 end
      local w = q:sub(i, j - 1)
      local op = w:match("^%-(%a+)$")
      if op then toks[#toks + 1] = { t = "op", v = op:lower(), pos = i }
      else
        local up = w:upper()
        if up == "AND" or up == "OR" then toks[#toks + 1] = { t = up, pos = i }
        else toks[#toks + 1] = { t = "word", v = w, pos = i } end
      end
      i = j
    end
    if #toks > MAX_TOKENS then return nil, "query too long" end
  end
  return toks
end

-- Date literal -> [lo, hi) epoch-second range; a date-time gives a one-second range.
local function date_range(v, today)
  local up = v:upper()
  local sign, nd = up:match("^%%TODAY([%+%-]?)(%d*)%%$")
  if sign then
    if (sign == "") ~= (nd == "") or #nd > 6 then return nil end
    local d = today + (sign == "-" and -tonumber(nd) or sign == "+" and tonumber(nd) or 0)
    return d * 86400, (d + 1) * 86400
  end
  local secs, has_time = U.parse_datetime(v)
  if not secs then return nil end
  if has_time then return secs, secs + 1 end
  return secs, secs + 86400
end

local function compare_term(field, name, op, tok, today)
  local v = tok.v
  if tok.t == "word" and v:upper() == "NULL" then
    if op ~= "eq" and op ~= "ne" then return nil, "NULL can only be used with -eq or -ne" end
    local want_null = op == "eq"
    local get = field.get
    return function(item)
      local x = get(item)
      return (x == nil or x == "") == want_null
    end
  end
  local get = field.get
  if field.kind == "number" then
    if not ORDER_OPS[op] then return nil, "operator -" .. op .. " is not valid for field " .. name end
    local num = tonumber(v)
    if not num then return nil, "'" .. v .. "' is not a valid number for field " .. name end
    return function(item)
      local x = tonumber(get(item))
      if x == nil then return op == "ne" end
      if op == "eq" then return x == num elseif op == "ne" then return x ~= num
      elseif op == "lt" then return x < num elseif op == "le" then return x <= num
      elseif op == "gt" then return x > num else return x >= num end
    end
  elseif field.kind == "date" then
    if not ORDER_OPS[op] then return nil, "operator -" .. op .. " is not valid for field " .. name end
    local lo, hi = date_range(v, today)
    if not lo then return nil, "'" .. v .. "' is not a valid date for field " .. name end
    return function(item)
      local x = get(item)
      if x == nil then return op == "ne" end
      if op == "eq" then return x >= lo and x < hi elseif op == "ne" then return x < lo or x >= hi
      elseif op == "lt" then return x < lo elseif op == "le" then return x < hi
      elseif op == "gt" then return x >= hi else return x >= lo end
    end
  end
  if not STRING_OPS[op] then return nil, "unknown operator -" .. op end
  local lv = v:lower()
  return function(item)
    local x = get(item)
    if x == nil then return op == "ne" or op == "notcontains" end
    x = tostring(x):lower()
    if op == "eq" then return x == lv elseif op == "ne" then return x ~= lv
    elseif op == "contains" then return x:find(lv, 1, true) ~= nil
    elseif op == "notcontains" then return x:find(lv, 1, true) == nil
    elseif op == "startswith" then return x:sub(1, #lv) == lv
    elseif op == "endswith" then return lv == "" or x:sub(-#lv) == lv
    elseif op == "lt" then return x < lv elseif op == "le" then return x <= lv
    elseif op == "gt" then return x > lv else return x >= lv end
  end
end

function Q.compile(q, resolve, today)
  if type(q) ~= "string" then return nil, "query must be a string" end
  if #q > MAX_LEN then return nil, "query too long" end
  local toks, terr = tokenize(q)
  if not toks then return nil, terr end
  if #toks == 0 then return function() return true end end
  local pos = 1
  local expr

  local function where(t) return t and (" at position " .. t.pos) or " at end of query" end

  local function primary(depth)
    if depth > MAX_DEPTH then return nil, "query nested too deeply" end
    local t = toks[pos]
    if not t then return nil, "expected a condition at end of query" end
    if t.t == "(" then
      pos = pos + 1
      local e, err = expr(depth + 1)
      if not e then return nil, err end
      if not toks[pos] or toks[pos].t ~= ")" then return nil, "expected ')'" .. where(toks[pos]) end
      pos = pos + 1
      return e
    end
    if t.t ~= "word" then return nil, "expected a field name" .. where(t) end
    local field = resolve(t.v)
    if not field then return nil, "unknown field '" .. t.v .. "'" .. where(t) end
    local op = toks[pos + 1]
    if not op or op.t ~= "op" then return nil, "expected an operator after " .. t.v .. where(op) end
    local val = toks[pos + 2]
    if not val or (val.t ~= "str" and val.t ~= "word") then return nil, "expected a value" .. where(val) end
    pos = pos + 3
    return compare_term(field, t.v, op.v, val, today)
  end

  local function conj(depth)
    local a, err = primary(depth)
    if not a then return nil, err end
    while toks[pos] and toks[pos].t == "AND" do
      pos = pos + 1
      local b, e2 = primary(depth)
      if not b then return nil, e2 end
      local l = a
      a = function(item) return l(item) and b(item) end
    end
    return a
  end

  expr = function(depth)
    local a, err = conj(depth)
    if not a then return nil, err end
    while toks[pos] and toks[pos].t == "OR" do
      pos = pos + 1
      local b, e2 = conj(depth)
      if not b then return nil, e2 end
      local l = a
      a = function(item) return l(item) or b(item) end
    end
    return a
  end

  local pred, err = expr(0)
  if not pred then return nil, err end
  if toks[pos] then return nil, "unexpected '" .. (toks[pos].v or toks[pos].t) .. "'" .. where(toks[pos]) end
  return pred
end

return Q
