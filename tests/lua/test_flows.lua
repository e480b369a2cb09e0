-- flows.kftosc against fake clients: values of inactive Sectigo fields are never sent, neither
-- as a new value nor as an old value the certificate's details still show.
local flows = require("metasync.flows")
local report = require("metasync.report")
local fields = require("metasync.fields")

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
  fields = list, sectigo_fields = defs, dry_run = false, report = report.new("kftosc"),
  concurrency = { sectigo = 2, keyfactor = 2 }, cfg = {},
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
local pairs_ = { { serial = "A1", sc = { sslId = 7 }, kf = { Id = 1, Metadata = { CostCenter = "new", LegacyCode = "LC-9" } } } }
ctx.report.matched = 1
flows.kftosc(ctx, policy, pairs_)
assert(#sent == 1, "one update")
local by = {}
for _, cf in ipairs(sent[1].cfs) do by[cf.name] = cf.value end
assert(by["Cost Center"] == "new", "active change sent")
assert(by["Owner"] == "ops", "other active field kept in the merged list")
assert(by["Legacy Code"] == nil, "inactive field never sent")
assert(#ctx.report.failed == 0)
print("ok")
