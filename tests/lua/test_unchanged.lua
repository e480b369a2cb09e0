-- metasync.unchanged against the Lua it mirrors: over random documents, metadata maps, memos and
-- baselines, a field is left pending by the native code exactly when the library's own lookups
-- (fields.source_value, fields.metadata) and pair's memo say it is not settled. Then
-- pair.sctokf over one certificate twice: the second time every field is settled natively (no
-- conversion, no comparison in Lua), and the outcome is the same as with a policy of its own.
local unchanged = require("metasync.unchanged")
local fields = require("metasync.fields")
local values = require("metasync.values")
local json = require("metasync.json")

math.randomseed(tonumber(os.getenv("SEED") or "") or 7)
local R = math.random

local NOVALUE = {}
local WORDS = { "a", "A", "b", "Cost Center", "cost center", "COST CENTER", "id", "ID", "Id", "0", "1", "certType",
  "CertType", "x.y", " ", "", "  \t", "2", "2.0", "1e1" }
local function word() return WORDS[R(#WORDS)] end
local function scalar()
  local k = R(7)
  if k == 1 then return word() elseif k == 2 then return R(0, 3) elseif k == 3 then return R(0, 3) + 0.0
  elseif k == 4 then return R(2) == 1 elseif k == 5 then return json.null elseif k == 6 then return { word() }
  else return nil end
end

-- A random object: string keys (several differing only in case), some numeric, nested objects.
local function object(depth)
  local t = {}
  for _ = 1, R(0, 5) do
    local k = R(4) == 1 and R(1, 3) or word()
    if depth > 0 and R(3) == 1 then t[k] = object(depth - 1) else t[k] = scalar() end
  end
  if R(8) == 1 then json.array(t) end
  return t
end

local function doc()
  local d = object(2)
  if R(4) > 1 then
    local list = json.array({})
    for i = 1, R(0, 5) do
      local cf = R(6) == 1 and word() or { name = R(5) == 1 and R(3) or word(), value = scalar() }
      list[i] = cf
    end
    d.customFields = list
  end
  return d
end

local function kfcert()
  local c = { Id = R(100) }
  if R(5) > 1 then
    local md = {}
    for _ = 1, R(0, 5) do md[word()] = scalar() end
    c.Metadata = md
  end
  -- a Keyfactor item decoded with some keys only: reading any other raises
  if R(6) == 1 then setmetatable(c, { __index = function(_, k) error("not fetched: " .. tostring(k)) end }) end
  return c
end

local function field()
  if R(2) == 1 then
    local path = {}
    for i = 1, R(1, 3) do path[i] = word():gsub("%.", "") end
    local p = table.concat(path, ".")
    if p:match("^%.*$") then p = "id" end
    return { kind = "manual", sectigo = p, keyfactor = word() .. R(100) }
  end
  return { kind = "custom", sectigo = word(), keyfactor = word() .. R(100) }
end

-- The reference: a field is settled when pair.compare would find it absent, or the same
-- (remembered) and already the baseline's.
local function scalar_type(v) local t = type(v); return t == "string" or t == "number" or t == "boolean" end
local function settled_lua(f, d, kf, memo, base)
  local ok, raw = pcall(fields.source_value, f, d)
  if not ok then return false end
  -- pair.sctokf reads the current value whatever the source value is (an argument).
  local ok2, old = pcall(fields.metadata, kf, f.keyfactor)
  if not ok2 then return false end
  if values.absent(raw) then return true end
  if not scalar_type(raw) then return false end
  if old ~= nil and not scalar_type(old) then return false end
  local m = memo[f]
  local byold = m and m[raw]
  local r = byold and byold[old == nil and NOVALUE or old]
  if r == false then return true end
  if type(r) ~= "table" or type(r.same) ~= "string" then return false end
  return not base or base[f.keyfactor] == r.same
end

local function answers(f, d, kf)
  -- remembered answers for the values this field will see (and some it will not)
  local m = {}
  local ok, raw = pcall(fields.source_value, f, d)
  local ok2, old = pcall(fields.metadata, kf, f.keyfactor)
  local keys = { word(), R(3) }
  if ok and raw ~= nil and raw == raw then keys[#keys + 1] = raw end
  for _, k in ipairs(keys) do
    local byold = {}
    local olds = { NOVALUE, word() }
    if ok2 and old ~= nil and old == old then olds[#olds + 1] = old end
    for _, o in ipairs(olds) do
      local c = R(5)
      if c == 1 then byold[o] = false
      elseif c == 2 then byold[o] = "field x: bad value"
      elseif c == 3 then byold[o] = { new = word() }
      elseif c == 4 then byold[o] = { same = R(4) == 1 and R(9) or (type(old) == "string" and old or word()) } end
    end
    m[k] = byold
  end
  return m
end

local checked, settled_seen, pending_seen = 0, 0, 0
for _ = 1, 4000 do
  local list = {}
  for i = 1, R(1, 5) do list[i] = field() end
  local plan = fields.lookup_plan(list, NOVALUE)
  if plan then
    local d, kf = doc(), kfcert()
    -- Most fields get a value to look up, on both sides.
    for _, f in ipairs(list) do
      if R(3) > 1 then
        local v = R(3) == 1 and R(0, 3) or word()
        if f.kind == "custom" then
          local cfs = type(d.customFields) == "table" and d.customFields or json.array({})
          d.customFields = cfs
          table.insert(cfs, R(#cfs + 1), { name = R(4) == 1 and f.sectigo:upper() or f.sectigo, value = v })
        else
          local cur = d
          local segs = values.path_segments(f.sectigo)
          for i = 1, #segs - 1 do
            if type(cur[segs[i]]) ~= "table" then cur[segs[i]] = {} end
            cur = cur[segs[i]]
          end
          cur[segs[#segs]] = v
        end
        if R(4) > 1 and rawget(kf, "Metadata") then kf.Metadata[R(4) == 1 and f.keyfactor:lower() or f.keyfactor] = word() end
      end
    end
    local memo = setmetatable({}, { __mode = "k" })
    local base = {}
    for _, f in ipairs(list) do
      if R(5) > 1 then memo[f] = answers(f, d, kf) end
      local m = memo[f]
      local ok, raw = pcall(fields.source_value, f, d)
      local ok2, old = pcall(fields.metadata, kf, f.keyfactor)
      local r = ok and ok2 and raw ~= nil and raw == raw and m and m[raw] and m[raw][old == nil and NOVALUE or old]
      base[f.keyfactor] = (R(3) > 1 and type(r) == "table" and r.same) or (R(2) == 1 and word()) or nil
    end
    local b = R(4) == 1 and false or base
    local want = {}
    for i, f in ipairs(list) do
      if not settled_lua(f, d, kf, memo, b) then want[#want + 1] = i end
    end
    local got = unchanged.pending(plan, d, kf, memo, b)
    local gs = got and table.concat(got, ",") or ""
    local ws = table.concat(want, ",")
    assert(gs == ws, string.format("pending %s, the Lua says %s", gs, ws))
    assert((got == nil) == (#want == 0), "nil exactly when nothing is pending")
    checked = checked + 1
    settled_seen = settled_seen + #list - #want
    pending_seen = pending_seen + #want
  end
end
-- The generator must reach both answers often, or the comparison above proves little.
assert(checked > 3000 and settled_seen > 2000 and pending_seen > 2000,
  string.format("checked %d, settled %d, pending %d", checked, settled_seen, pending_seen))

-- Lookups in detail.
local F = { kind = "manual", sectigo = "certType.id", keyfactor = "TypeId" }
local C = { kind = "custom", sectigo = "Cost Center", keyfactor = "CostCenter" }
local plan = fields.lookup_plan({ F, C }, NOVALUE)
local memo = { [F] = { [7] = { ["7"] = { same = "7" } } }, [C] = { ["CC-1"] = { [NOVALUE] = { same = "CC-1" } } } }
local d = { certType = { id = 7 }, customFields = json.array { { name = "cost center", value = "x" }, { name = "Cost Center", value = "CC-1" } } }
assert(unchanged.pending(plan, d, { Metadata = { typeid = "7" } }, memo, false) == nil, "exact name before lower case")
assert(unchanged.pending(plan, d, { Metadata = { typeid = "7" } }, memo, { TypeId = "7", CostCenter = "CC-1" }) == nil)
assert(table.concat(unchanged.pending(plan, d, { Metadata = { typeid = "7" } }, memo, { TypeId = "7" }), ",") == "2",
  "a field whose baseline lacks the agreed value is pending")
assert(table.concat(unchanged.pending(plan, { CERTTYPE = { ID = 7 } }, { Metadata = { TypeId = "8" } }, memo, false), ",") == "1",
  "another current value: not remembered")
assert(unchanged.pending(plan, { CERTTYPE = { ID = 7 } }, { Metadata = { TypeId = "7" } }, memo, false) == nil,
  "path segments in any case")
-- One field named twice: each field is not settled on its own, so no plan.
assert(fields.lookup_plan({ C, { kind = "custom", sectigo = "Other", keyfactor = "costcenter" } }, NOVALUE) == nil)
-- A Keyfactor item whose Metadata was not fetched: the Lua's read raises even when the source
-- value is absent, so the field is the Lua's (found in review).
local guarded = setmetatable({}, { __index = function(_, k) error("not fetched: " .. k) end })
assert(table.concat(unchanged.pending(plan, {}, guarded, memo, false), ",") == "1,2")
-- Names that are not strings are looked up otherwise by the Lua: no plan.
assert(fields.lookup_plan({ { kind = "custom", sectigo = 5, keyfactor = "K" } }, NOVALUE) == nil)
assert(fields.lookup_plan({ { kind = "manual", sectigo = "id", keyfactor = 7 } }, NOVALUE) == nil)
-- A string of one non-ASCII byte is a value (values.absent looks at the first byte first).
local X = { kind = "custom", sectigo = "X", keyfactor = "X" }
local px = fields.lookup_plan({ X }, NOVALUE)
assert(table.concat(unchanged.pending(px, { customFields = { { name = "X", value = "\xA0" } } }, { Metadata = {} }, {}, false), ",") == "1")
-- The memo's count is kept under a key no value can be: the value "n" once indexed it.
do
  local pair0 = require("metasync.pair")
  local c0 = { date_format = "M/d/yyyy h:mm:ss tt" }
  local pol = { convert = function(v) return v end }
  local f0 = { keyfactor = "B" }
  for _ = 1, 2 do
    local okc, e1, e2, same = pcall(pair0.compare, c0, pol, f0, "n", "n", "text", "B")
    assert(okc and e1 == nil and e2 == nil and same == "n", tostring(e1))
  end
end
-- A field whose values do not repeat stops being remembered (its memo would only cost two
-- tables a value); one whose values repeat keeps its memo; both decide right throughout.
do
  local pair0 = require("metasync.pair")
  local c0 = { date_format = "M/d/yyyy h:mm:ss tt" }
  local pol = { convert = function(v) return v end }
  local fu, fr = { keyfactor = "U" }, { keyfactor = "R" }
  for i = 1, 3000 do
    local ch = pair0.compare(c0, pol, fu, "u" .. i, nil, "text", "U")
    assert(ch and ch.new == "u" .. i and ch.old == nil)
    local ch2, _, same = pair0.compare(c0, pol, fr, "r" .. i % 7, "r" .. i % 7, "text", "R")
    assert(ch2 == nil and same == "r" .. i % 7)
  end
  assert(c0.memo[fu] == false, "unique values are no longer remembered")
  assert(type(c0.memo[fr]) == "table", "repeating values are")
  -- and the native lookup reads a field no longer remembered as pending
  local pu = fields.lookup_plan({ { kind = "custom", sectigo = "U", keyfactor = "U" } }, NOVALUE)
  pu[1][1] = fu
  assert(table.concat(unchanged.pending(pu, { customFields = { { name = "U", value = "u1" } } }, { Metadata = { U = "u1" } },
    c0.memo, false), ",") == "1")
end
local ok, err = pcall(unchanged.pending, plan, d, {}, memo, true)
assert(not ok and tostring(err):find("baseline table or false"), tostring(err))

-- The stock conversion's rule (fields.keyfactor_convert): with no memo at all, a value the
-- native code settles is one the Lua settles too (converted, the same as the current value,
-- and the baseline's), over random values and every DataType.
do
  local RAWS = { "abc", "Production", "production", "12", "-7", "0", "-0", "007", "+5", " 5", "5 ", "1.5",
    "12345678901234567890", "03/04/2026", "2026-03-04", "true", "", "  ", string.rep("x", 400), string.rep("y", 401),
    12, 12.0, 12.5, -3, true, json.null }
  local function rv() return RAWS[R(#RAWS)] end
  local ctx0 = { cfg = { enableTruncation = R(2) == 1 }, sectigo_date_format = "MM/dd/yyyy" }
  local native_settled, lua_settled = 0, 0
  for _ = 1, 6000 do
    local dt = R(0, 8)
    local f = { kind = "custom", sectigo = "S", keyfactor = "K", datatype = dt > 0 and dt or nil,
      options = R(2) == 1 and { "Production", "Staging" } or nil }
    local plan = fields.lookup_plan({ f }, NOVALUE, true)
    local raw = rv()
    local old = R(3) > 1 and (type(raw) == "string" and raw or values.text(raw)) or rv()
    if type(old) ~= "string" then old = values.text(old) end
    local d = { customFields = json.array { { name = "S", value = raw } } }
    local kf = { Metadata = { K = old } }
    local new = fields.keyfactor_convert(raw, f, ctx0)
    local same = new ~= nil and values.equal(old, new, values.kind_of_kf(f.datatype), ctx0.date_format) and values.text(new)
    local base = R(4) == 1 and false or { K = (R(4) > 1 and same) or "other" }
    local lua = values.absent(raw) or (same and (not base or base.K == same))
    local got = unchanged.pending(plan, d, kf, {}, base) == nil
    if got then
      assert(lua, string.format("settled natively: %s -> %s (DataType %s)", tostring(raw), tostring(old), tostring(dt)))
      native_settled = native_settled + 1
    end
    if lua then lua_settled = lua_settled + 1 end
  end
  assert(native_settled > 1000 and native_settled < lua_settled, native_settled .. " of " .. lua_settled)
  -- The usual unique values: an id, a text, an option, each already Keyfactor's.
  local I = { kind = "manual", sectigo = "id", keyfactor = "SectigoID", datatype = 2 }
  local T = { kind = "custom", sectigo = "Owner", keyfactor = "Owner", datatype = 7 }
  local O = { kind = "custom", sectigo = "Env", keyfactor = "Env", datatype = 5, options = { "Production" } }
  local pl = fields.lookup_plan({ I, T, O }, NOVALUE, true)
  local dd = { id = 4711, customFields = json.array { { name = "Owner", value = "a@example.com" }, { name = "Env", value = "Production" } } }
  local md = { Metadata = { SectigoID = "4711", Owner = "a@example.com", Env = "Production" } }
  assert(unchanged.pending(pl, dd, md, {}, { SectigoID = "4711", Owner = "a@example.com", Env = "Production" }) == nil)
  assert(table.concat(unchanged.pending(pl, dd, md, {}, { SectigoID = "4711", Owner = "a@example.com" }), ",") == "3",
    "the baseline lacks one")
  md.Metadata.Env = "production"
  assert(table.concat(unchanged.pending(pl, dd, md, {}, false), ",") == "3", "an option in another case is the Lua's")
  md.Metadata.SectigoID = "04711"
  assert(table.concat(unchanged.pending(pl, dd, md, {}, false), ",") == "1,3", "an integer written otherwise is the Lua's")
  -- without the stock conversion nothing unique is settled
  assert(#unchanged.pending(fields.lookup_plan({ I, T, O }, NOVALUE), dd, md, {}, false) == 3)
end

-- pair.sctokf: the second time over the same certificate, every field settles natively.
local pair = require("metasync.pair")
local report = require("metasync.report")
local stock = require("metasync.stock")
local policy = stock.load("sctokf")
assert(policy.source_value == fields.source_value, "the stock policy reads its values the library's way")
assert(policy.convert == fields.keyfactor_convert, "the stock policy converts the library's way")
local converts = 0
local convert = policy.convert
policy.convert = function(...) converts = converts + 1; return convert(...) end
local list = {
  { kind = "manual", sectigo = "id", keyfactor = "SectigoID", datatype = 2 },
  { kind = "custom", sectigo = "Cost Center", keyfactor = "CostCenter", datatype = 1 },
  { kind = "custom", sectigo = "Environment", keyfactor = "Environment", datatype = 1 },
  { kind = "custom", sectigo = "Missing", keyfactor = "Missing", datatype = 1 },
}
local agreed = {}
local st = { baseline = function(_, serial) return agreed[serial] or {} end,
  agree = function(_, serial, k, v) agreed[serial] = agreed[serial] or {}; agreed[serial][k] = v end,
  journal = function() end, in_step = function() end }
-- pass(ctx, policy): the same three certificates, both sides in step.
local function pass(c, pol)
  for i = 1, 3 do
    local dd = { id = 1000 + i, customFields = json.array { { name = "Cost Center", value = "CC-" .. i % 2 },
      { name = "Environment", value = "Production" } } }
    local kf = { Id = i, Metadata = { SectigoID = tostring(1000 + i), CostCenter = "CC-" .. i % 2, Environment = "Production" } }
    pair.sctokf(c, pol, { kf = kf, serial = "S" .. i, ssl_id = 1000 + i, doc = dd }, function(fn) fn() end)
  end
end
local function run_once(pol)
  local ctx = { fields = list, dry_run = false, report = report.new("sctokf"), direction = "sctokf", index = {},
    cfg = {}, state = st, sectigo_date_format = "MM/dd/yyyy", date_format = "M/d/yyyy h:mm:ss tt",
    keyfactor = { update_metadata = function() error("nothing is to be written") end } }
  pass(ctx, pol)
  return ctx
end
-- One run, one memo: the first pass decides every field in Lua and the baseline learns them.
local ctx = run_once(policy)
assert(ctx.report.unchanged == 3 and converts > 0, "both sides agree already")
for i = 1, 3 do
  local b = agreed["S" .. i]
  assert(b.SectigoID == tostring(1000 + i) and b.CostCenter == "CC-" .. i % 2 and b.Environment == "Production")
end
-- The second pass over the same certificates in the same run (the memo knows every value now,
-- as a no-op run's memo knows the values that repeat): every field settles natively, without
-- a call to the library's lookups or to the policy.
local function lookups(fn)
  local n = 0
  debug.sethook(function()
    local f = debug.getinfo(2, "f").func
    if f == fields.source_value or f == fields.metadata or f == fields.custom_value then n = n + 1 end
  end, "c")
  fn()
  debug.sethook()
  return n
end
local before = converts
assert(lookups(function() pass(ctx, policy) end) == 0, "lookups in Lua on a settled pass")
assert(converts == before and ctx.report.unchanged == 6)
-- A policy with a source_value of its own is called for every field, every time (the memo
-- still spares the conversions).
local calls = 0
local own = setmetatable({ source_value = function(f, dd) calls = calls + 1; return fields.source_value(f, dd) end },
  { __index = policy })
local nl = lookups(function() pass(ctx, own) end)
assert(nl > 3 * #list, nl .. " lookups, " .. calls .. " calls")
assert(calls == 3 * #list and converts == before and ctx.report.unchanged == 9, string.format("own source_value called %d times", calls))
-- A Keyfactor value edited since: the pair is decided in Lua and written.
local wrote
ctx.keyfactor = { update_metadata = function(_, id, payload) wrote = { id, payload }; return true end }
local dd = { id = 1001, customFields = json.array { { name = "Cost Center", value = "CC-1" }, { name = "Environment", value = "Production" } } }
pair.sctokf(ctx, policy, { kf = { Id = 1, Metadata = { SectigoID = "1001", CostCenter = "edited", Environment = "Production" } },
  serial = "S1", ssl_id = 1001, doc = dd }, function(fn) fn() end)
assert(wrote and wrote[1] == 1 and wrote[2].CostCenter == "CC-1" and wrote[2].SectigoID == nil, "only the edited field is written")
print("ok")
