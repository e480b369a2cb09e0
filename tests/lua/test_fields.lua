local fields = require("metasync.fields")
local json = require("metasync.json")
-- type mapping for importAllCustomFields
local map = { TEXT_SINGLE_LINE = 1, TEXT_MULTI_LINE = 6, EMAIL = 7, NUMBER = 2, TEXT_OPTION = 5, DATE = 3 }
for t, dt in pairs(map) do
  local f = fields.from_sectigo({ name = "F " .. t, input = { type = t, options = { "a", "b" } } })
  assert(f.datatype == dt, t)
  assert(f.kind == "custom" and f.sectigo == "F " .. t and f.keyfactor == "F " .. t)
  if t == "TEXT_OPTION" then assert(f.options[2] == "b") else assert(f.options == nil) end
end
assert(fields.active({ state = "ACTIVE" }) and fields.active({}))
assert(not fields.active({ state = "INACTIVE" }) and not fields.active({ state = "SUSPENDED_INACTIVE" }))
-- attach the Sectigo type by name, case-insensitively
local list = fields.attach_sectigo({ { kind = "custom", sectigo = "renewal date", keyfactor = "R" } },
  { { id = 9, name = "Renewal Date", input = { type = "DATE" } } })
assert(list[1].sectigo_type == "DATE" and list[1].sectigo_id == 9 and list[1].sectigo == "Renewal Date")
-- definitions diff: create missing, update only what differs, leave equal ones alone
local want = {
  { keyfactor = "A", description = "a", datatype = 1 },
  { keyfactor = "B", description = "b", datatype = 5, options = { "x", "y" } },
  { keyfactor = "C", description = "new", datatype = 1 },
  { keyfactor = "a", description = "dup", datatype = 1 },
}
local have = {
  { Id = 2, Name = "b", Description = "b", DataType = 5, Options = "x, y", Validation = "", Hint = "",
    Message = "", DefaultValue = "", Enrollment = 0, DisplayOrder = 7, CaseSensitive = false },
  { Id = 3, Name = "C", Description = "old", DataType = 1, Hint = json.null },
}
local d = fields.diff(want, have)
assert(#d.create == 1 and d.create[1].Name == "A" and d.create[1].DisplayOrder == 0)
assert(#d.update == 1 and d.update[1].def.Id == 3 and d.update[1].changes[1]:find("Description"))
assert(d.unchanged == 1)
-- metadata and custom value lookups are case-insensitive
assert(fields.metadata({ Metadata = { CostCenter = "x" } }, "costcenter") == "x")
assert(fields.metadata({}, "x") == nil)
assert(fields.custom_value({ customFields = { { name = "Cost Center", value = "1" } } }, "cost center") == "1")
print("ok")
