-- The list caches and indexes: pages of a cached list never rescan the inventory, and every
-- write that can change an answer shows in the next one (GET /__sim/stats "index" counts the work).
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

local function ix() return T.decode(T.ctl("GET", "stats")).index end
local function q(s) return (s:gsub("[^%w%-%.]", function(ch) return string.format("%%%02X", ch:byte()) end)) end
local function certs(query, extra)
  local r = T.kf("GET", "/Certificates?ReturnLimit=1000&QueryString=" .. q(query) .. (extra or ""))
  T.eq(r.status, 200, query)
  local out = {}
  for _, c in ipairs(T.decode(r)) do out[#out + 1] = c.Id end
  return table.concat(out, ","), T.decode(r)
end
local function put_md(id, md)
  T.eq(T.kf("PUT", "/Certificates/Metadata", { Id = id, Metadata = md }).status, 204, "PUT metadata " .. id)
end

T.world("basic.json")

T.test("Keyfactor: paging a query builds its list once", function()
  T.ctl("DELETE", "stats")
  local seen = {}
  for page = 1, 4 do
    local r = T.kf("GET", "/Certificates?ReturnLimit=1&PageReturned=" .. page .. "&QueryString=" .. q('IssuerDN -contains "Sectigo"'))
    for _, c in ipairs(T.decode(r)) do seen[#seen + 1] = c.Id end
  end
  T.eq(table.concat(seen, ","), "1,2,6", "pages")
  local s = ix()
  T.eq(s.keyfactor_lists_built, 1, "one build for four pages")
  T.eq(s.certificates_scanned, 6, "the inventory was scanned once")
end)

T.test("Keyfactor: a query on built-in fields is not rebuilt by metadata writes, items still show them", function()
  T.ctl("DELETE", "stats")
  local _, items = certs('IssuerDN -contains "Sectigo"', "&includeMetadata=true")
  T.eq(items[1].Metadata.CostCenter, "CC-1", "before")
  put_md(1, { CostCenter = "CC-NEW" })
  _, items = certs('IssuerDN -contains "Sectigo"', "&includeMetadata=true")
  T.eq(items[1].Metadata.CostCenter, "CC-NEW", "the item shows the write")
  _, items = certs('IssuerDN -contains "Sectigo"')
  T.eq(next(items[1].Metadata), nil, "without includeMetadata: none")
  T.eq(ix().keyfactor_lists_built, 0, "served from the list the pages above built")
  T.ctl("POST", "settings", { keyfactorDateFormat = "yyyy-MM-dd" })
  _, items = certs('IssuerDN -contains "Sectigo"', "&includeMetadata=true")
  T.eq(items[1].Metadata.RenewalDate, "2025-07-23", "a date format switch shows")
  T.ctl("POST", "settings", { keyfactorDateFormat = "M/d/yyyy h:mm:ss tt" })
  T.eq(T.decode(T.kf("GET", "/Certificates/1")).Metadata.RenewalDate, "7/23/2025 12:00:00 AM", "single GET too")
end)

T.test("Keyfactor: a query naming a metadata field follows writes to that field only", function()
  T.eq((certs('CostCenter -eq "CC-NEW"')), "1", "before")
  T.ctl("DELETE", "stats")
  put_md(2, { Environment = "Staging" })
  T.eq((certs('CostCenter -eq "CC-NEW"')), "1", "another field written")
  T.eq(ix().keyfactor_lists_built, 0, "not rebuilt")
  put_md(2, { CostCenter = "CC-NEW" })
  T.eq((certs('CostCenter -eq "CC-NEW"')), "1,2", "after a write to it")
  put_md(1, { CostCenter = "" })
  T.eq((certs('CostCenter -eq "CC-NEW"')), "2", "after clearing")
  T.eq((certs("CostCenter -eq NULL")), "1,5,6", "NULL follows too")
  T.eq(ix().keyfactor_lists_built, 3, "rebuilt only when the field changed")
  local r = T.kf("PUT", "/Certificates/Metadata/All", { Query = 'IssuedCN -endswith ".com"',
    Metadata = { { MetadataName = "CostCenter", Value = "BULK", OverwriteExisting = true } } })
  T.eq(r.status, 204, "PUT All")
  T.eq((certs('CostCenter -eq "BULK"')), "1,2,6", "a bulk write by query")
end)

T.test("Keyfactor: a SortField on a metadata field follows writes", function()
  put_md(1, { Ticket = 30 })
  put_md(2, { Ticket = 10 })
  put_md(5, { Ticket = 20 })
  T.eq((certs("", "&SortField=Ticket")), "6,2,5,1", "ascending (no value first)")
  put_md(6, { Ticket = 25 })
  T.eq((certs("", "&SortField=Ticket")), "2,5,6,1", "after a write")
  T.eq((certs("", "&SortField=Ticket&SortAscending=1")), "1,6,5,2", "descending")
end)

T.test("Keyfactor: metadata field definitions change what queries mean", function()
  local r = T.kf("POST", "/MetadataFields", { Name = "Zone", Description = "z", DataType = 1, DisplayOrder = 9 })
  T.eq(r.status, 200, "create")
  local id = T.decode(r).Id
  T.eq((certs("Zone -eq NULL")), "1,2,5,6", "the new field")
  put_md(5, { Zone = "eu" })
  T.eq((certs('Zone -eq "eu"')), "5", "a value")
  T.eq(T.kf("DELETE", "/MetadataFields/" .. id .. "?force=true").status, 204, "delete")
  T.kf_error(T.kf("GET", "/Certificates?QueryString=" .. q('Zone -eq "eu"')), 400, "the field is gone")
  T.eq((certs("")), "1,2,5,6", "plain list")
end)

T.test("Keyfactor: sorting agrees with a brute-force sort on a generated world", function()
  T.eq(T.ctl("POST", "reset", { certs = 400, seed = 9 }).status, 200, "reset")
  local st = T.decode(T.ctl("GET", "state")).keyfactor.certificates
  local function parse_iso(s) return s end -- ISO-8601 UTC strings order as their instants
  local function brute(field, kind, desc)
    local rows = {}
    for _, c in ipairs(st) do
      local v = c[field]
      if v == nil and c.Metadata then v = c.Metadata[field] end
      local k
      if kind == "string" then k = v and tostring(v):lower() or ""
      elseif kind == "number" then k = tonumber(v) or -math.huge
      else k = v and parse_iso(v) or "" end
      rows[#rows + 1] = { id = c.Id, k = k }
    end
    table.sort(rows, function(a, b)
      if a.k == b.k then return a.id < b.id end
      if desc then return a.k > b.k end
      return a.k < b.k
    end)
    local out = {}
    for i, r in ipairs(rows) do out[i] = r.id end
    return table.concat(out, ",")
  end
  local cases = { { "IssuedCN", "string" }, { "NotAfter", "date" }, { "NotBefore", "date" }, { "KeySizeInBits", "number" },
    { "CostCenter", "string" }, { "TicketNumber", "number" }, { "Id", "number" }, { "CertState", "number" } }
  for _, c in ipairs(cases) do
    for _, desc in ipairs({ false, true }) do
      local got = certs("", "&IncludeRevoked=true&IncludeExpired=true&SortField=" .. c[1]
        .. "&SortAscending=" .. (desc and "1" or "0"))
      T.eq(got, brute(c[1], c[2], desc), c[1] .. (desc and " descending" or " ascending"))
    end
  end
end)

T.test("Sectigo: filter combinations are cached, serial and name lookups use their index", function()
  T.world("basic.json")
  T.ctl("DELETE", "stats")
  for pos = 0, 3 do T.sc("GET", "/api/ssl/v1?sslTypeId=1018&size=1&position=" .. pos) end
  local s = ix()
  T.eq(s.sectigo_lists_built, 1, "one build for four pages")
  T.eq(s.certificates_scanned, 6, "one scan")
  T.sc("GET", "/api/ssl/v1?serialNumber=0A1B2C3D")
  T.sc("GET", "/api/ssl/v1?serialNumber=00FFEEDDCC&sslTypeId=1025")
  T.sc("GET", "/api/ssl/v1?commonName=C.EXAMPLE.COM")
  s = ix()
  T.eq(s.certificates_scanned, 6 + 6 + 1 + 6, "serial index and name index built once each, then tiny lookups")
  local items = T.decode(T.sc("GET", "/api/ssl/v1?serialNumber=00FFEEDDCC&sslTypeId=1025"))
  T.eq(items[1].sslId, 102, "serial and type")
  T.eq(#T.decode(T.sc("GET", "/api/ssl/v1?serialNumber=00FFEEDDCC&sslTypeId=1018")), 0, "serial and another type")
end)

T.test("Sectigo: cached items and details follow the serial setting and PUTs", function()
  local function serial() return T.decode(T.sc("GET", "/api/ssl/v1?commonName=a.example.com"))[1].serialNumber end
  T.eq(serial(), "0A:1B:2C:3D", "colon")
  T.ctl("POST", "settings", { sectigoListSerialFormat = "plain" })
  T.eq(serial(), "0A1B2C3D", "plain")
  T.ctl("POST", "settings", { sectigoListSerialFormat = "colon" })
  T.eq(serial(), "0A:1B:2C:3D", "colon again")
  T.ctl("DELETE", "stats")
  T.eq(T.decode(T.sc("GET", "/api/ssl/v1/101")).comments, "first", "details")
  T.eq(T.decode(T.sc("GET", "/api/ssl/v1/101")).comments, "first", "details again")
  T.ok(ix().json_hits >= 1, "the second one came from the cache")
  T.eq(T.sc("PUT", "/api/ssl/v1", { sslId = 101, comments = "changed" }).status, 200, "PUT")
  T.eq(T.decode(T.sc("GET", "/api/ssl/v1/101")).comments, "changed", "details after the PUT")
end)

T.test("strings with quotes, backslashes, control characters and UTF-8 survive the assembled JSON", function()
  local odd = 'q"uo\\te\ttab\nnl \1 é ü 💡 </x>'
  local doc = T.json.decode(T.fixture("basic.json"))
  local sc = doc.sectigo.certificates[1]
  sc.commonName, sc.subjectAlternativeNames, sc.comments = odd, { odd, "plain" }, odd
  sc.customFields = { { name = "Notes", value = odd } }
  local kc = doc.keyfactor.certificates[1]
  kc.IssuedDN, kc.IssuerDN, kc.IssuedCN, kc.TemplateName, kc.SubjectAltNames = odd, odd, odd, odd, { odd }
  kc.CARecordId, kc.NotBefore, kc.NotAfter = odd, "1969-12-31T23:59:59Z", "2099-12-31T23:59:59Z"
  T.eq(T.ctl("POST", "reset", doc).status, 200, "load")
  local it = T.decode(T.sc("GET", "/api/ssl/v1?sslTypeId=1018&size=1"))[1]
  T.eq(it.commonName, odd, "list commonName")
  T.eq(it.subjectAlternativeNames[1], odd, "list SAN")
  local row = T.find(T.decode(T.sc("POST", "/api/report/v1/ssl-certificates", {})).reports, "id", 101)
  T.eq(row.commonName, odd, "row commonName")
  T.eq(row.comments, odd, "row comments")
  T.eq(row.subjAltNames, odd .. ",plain", "row subjAltNames")
  T.eq(row.customFields[1].value, odd, "row custom field")
  local c = T.decode(T.kf("GET", "/Certificates?ReturnLimit=1"))[1]
  for _, k in ipairs({ "IssuedDN", "IssuerDN", "IssuedCN", "TemplateName", "CARecordId" }) do T.eq(c[k], odd, k) end
  T.eq(c.SubjectAltNameElements[1].Value, odd, "SAN")
  T.eq(c.NotBefore, "1969-12-31T23:59:59Z", "a date before 1970")
  T.eq(c.NotAfter, "2099-12-31T23:59:59Z", "a late date")
  T.eq(T.decode(T.kf("GET", "/Certificates/1")).IssuedDN, odd, "single GET")
end)

T.done()
