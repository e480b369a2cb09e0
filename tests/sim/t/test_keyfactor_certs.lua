-- Keyfactor auth, required header, GET /Certificates paging/sorting/filters, Status/Endpoints.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

T.test("generated inventory: padded serials, Sectigo and other issuers", function()
  local r = T.kf("GET", "/Certificates?ReturnLimit=1000&IncludeRevoked=true&IncludeExpired=true")
  T.eq(r.status, 200, "status")
  local items = T.decode(r)
  T.eq(tostring(#items), r.headers["x-total-count"], "x-total-count")
  local sectigo, other, revoked = 0, 0, 0
  for _, c in ipairs(items) do
    T.ok(#c.SerialNumber == 32 and c.SerialNumber:match("^%x+$"), "32 hex digits: " .. c.SerialNumber)
    if c.IssuerDN:find("Sectigo", 1, true) then sectigo = sectigo + 1 else other = other + 1 end
    if c.CertState == 2 then revoked = revoked + 1 end
  end
  T.ok(sectigo > 150 and other > 10 and revoked > 5, "mix of issuers and states")
end)

T.world("basic.json")

T.test("auth: 401 without or with wrong credentials; DOMAIN\\user accepted", function()
  local r = T.request("GET", T.K .. "/Certificates", { ["x-keyfactor-requested-with"] = "APIClient" })
  T.kf_error(r, 401, "no auth")
  r = T.request("GET", T.K .. "/Certificates", { ["x-keyfactor-requested-with"] = "APIClient",
    Authorization = "Basic c2ltLWFkbWluOndyb25n" })
  T.kf_error(r, 401, "wrong password")
  r = T.request("GET", T.K .. "/Certificates", { ["x-keyfactor-requested-with"] = "APIClient",
    Authorization = "Basic Q09SUFxzaW0tYWRtaW46c2ltLXBhc3N3b3Jk" }) -- CORP\sim-admin:sim-password
  T.eq(r.status, 200, "domain user")
end)

T.test("x-keyfactor-requested-with is required", function()
  local r = T.request("GET", T.K .. "/Certificates", { Authorization = T.KF_AUTH })
  local b = T.kf_error(r, 400, "missing header")
  T.ok(b.Message:find("x-keyfactor-requested-with", 1, true), "message names the header")
end)

T.test("bearer token from /oauth/token on the Keyfactor port", function()
  local r = T.request("POST", T.KBASE .. "/oauth/token", { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=client_credentials&client_id=sim-client&client_secret=sim-secret")
  local tok = T.decode(r).access_token
  r = T.request("GET", T.K .. "/Certificates", { Authorization = "Bearer " .. tok, ["x-keyfactor-requested-with"] = "APIClient" })
  T.eq(r.status, 200, "accepted")
  T.eq(T.ctl("DELETE", "tokens").status, 204, "expire tokens")
  r = T.request("GET", T.K .. "/Certificates", { Authorization = "Bearer " .. tok, ["x-keyfactor-requested-with"] = "APIClient" })
  T.eq(r.status, 401, "expired token refused")
end)

local function ids(q)
  local r = T.kf("GET", "/Certificates?" .. q)
  T.eq(r.status, 200, q)
  local out = {}
  for _, c in ipairs(T.decode(r)) do out[#out + 1] = c.Id end
  return table.concat(out, ","), r.headers["x-total-count"]
end

T.test("revoked and expired are excluded by default", function()
  local got, total = ids("")
  T.eq(got, "1,2,5,6", "default")
  T.eq(total, "4", "total")
  T.eq((ids("IncludeRevoked=true")), "1,2,3,5,6", "with revoked")
  T.eq((ids("includeexpired=TRUE")), "1,2,4,5,6", "with expired, any case")
  T.eq((ids("pq.includeRevoked=true&pq.includeExpired=true")), "1,2,3,4,5,6", "v10 names")
end)

T.test("paging and sorting in both parameter styles", function()
  T.eq((ids("ReturnLimit=2&PageReturned=2")), "5,6", "page 2")
  T.eq((ids("pq.returnLimit=2&pq.pageReturned=1")), "1,2", "v10 paging")
  T.eq((ids("RETURNLIMIT=3&pagereturned=3")), "", "past the end")
  T.eq((ids("SortField=IssuedCN&SortAscending=0")), "1,2,5,6", "ascending CN")
  T.eq((ids("SortField=IssuedCN&SortAscending=1")), "6,5,2,1", "descending CN")
  T.eq((ids("pq.sortField=NotAfter&pq.sortAscending=0")), "6,5,2,1", "ascending NotAfter")
  T.eq((ids("SortField=Id&SortAscending=1")), "6,5,2,1", "descending Id")
end)

T.test("item fields and metadata only with includeMetadata=true", function()
  local c = T.decode(T.kf("GET", "/Certificates?ReturnLimit=1"))[1]
  T.eq(c.Id, 1, "Id")
  T.eq(c.SerialNumber, "0000000000000000000000000A1B2C3D", "padded serial")
  T.eq(c.IssuedCN, "a.example.com", "IssuedCN")
  T.eq(c.CertState, 1, "CertState")
  T.eq(c.CARecordId, "101", "CARecordId")
  T.eq(c.NotAfter, "2099-05-21T10:00:00Z", "NotAfter ISO-8601")
  T.ok(c.IssuerDN:find("Sectigo", 1, true), "IssuerDN")
  for _, k in ipairs({ "Thumbprint", "IssuedDN", "ImportDate", "NotBefore", "CertStateString", "KeySizeInBits",
    "SigningAlgorithm", "SubjectAltNameElements", "ExtendedKeyUsages", "Locations", "HasPrivateKey" }) do
    T.ok(c[k] ~= nil, "member " .. k)
  end
  T.eq(next(c.Metadata), nil, "no metadata by default")
  c = T.decode(T.kf("GET", "/Certificates?ReturnLimit=2&includeMetadata=true"))
  T.eq(c[1].Metadata.CostCenter, "CC-1", "string metadata")
  T.eq(c[1].Metadata.RenewalDate, "7/23/2025 12:00:00 AM", "25.1 date rendering")
  T.eq(c[2].Metadata.Critical, "True", "boolean rendering")
  T.eq(c[2].Metadata.Ticket, "1234", "integer as string")
end)

T.test("bad parameters get 400 with a Keyfactor error body", function()
  for _, q in ipairs({ "ReturnLimit=-1", "PageReturned=abc", "ReturnLimit=1e99", "SortField=Nope",
    "SortAscending=2", "IncludeRevoked=maybe", "QueryString=" .. string.rep("(", 300) }) do
    T.kf_error(T.kf("GET", "/Certificates?" .. q), 400, q)
  end
end)

T.test("paging parameters: the error states the allowed range; PageReturned is 1-based", function()
  local cases = {
    { "ReturnLimit=100000000000", "ReturnLimit is too large: at most 2147483647." },
    { "ReturnLimit=2147483648", "ReturnLimit is too large: at most 2147483647." },
    { "ReturnLimit=-1", "ReturnLimit must be an integer from 0 to 2147483647." },
    { "PageReturned=0", "PageReturned must be at least 1 (pages are numbered from 1)." },
    { "PageReturned=x", "PageReturned must be an integer from 1 to 2147483647." },
    { "PageReturned=99999999999999999999", "PageReturned is too large: at most 2147483647." },
  }
  for _, c in ipairs(cases) do
    T.eq(T.kf_error(T.kf("GET", "/Certificates?" .. c[1]), 400, c[1]).Message, c[2], c[1])
    T.eq(T.kf_error(T.kf("GET", "/MetadataFields?" .. c[1]), 400, c[1]).Message, c[2], "MetadataFields " .. c[1])
  end
  local r = T.kf("GET", "/Certificates?ReturnLimit=2147483647&PageReturned=1")
  T.eq(r.status, 200, "the largest ReturnLimit")
  r = T.kf("GET", "/Certificates?ReturnLimit=0")
  T.eq(#T.decode(r), 0, "ReturnLimit=0: no items")
  T.ok(tonumber(r.headers["x-total-count"]) > 0, "but the total")
end)

T.test("GET /Status/Endpoints with x-keyfactor-product-version", function()
  local r = T.kf("GET", "/Status/Endpoints")
  T.eq(r.status, 200, "status")
  T.eq(r.headers["x-keyfactor-product-version"], "25.1.0.0", "product version")
  local list = T.decode(r)
  T.ok(#list > 3 and type(list[1]) == "string", "array of strings")
end)

T.done()
