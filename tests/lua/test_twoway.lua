-- The two-way decision table (metasync.twoway) against fake clients and a real state store:
-- every row of the table, clears only when both sides were read, fixed directions, inactive
-- Sectigo fields, the resolve hook, and dates compared by meaning.
local twoway = require("metasync.twoway")
local pair = require("metasync.pair")
local report = require("metasync.report")
local fields = require("metasync.fields")
local state = require("metasync.state")
local values = require("metasync.values")

local dbfile = os.tmpname()
os.remove(dbfile)
-- (also when an assertion fails: the Lua state's close runs it)
local cleanup_at_close = setmetatable({}, { __gc = function()
  for _, sfx in ipairs({ "", "-wal", "-shm" }) do os.remove(dbfile .. sfx) end
end })
local st = assert(state.open(dbfile))
st:begin_run("t1", "sync")

local defs = {
  { id = 1, name = "Cost Center", state = "ACTIVE", input = { type = "TEXT_SINGLE_LINE" } },
  { id = 2, name = "Legacy", state = "INACTIVE", input = { type = "TEXT_SINGLE_LINE" } },
  { id = 3, name = "Owner", state = "ACTIVE", input = { type = "TEXT_SINGLE_LINE" } },
  { id = 4, name = "Renewal", state = "ACTIVE", input = { type = "DATE" } },
  { id = 5, name = "Ticket", state = "ACTIVE", input = { type = "TEXT_SINGLE_LINE" } },
}
local list = fields.attach_sectigo({
  { kind = "custom", sectigo = "Cost Center", keyfactor = "CostCenter", datatype = 1, sync = "both" },
  { kind = "custom", sectigo = "Legacy", keyfactor = "Legacy", datatype = 1, sync = "both" },
  { kind = "custom", sectigo = "Owner", keyfactor = "Owner", datatype = 1, sync = "sctokf" },
  { kind = "custom", sectigo = "Renewal", keyfactor = "Renewal", datatype = 3, sync = "both" },
  { kind = "custom", sectigo = "Ticket", keyfactor = "Ticket", datatype = 1, sync = "kftosc" },
}, defs)

local kf_writes, sc_writes = {}, {}
local ctx = {
  fields = list, sectigo_fields = defs, dry_run = false, report = report.new("sync"), direction = "sync",
  cfg = {}, state = st, index = { need_details = false }, date_format = "M/d/yyyy h:mm:ss tt",
  sectigo_date_format = "MM/dd/yyyy",
  keyfactor = { update_metadata = function(_, id, md) kf_writes[id] = md; return true end },
  sectigo = { update = function(_, id, cfs)
    local m = {}
    for _, cf in ipairs(cfs) do m[cf.name] = cf.value end
    sc_writes[id] = m
    return true
  end },
}
local choice = nil
local policy = {
  sectigo_value = function(f, d) return fields.custom_value(d, f.sectigo) end,
  keyfactor_value = function(f, _, kf) return fields.metadata(kf, f.keyfactor) end,
  to_keyfactor = function(v, f, c) return values.to_keyfactor(v, f.datatype, { date_format = c.sectigo_date_format }) end,
  to_sectigo = function(v, f, c) return values.to_sectigo(v, f.sectigo_type, { date_format = c.date_format }) end,
  resolve = function() return choice end,
}
pair.prepare(ctx)

local n = 0
-- case(sectigo custom fields | false (not read), keyfactor metadata | false, baseline) -> serial, id
local function case(sc, md, base)
  n = n + 1
  local serial = string.format("S%03d", n)
  for k, v in pairs(base or {}) do st:agree(serial, k, v) end
  st:flush()
  local doc = { id = n }
  if sc then
    doc.customFields = {}
    for k, v in pairs(sc) do doc.customFields[#doc.customFields + 1] = { name = k, value = v } end
  end
  local kf = { Id = n }
  if md then kf.Metadata = md end
  twoway.sync(ctx, policy, { serial = serial, ssl_id = n, kf = kf, doc = doc }, function(fn) fn() end)
  st:flush()
  return serial, n
end
local function base(serial) return st:baseline(serial) end

-- equal: no write, baseline := value
local s, id = case({ ["Cost Center"] = "a" }, { CostCenter = "a" })
assert(not kf_writes[id] and not sc_writes[id], "equal: no write")
assert(base(s).CostCenter == "a", "equal: baseline set")
-- Sectigo changed
s, id = case({ ["Cost Center"] = "b" }, { CostCenter = "a" }, { CostCenter = "a" })
assert(kf_writes[id].CostCenter == "b" and not sc_writes[id], "Sectigo changed -> Keyfactor")
assert(base(s).CostCenter == "b", "baseline follows the write")
-- Keyfactor changed
s, id = case({ ["Cost Center"] = "a", Owner = "o" }, { CostCenter = "c" }, { CostCenter = "a" })
assert(sc_writes[id]["Cost Center"] == "c" and sc_writes[id].Owner == "o", "Keyfactor changed -> Sectigo, merged")
assert(kf_writes[id].CostCenter == nil, "Keyfactor changed: its CostCenter not written back (only the sctokf-only Owner)")
-- both changed: conflict, nothing written
s, id = case({ ["Cost Center"] = "d" }, { CostCenter = "e" }, { CostCenter = "a" })
assert(not kf_writes[id] and not sc_writes[id], "conflict: nothing written")
assert(ctx.report.conflicts == 1 and base(s).CostCenter == "a", "conflict counted, baseline kept")
-- no baseline, one side only: copied either way
s, id = case({ ["Cost Center"] = "x" }, {})
assert(kf_writes[id].CostCenter == "x", "no baseline, Sectigo only -> Keyfactor")
s, id = case({}, { CostCenter = "y" })
assert(sc_writes[id]["Cost Center"] == "y", "no baseline, Keyfactor only -> Sectigo")
-- no baseline, both present and different: conflict
s, id = case({ ["Cost Center"] = "p" }, { CostCenter = "q" })
assert(not kf_writes[id] and not sc_writes[id] and ctx.report.conflicts == 2, "no baseline, different: conflict")
-- clears, both ways
s, id = case({}, { CostCenter = "a" }, { CostCenter = "a" })
assert(kf_writes[id].CostCenter == "", "a Sectigo clear clears Keyfactor")
assert(base(s).CostCenter == nil, "baseline gone with the value")
s, id = case({ ["Cost Center"] = "a" }, {}, { CostCenter = "a" })
assert(sc_writes[id]["Cost Center"] == "", "a Keyfactor clear clears Sectigo")
-- a side not read is never a clear
s, id = case(false, { CostCenter = "a" }, { CostCenter = "a" })
assert(not kf_writes[id] and not sc_writes[id], "no Sectigo custom fields read: no clear")
s, id = case({ ["Cost Center"] = "a" }, false, { CostCenter = "a" })
assert(not kf_writes[id] and not sc_writes[id], "no Keyfactor metadata read: no clear")
assert(base(s).CostCenter == "a", "and the baseline stays")
-- an inactive Sectigo field shows no value: never a deletion, never written to Sectigo
s, id = case({}, { Legacy = "v" }, { Legacy = "v" })
assert(not kf_writes[id] and not sc_writes[id], "inactive field: nothing cleared")
-- a field fixed to sctokf: Keyfactor's change is not sent back, an absent source never clears
s, id = case({ ["Cost Center"] = "k" }, { CostCenter = "k", Owner = "mine" }, { Owner = "theirs" })
assert(not kf_writes[id] and not sc_writes[id], "sctokf-only field: no write to Sectigo")
s, id = case({ ["Cost Center"] = "k", Owner = "new" }, { CostCenter = "k", Owner = "mine" })
assert(kf_writes[id].Owner == "new" and not sc_writes[id], "sctokf-only field: Sectigo -> Keyfactor")
-- a field fixed to kftosc: Keyfactor -> Sectigo only; Sectigo's own change is not sent over
s, id = case({ ["Cost Center"] = "k", Ticket = "T-sc" }, { CostCenter = "k" }, { Ticket = "T-old" })
assert(not kf_writes[id] and not sc_writes[id], "kftosc-only field: no write to Keyfactor")
s, id = case({ ["Cost Center"] = "k", Ticket = "T-sc" }, { CostCenter = "k", Ticket = "T-kf" })
assert(sc_writes[id].Ticket == "T-kf" and not kf_writes[id], "kftosc-only field: Keyfactor -> Sectigo")
-- resolve(): the hook settles a conflict
choice = "keyfactor"
s, id = case({ ["Cost Center"] = "d" }, { CostCenter = "e" }, { CostCenter = "a" })
assert(sc_writes[id]["Cost Center"] == "e" and not kf_writes[id], "resolve keyfactor")
choice = "sectigo"
s, id = case({ ["Cost Center"] = "d" }, { CostCenter = "e" }, { CostCenter = "a" })
assert(kf_writes[id].CostCenter == "d" and not sc_writes[id], "resolve sectigo")
choice = nil
-- dates by meaning: Sectigo's MM/dd/yyyy and Keyfactor's read-back are the same day
s, id = case({ Renewal = "07/23/2025" }, { Renewal = "7/23/2025 12:00:00 AM" })
assert(not kf_writes[id] and not sc_writes[id], "same date: no write")
assert(base(s).Renewal == "2025-07-23", "baseline in canonical form: " .. tostring(base(s).Renewal))
-- and a changed date goes to Sectigo as yyyy-MM-dd
s, id = case({ Renewal = "07/23/2025" }, { Renewal = "8/1/2025 12:00:00 AM" }, { Renewal = "2025-07-23" })
assert(sc_writes[id].Renewal == "2025-08-01", "date to Sectigo: " .. tostring(sc_writes[id] and sc_writes[id].Renewal))
assert(#ctx.report.failed == 0, "no failures: " .. tostring(ctx.report.failed[1] and ctx.report.failed[1].reason))
assert(ctx.report:exit_code() == 3, "conflicts left: exit 3")

-- the journal holds every write and every conflict
local j = st.h:row("SELECT count(*) AS n FROM journal WHERE result = 'ok'").n
local c = st.h:row("SELECT count(*) AS n FROM journal WHERE result = 'conflict'").n
assert(c == 2, "conflicts journaled: " .. c)
assert(j >= 10, "writes journaled: " .. j)
st:close()
for _, sfx in ipairs({ "", "-wal", "-shm" }) do os.remove(dbfile .. sfx) end
print("ok")
