-- keyfactorQueryNames: which spellings of the certificate query parameters bind (v10: pq.* only,
-- v25: unprefixed only, any: both, pq.* winning), on GET /Certificates and GET /MetadataFields.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

T.world("basic.json")

local function ids(path, q)
  local r = T.kf("GET", path .. "?" .. q)
  T.eq(r.status, 200, q)
  local out = {}
  for _, c in ipairs(T.decode(r)) do out[#out + 1] = c.Id end
  return table.concat(out, ","), r.headers["x-total-count"]
end
local function certs(q) return ids("/Certificates", q) end
local function fields(q) return ids("/MetadataFields", q) end
local function names(mode) T.eq(T.ctl("POST", "settings", { keyfactorQueryNames = mode }).status, 200, mode) end

T.test("any (default): both spellings bind, any case", function()
  T.eq((certs("ReturnLimit=2&PageReturned=2")), "5,6", "v25 names")
  T.eq((certs("pq.returnLimit=2&pq.pageReturned=2")), "5,6", "v10 names")
  T.eq((certs("PQ.RETURNLIMIT=1&pq.SortField=IssuedCN&pq.sortascending=1")), "6", "v10 names, any case")
  T.eq((certs("IncludeRevoked=true&pq.includeExpired=true")), "1,2,3,4,5,6", "mixed")
end)

T.test("any: when both spellings are sent the pq.* one wins, in either order", function()
  T.eq((certs("ReturnLimit=1&pq.returnLimit=3")), "1,2,5", "pq. after")
  T.eq((certs("pq.returnLimit=3&ReturnLimit=1")), "1,2,5", "pq. before")
  T.eq((certs("QueryString=IssuedCN%20-eq%20%22a.example.com%22&pq.queryString=CertState%20-eq%201")), "1,2,5,6",
    "pq.queryString")
  T.eq((fields("ReturnLimit=1&pq.returnLimit=2")), "2,3", "MetadataFields: pq. wins")
end)

T.test("v10: only pq.* members bind; unprefixed ones are ignored; includeMetadata binds unprefixed", function()
  names("v10")
  local got, total = certs("ReturnLimit=1&PageReturned=2&QueryString=CertState%20-eq%202&IncludeRevoked=true")
  T.eq(got, "1,2,5,6", "unprefixed paging, query and IncludeRevoked ignored")
  T.eq(total, "4", "total")
  T.eq((certs("pq.returnLimit=1&pq.pageReturned=2")), "2", "pq. paging")
  T.eq((certs("pq.queryString=CertState%20-eq%202&pq.includeRevoked=true")), "3", "pq. query")
  T.eq((certs("SortField=Nope")), "1,2,5,6", "an unprefixed SortField is not even read")
  T.kf_error(T.kf("GET", "/Certificates?pq.sortField=Nope"), 400, "pq.sortField is")
  local c = T.decode(T.kf("GET", "/Certificates?pq.returnLimit=1&includeMetadata=true"))[1]
  T.eq(c.Metadata.CostCenter, "CC-1", "includeMetadata binds without prefix")
  c = T.decode(T.kf("GET", "/Certificates?pq.returnLimit=1&pq.includeMetadata=true"))[1]
  T.eq(next(c.Metadata), nil, "pq.includeMetadata is not a v10 name")
  T.eq((fields("ReturnLimit=1")), "2,3,1,4,5,6,7", "MetadataFields ignores ReturnLimit")
  T.eq((fields("pq.returnLimit=1&pq.pageReturned=2")), "3", "MetadataFields binds pq.")
end)

T.test("v25: only unprefixed names bind; pq.* are ignored", function()
  names("v25")
  T.eq((certs("pq.returnLimit=1&pq.pageReturned=2&pq.includeRevoked=true")), "1,2,5,6", "pq. ignored")
  T.eq((certs("ReturnLimit=1&PageReturned=2")), "2", "unprefixed paging")
  T.eq((certs("returnlimit=1&pagereturned=3&includerevoked=TRUE")), "3", "any case")
  T.eq((certs("pq.queryString=bogus%20query")), "1,2,5,6", "a pq. query is not read")
  T.eq((fields("pq.returnLimit=1")), "2,3,1,4,5,6,7", "MetadataFields ignores pq.")
  T.eq((fields("ReturnLimit=2&PageReturned=2")), "1,4", "MetadataFields binds unprefixed")
end)

T.test("keyfactorIgnorePaging: page 2 is page 1 with the full total (Certificates and MetadataFields)", function()
  names("any")
  T.eq(T.ctl("POST", "settings", { keyfactorIgnorePaging = true }).status, 200, "set")
  local p1, t1 = certs("ReturnLimit=2&PageReturned=1")
  local p2, t2 = certs("ReturnLimit=2&PageReturned=2")
  T.eq(p1, "1,2", "page 1")
  T.eq(p2, p1, "page 2 repeats page 1")
  T.eq(t2, "4", "x-total-count still the full total")
  T.eq((certs("pq.returnLimit=2&pq.pageReturned=3")), "1,2", "v10 names too")
  T.eq((certs("ReturnLimit=2&PageReturned=0")), "1,2", "PageReturned is not even read")
  local f1 = fields("ReturnLimit=3&PageReturned=1")
  local f2, ft = fields("ReturnLimit=3&PageReturned=2")
  T.eq(f2, f1, "MetadataFields page 2 repeats page 1")
  T.eq(ft, "7", "MetadataFields total")
  T.ctl("POST", "settings", { keyfactorIgnorePaging = false })
  T.eq((certs("ReturnLimit=2&PageReturned=2")), "5,6", "paging again")
  T.eq(t1, "4", "total")
end)

T.test("sectigoIgnorePaging: position is ignored, X-Total-Count is the full total", function()
  local function page(q)
    local r = T.sc("GET", "/api/ssl/v1?" .. q)
    T.eq(r.status, 200, q)
    local out = {}
    for _, it in ipairs(T.decode(r)) do out[#out + 1] = it.sslId end
    return table.concat(out, ","), r.headers["x-total-count"]
  end
  T.eq((page("size=2&position=2")), "103,104", "paging by default")
  T.eq(T.ctl("POST", "settings", { sectigoIgnorePaging = true }).status, 200, "set")
  local p1 = page("size=2&position=0")
  local p2, total = page("size=2&position=2")
  T.eq(p1, "101,102", "first page")
  T.eq(p2, p1, "position 2 repeats the first page")
  T.eq(total, "6", "X-Total-Count")
  T.eq((page("size=3&position=-5")), "101,102,103", "position is not even read")
  T.eq((page("size=2&position=1&status=Applied")), "104,105", "filters still apply")
  T.ctl("POST", "settings", { sectigoIgnorePaging = false })
end)

T.done()
