-- PUT /Certificates/Metadata(/All) and /MetadataFields CRUD.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

T.world("basic.json")

local function md(id)
  local r = T.kf("GET", "/Certificates?IncludeRevoked=true&IncludeExpired=true&includeMetadata=true&ReturnLimit=100")
  return T.find(T.decode(r), "Id", id).Metadata
end

T.test("PUT /Certificates/Metadata: 204 with an empty body, values read back 25.1 style", function()
  local r = T.kf("PUT", "/Certificates/Metadata", { Id = 5, Metadata = { RenewalDate = "2025-07-23",
    Critical = false, Ticket = 77, Environment = "Staging", CostCenter = "CC-9" } })
  T.eq(r.status, 204, "status")
  T.eq(r.body, "", "empty body")
  local m = md(5)
  T.eq(m.RenewalDate, "7/23/2025 12:00:00 AM", "date")
  T.eq(m.Critical, "False", "boolean")
  T.eq(m.Ticket, "77", "integer")
  T.eq(m.Environment, "Staging", "choice")
  T.eq(m.OwnerEmail, "ops@example.org", "untouched key kept")
  T.eq(T.kf("PUT", "/Certificates/Metadata", { Id = 5, Metadata = { Critical = "true", Ticket = "12" } }).status, 204, "strings")
  T.eq(md(5).Critical, "True", "boolean from string")
end)

T.test("clearing with an empty string removes the value", function()
  T.eq(T.kf("PUT", "/Certificates/Metadata", { Id = 5, Metadata = { CostCenter = "" } }).status, 204, "clear")
  T.eq(md(5).CostCenter, nil, "cleared")
end)

T.test("--keyfactor-date-format yyyy-MM-dd (runtime setting) gives the older style", function()
  T.ctl("POST", "settings", { keyfactorDateFormat = "yyyy-MM-dd" })
  T.eq(md(5).RenewalDate, "2025-07-23", "old style")
  T.ctl("POST", "settings", { keyfactorDateFormat = "M/d/yyyy h:mm:ss tt" })
  T.eq(T.kf("PUT", "/Certificates/Metadata", { Id = 5, Metadata = { RenewalDate = "12/1/2025 12:00:00 AM" } }).status,
    204, "the read-back form is accepted")
  T.eq(md(5).RenewalDate, "12/1/2025 12:00:00 AM", "round trip")
end)

T.test("unknown fields and bad values get 400; nothing is applied", function()
  local cases = { { NoSuchField = "x" }, { Ticket = "12a" }, { Ticket = 1.5 }, { RenewalDate = "2025-13-01" },
    { Critical = "yes" }, { OwnerEmail = "nobody" }, { Environment = "Prod" }, { CostCenter = string.rep("x", 401) },
    { Notes = string.rep("x", 4001) } }
  for i, m in ipairs(cases) do
    m.CostCenter = m.CostCenter or "SHOULD-NOT-STICK"
    T.kf_error(T.kf("PUT", "/Certificates/Metadata", { Id = 2, Metadata = m }), 400, "case " .. i)
  end
  T.eq(md(2).CostCenter, nil, "atomic")
  T.kf_error(T.kf("PUT", "/Certificates/Metadata", "{bad json"), 400, "malformed")
  T.kf_error(T.kf("PUT", "/Certificates/Metadata", { Metadata = {} }), 400, "missing Id")
  T.kf_error(T.kf("PUT", "/Certificates/Metadata", { Id = 999, Metadata = { CostCenter = "x" } }), 404, "unknown cert")
  T.eq(T.kf("PUT", "/Certificates/Metadata", { Id = 2, Metadata = { Notes = string.rep("x", 4000) } }).status, 204, "BigText 4000")
end)

T.test("PUT /Certificates/Metadata/All by ids and by query, OverwriteExisting", function()
  local r = T.kf("PUT", "/Certificates/Metadata/All", { CertificateIds = { 1, 2 },
    Metadata = { { MetadataName = "CostCenter", Value = "BULK", OverwriteExisting = false },
      { MetadataName = "OwnerEmail", Value = "bulk@example.com", OverwriteExisting = true } } })
  T.eq(r.status, 204, "status")
  T.eq(md(1).CostCenter, "CC-1", "existing value kept when OverwriteExisting=false")
  T.eq(md(2).CostCenter, "BULK", "empty value filled")
  T.eq(md(1).OwnerEmail, "bulk@example.com", "overwritten")
  r = T.kf("PUT", "/Certificates/Metadata/All", { Query = 'IssuerDN -contains "Sectigo"',
    Metadata = { { MetadataName = "Environment", Value = "Production", OverwriteExisting = true } } })
  T.eq(r.status, 204, "query status")
  T.eq(md(6).Environment, "Production", "active Sectigo cert updated")
  T.eq(md(3).Environment, nil, "revoked cert untouched")
  T.eq(md(4).Environment, nil, "expired cert untouched")
  T.eq(md(5).Environment, "Staging", "other issuer untouched")
  T.kf_error(T.kf("PUT", "/Certificates/Metadata/All", { Query = "IssuerDN -bogus 1",
    Metadata = { { MetadataName = "CostCenter", Value = "x" } } }), 400, "bad query")
  T.kf_error(T.kf("PUT", "/Certificates/Metadata/All", { Metadata = { { MetadataName = "CostCenter", Value = "x" } } }),
    400, "no target")
end)

T.test("MetadataFields: list, get by id and by name (any case)", function()
  local r = T.kf("GET", "/MetadataFields")
  T.eq(r.status, 200, "status")
  local list = T.decode(r)
  T.eq(#list, 7, "fields")
  T.eq(list[1].Name, "Environment", "sorted by DisplayOrder")
  for _, k in ipairs({ "Id", "Name", "Description", "DataType", "Hint", "Validation", "Enrollment", "Message",
    "Options", "DefaultValue", "DisplayOrder", "CaseSensitive" }) do
    T.ok(list[1][k] ~= nil, "member " .. k)
  end
  T.eq(T.decode(T.kf("GET", "/MetadataFields/4")).Name, "RenewalDate", "by id")
  T.eq(T.decode(T.kf("GET", "/MetadataFields/renewaldate")).Id, 4, "by name")
  T.kf_error(T.kf("GET", "/MetadataFields/Missing"), 404, "missing")
end)

T.test("MetadataFields: create with validation", function()
  local r = T.kf("POST", "/MetadataFields", { Name = "App-Service_2", Description = "App", DataType = 5,
    Options = "Billing,CRM", DisplayOrder = 9 })
  T.eq(r.status, 200, "created")
  local f = T.decode(r)
  T.ok(math.type(f.Id) == "integer" and f.Id > 7, "new Id")
  T.eq(f.Options, "Billing,CRM", "options")
  T.eq(T.kf("PUT", "/Certificates/Metadata", { Id = 1, Metadata = { ["App-Service_2"] = "CRM" } }).status, 204, "usable")
  local bad = {
    { Name = "App/Service", Description = "d", DataType = 1, DisplayOrder = 1 },
    { Name = "has space", Description = "d", DataType = 1, DisplayOrder = 1 },
    { Name = "costcenter", Description = "d", DataType = 1, DisplayOrder = 1 },
    { Name = "NoDesc", DataType = 1, DisplayOrder = 1 },
    { Name = "NoType", Description = "d", DisplayOrder = 1 },
    { Name = "BadType", Description = "d", DataType = 9, DisplayOrder = 1 },
    { Name = "NoOrder", Description = "d", DataType = 1 },
    { Name = string.rep("a", 257), Description = "d", DataType = 1, DisplayOrder = 1 },
    { Name = "IssuerDN", Description = "d", DataType = 1, DisplayOrder = 1 },
  }
  for i, b in ipairs(bad) do T.kf_error(T.kf("POST", "/MetadataFields", b), 400, "bad field " .. i) end
end)

T.test("MetadataFields: update and delete", function()
  local r = T.kf("PUT", "/MetadataFields", { Id = 6, Name = "Ticket", Description = "Change ticket", DataType = 2,
    DisplayOrder = 0 })
  T.eq(r.status, 200, "updated")
  T.eq(T.decode(r).Description, "Change ticket", "new description")
  T.kf_error(T.kf("PUT", "/MetadataFields", { Id = 6, Name = "Renamed", Description = "x", DataType = 2, DisplayOrder = 0 }),
    400, "rename of a field in use")
  T.kf_error(T.kf("PUT", "/MetadataFields", { Id = 999, Name = "X", Description = "x", DataType = 1, DisplayOrder = 1 }),
    404, "unknown id")
  T.kf_error(T.kf("DELETE", "/MetadataFields/6"), 400, "in use without force")
  r = T.kf("DELETE", "/MetadataFields/6?force=true")
  T.eq(r.status, 204, "deleted")
  T.eq(r.body, "", "empty body")
  T.kf_error(T.kf("GET", "/MetadataFields/6"), 404, "gone")
  T.eq(md(2).Ticket, nil, "values removed")
end)

T.done()
