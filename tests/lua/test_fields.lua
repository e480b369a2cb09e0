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
-- malformed records are described, not guessed at
local D = fields.describe
assert(D(nil) == "missing" and D(json.null) == "null" and D(12.5) == "a number (12.5)" and D(true) == "a boolean (true)")
assert(D("abc") == 'a string ("abc")' and D(json.decode("{}")) == "an object" and D(json.decode("[]")) == "a list")
assert(D('a"b\n') == 'a string ("a?b?")', D('a"b\n'))
-- Sectigo custom field definitions: a usable one passes, each kind of breakage is named
local check = fields.check_sectigo_def
assert(check(json.decode('{"id":1,"name":"Cost Center","state":"ACTIVE","input":{"type":"TEXT_OPTION","options":["a"]}}')) == nil)
assert(check(json.decode('{"name":"N","input":null}')) == nil and check({ name = "N" }) == nil)
local bad = {
  { '{"id":1,"name":null}', "name is null" }, { '{"id":1,"name":42}', "name is a number (42)" },
  { '{"id":1}', "name is missing" }, { '{"name":"  "}', 'name is a string ("  ")' },
  { '{"name":"N","input":"TEXT"}', 'input is a string ("TEXT"), not an object' },
  { '{"name":"N","input":[1]}', "input is a list, not an object" },
  { '{"name":"N","input":{"type":5}}', "input.type is a number (5)" },
  { '{"name":"N","input":{"type":"TEXT_OPTION","options":{"a":1}}}', "input.options is an object, not a list" },
  { '{"name":"N","state":{}}', "state is an object" },
  { '"junk"', 'it is a string ("junk"), not an object' }, { "[]", "it is a list, not an object" },
}
for _, c in ipairs(bad) do
  local got = check(json.decode(c[1]))
  assert(got == c[2], c[1] .. ": " .. tostring(got))
end
-- a details document's customFields
local cfc = fields.check_custom_fields
assert(cfc(nil) == nil and cfc(json.null) == nil and cfc(json.decode("[]")) == nil and cfc(json.decode("{}")) == nil)
assert(cfc(json.decode('[{"name":"A","value":1},{"name":"B"}]')) == nil)
assert(cfc("oops") == 'customFields is a string ("oops"), not a list')
assert(cfc(json.decode('{"name":"A"}')) == "customFields is an object, not a list")
assert(cfc(json.decode('[{"name":"A"},5]')) == "customFields[2] is a number (5), not an object")
assert(cfc(json.decode('[["A"]]')) == "customFields[1] is a list, not an object")
assert(cfc(json.decode('[{"name":null,"value":"x"}]')) == "customFields[1]: name is null")
-- a Keyfactor definition without a usable Name matches nothing (and is logged): the wanted
-- field is created, nothing is updated
require("metasync.log").set_level("fatal")
d = fields.diff({ { keyfactor = "A", datatype = 1 } }, { { Id = 9, Name = json.null, DataType = 1 }, "junk", { Id = 3, Name = 42 } })
assert(#d.create == 1 and d.create[1].Name == "A" and #d.update == 0)
print("ok")
