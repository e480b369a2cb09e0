-- pair.kftosc against fake clients: values of inactive Sectigo fields are never sent, neither
-- as a new value nor as an old value the certificate's details still show.
local pair = require("metasync.pair")
local report = require("metasync.report")
local fields = require("metasync.fields")
local state = require("metasync.state")

local dbfile = os.tmpname()
os.remove(dbfile)
-- (also when an assertion fails: the Lua state's close runs it)
local cleanup_at_close = setmetatable({}, { __gc = function()
  for _, sfx in ipairs({ "", "-wal", "-shm" }) do os.remove(dbfile .. sfx) end
end })
local st = assert(state.open(dbfile))
st:begin_run("t1", "kftosc")

local defs = {
  { id = 1, name = "Cost Center", state = "ACTIVE", input = { type = "TEXT_SINGLE_LINE" } },
  { id = 2, name = "Legacy Code", state = "INACTIVE", input = { type = "TEXT_SINGLE_LINE" } },
  { id = 3, name = "Owner", input = { type = "TEXT_SINGLE_LINE" } },
}
local list = fields.attach_sectigo({
  { kind = "custom", sectigo = "Cost Center", keyfactor = "CostCenter", datatype = 1 },
  { kind = "custom", sectigo = "Legacy Code", keyfactor = "LegacyCode", datatype = 1 },
}, defs)
assert(list[2].sectigo_active == false and list[1].sectigo_active == true)

local sent = {}
local ctx = {
  fields = list, sectigo_fields = defs, dry_run = false, report = report.new("kftosc"), direction = "kftosc",
  concurrency = { sectigo = 2, keyfactor = 2 }, cfg = {}, state = st,
  sectigo = {
    details = function(_, id)
      -- a server that still shows the value of a field deactivated since
      return { id = id, commonName = "a.test", customFields = {
        { name = "Cost Center", value = "old" }, { name = "Legacy Code", value = "LC-OLD" },
        { name = "Owner", value = "ops" } } }
    end,
    update = function(_, id, cfs) sent[#sent + 1] = { id = id, cfs = cfs }; return true end,
  },
}
local policy = {
  source_value = function(f, _, kf) return kf.Metadata[f.keyfactor] end,
  convert = function(v) return v end,
}
ctx.report.matched = 1
pair.prepare(ctx)
pair.kftosc(ctx, policy, { serial = "A1", ssl_id = 7, kf = { Id = 1, Metadata = { CostCenter = "new", LegacyCode = "LC-9" } } }, function(fn) fn() end)
assert(#sent == 1, "one update")
local by = {}
for _, cf in ipairs(sent[1].cfs) do by[cf.name] = cf.value end
assert(by["Cost Center"] == "new", "active change sent")
assert(by["Owner"] == "ops", "other active field kept in the merged list")
assert(by["Legacy Code"] == nil, "inactive field never sent")
assert(#ctx.report.failed == 0)
assert(ctx.report.updated == 1 and ctx.report.planned == 1, "counted as updated")

-- a certificate without any mapped Keyfactor value needs no Sectigo read at all
local reads = 0
ctx.sectigo.details = function() reads = reads + 1; return { id = 8, customFields = {} } end
pair.kftosc(ctx, policy, { serial = "B2", ssl_id = 8, kf = { Id = 2, Metadata = {} } }, function(fn) fn() end)
assert(reads == 0 and ctx.report.unchanged == 1, "no details GET for a certificate with nothing to send")

-- a bulk entry's doc is used as it is: no details GET
pair.kftosc(ctx, policy, { serial = "C3", ssl_id = 9, doc = { id = 9, customFields = { { name = "Cost Center", value = "x" } } },
  kf = { Id = 3, Metadata = { CostCenter = "y" } } })
assert(reads == 0 and #sent == 2 and sent[2].id == 9, "bulk doc: one update, no details GET")

-- every write is journaled, and what was written becomes the baseline
st:flush()
local j = st.h:all("SELECT serial, field, old, new, result, direction, sectigo_id, keyfactor_id FROM journal ORDER BY seq")
assert(#j == 2, "two writes journaled, not " .. #j)
assert(j[1].serial == "A1" and j[1].field == "CostCenter" and j[1].old == "old" and j[1].new == "new"
  and j[1].result == "ok" and j[1].direction == "kftosc" and j[1].sectigo_id == 7 and j[1].keyfactor_id == 1, "journal row")
assert(st:baseline("A1").CostCenter == "new", "baseline after a write")
assert(st:baseline("C3").CostCenter == "y", "baseline of the bulk pair")
-- a field found equal is recorded too, once
pair.kftosc(ctx, policy, { serial = "D4", ssl_id = 10, doc = { id = 10, customFields = { { name = "Cost Center", value = "same" } } },
  kf = { Id = 4, Metadata = { CostCenter = "same" } } })
st:flush()
assert(#sent == 2, "nothing written for an equal value")
assert(st:baseline("D4").CostCenter == "same", "an equal value becomes the baseline")
st:close()
for _, sfx in ipairs({ "", "-wal", "-shm" }) do os.remove(dbfile .. sfx) end
print("ok")
