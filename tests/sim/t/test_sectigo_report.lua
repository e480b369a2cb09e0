-- POST /api/report/v1/ssl-certificates: rows consistent with details, the documented filters,
-- the settings for what is undocumented, the availability switch and the row cap.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

local REPORT = "/api/report/v1/ssl-certificates"

-- basic.json plus an external requester, a request source, a Declined and a Replaced certificate.
local function world()
  local doc = T.json.decode(T.fixture("basic.json"))
  local c = doc.sectigo.certificates
  c[1].externalRequester = "ext.alice@partner.example"
  c[1].requestedVia = "REST API"
  c[#c + 1] = { id = 107, commonName = "g.example.com", status = "Declined", sslTypeId = 1018,
    requested = "2025-06-03", declined = "2025-06-04", orgId = 9 }
  c[#c + 1] = { id = 108, commonName = "h.example.net", status = "Replaced", sslTypeId = 1040, serialNumber = "00:01:AB",
    issued = "2024-01-10", expires = "2025-01-10", replaced = "2024-06-01", orgId = 8, keyAlgorithm = "EC",
    keySize = 256, requestedVia = "ACME" }
  return doc
end
T.eq(T.ctl("POST", "reset", world()).status, 200, "load the report world")

local function report(body, query)
  local r = T.sc("POST", REPORT .. (query or ""), body)
  T.eq(r.status, 200, "report " .. T.json.encode(body))
  local doc = T.decode(r)
  T.eq(doc.statusCode, 0, "statusCode")
  T.ok(type(doc.reports) == "table", "reports")
  return doc.reports
end
local function ids(body)
  local out = {}
  for _, row in ipairs(report(body)) do out[#out + 1] = row.id end
  return table.concat(out, ",")
end
local function set(t) T.eq(T.ctl("POST", "settings", t).status, 200, "settings " .. T.json.encode(t)) end

T.test("a row agrees with the certificate's details (issuer included)", function()
  local rows = report({})
  T.eq(#rows, 8, "every certificate")
  for _, row in ipairs(rows) do
    local d = T.decode(T.sc("GET", "/api/ssl/v1/" .. row.id .. "?dateFormat=ISO_HMS"))
    local what = "row " .. row.id .. " "
    for _, k in ipairs({ "commonName", "status", "orgId", "term", "requester", "requestedVia", "orderNumber",
      "backendCertId", "comments", "signatureAlg" }) do
      T.eq(row[k], d[k], what .. k)
    end
    T.eq(row.typeId, d.certType.id, what .. "typeId")
    T.eq(row.type, d.certType.name, what .. "type")
    T.eq(row.publicKeyAlg, d.keyAlgorithm, what .. "publicKeyAlg")
    T.eq(row.publicKeySize, tostring(d.keySize), what .. "publicKeySize is a string")
    T.eq(row.publicKeyType, d.keyType, what .. "publicKeyType")
    T.eq(row.externalRequester, d.externalRequester or "", what .. "externalRequester")
    T.eq(row.issuer, d.certificateDetails and d.certificateDetails.issuer, what .. "issuer")
    T.eq(row.sha1, d.certificateDetails and d.certificateDetails.sha1Hash, what .. "sha1")
    for _, k in ipairs({ "requested", "approved", "issued", "expires", "revoked" }) do T.eq(row[k], d[k], what .. k) end
    T.ok(type(row.subjAltNames) == "string", what .. "subjAltNames is one string")
    T.ok(type(row.customFields) == "table", what .. "customFields")
  end
  local a = T.find(rows, "id", 101)
  T.eq(a.issuer, "CN=Sectigo RSA Organization Validation Secure Server CA,O=Sectigo Limited,L=Salford,"
    .. "ST=Greater Manchester,C=GB", "OV issuer")
  T.ok(T.find(rows, "id", 102).issuer:find("Extended Validation", 1, true), "EV issuer")
  T.eq(a.issued, "2025-05-21T00:00:00.000Z", "default row date format")
  T.eq(a.externalRequester, "ext.alice@partner.example", "externalRequester")
  T.eq(a.requestedVia, "REST API", "requestedVia")
  local h = T.find(rows, "id", 108)
  T.eq(h.replaced, "2024-06-01T00:00:00.000Z", "replaced date")
  T.eq(h.publicKeyType, "EC - 256", "EC key")
  T.eq(T.find(rows, "id", 107).declined, "2025-06-04T00:00:00.000Z", "declined date")
  T.eq(T.find(rows, "id", 104).issuer, nil, "no issuer before issuance")
end)

T.test("from/to are both inclusive days of the date attribute (default: issuance)", function()
  T.eq(ids({ from = "2025-01-02", to = "2025-05-21" }), "101,102", "both bounds inclusive")
  T.eq(ids({ from = "2025-01-03", to = "2025-05-21" }), "101", "from excludes the day before")
  T.eq(ids({ from = "2025-01-02", to = "2025-05-20" }), "102", "to excludes the day after")
  T.eq(ids({ from = "2025-05-21", to = "2025-05-21" }), "101", "a one-day window")
  T.eq(ids({ from = "2025-01-02T18:30:00Z", to = "2025-05-21T00:00:00Z" }), "101,102", "date-times count by their day")
  local a, b = ids({ from = "2024-01-01", to = "2024-12-31" }), ids({ from = "2025-01-01", to = "2025-12-31" })
  T.eq(a, "103,108", "2024")
  T.eq(b, "101,102", "2025: adjacent windows do not overlap")
  T.eq(ids({ certificateDateAttribute = "5", from = "2025-01-01" }), "101,102", "only from; 5 is issuance")
  T.eq(ids({ certificateDateAttribute = "3", from = "2025-01-01", to = "2025-12-31" }), "103,108", "3 expiration")
  T.eq(ids({ certificateDateAttribute = 2, to = "2024-12-31" }), "103", "2 revocation, as a number, only to")
  T.eq(ids({ certificateDateAttribute = "4", from = "2025-06-01", to = "2025-06-02" }), "104,105", "4 request")
  T.eq(ids({ certificateDateAttribute = "4", from = "2025-06-02" }), "105,107", "4 request, open end")
  T.eq(ids({ certificateDateAttribute = "3" }), "101,102,103,104,105,106,107,108", "no window: everything")
end)

T.test("certificateStatus, organizationIds, commonName, externalRequester, certificateRequestSource", function()
  T.eq(ids({ certificateStatus = "0" }), "101,102,103,104,105,106,107,108", "0 any")
  T.eq(ids({ certificateStatus = "1" }), "104,105", "1 requested (Applied)")
  T.eq(ids({ certificateStatus = 2 }), "101,102", "2 issued, as a number")
  T.eq(ids({ certificateStatus = "3" }), "103", "3 revoked")
  T.eq(ids({ certificateStatus = "4" }), "106", "4 expired")
  T.eq(ids({ certificateStatus = "2", from = "2025-01-01", to = "2025-12-31" }), "101,102", "status and window")
  T.eq(ids({ certificateStatus = "3", from = "2025-01-01" }), "", "revoked, issued in 2025: none")
  T.eq(ids({ organizationIds = { 7 } }), "101,102", "one organization")
  T.eq(ids({ organizationIds = { 8, "9" } }), "103,107,108", "several, numbers or numeric strings")
  T.eq(ids({ organizationIds = T.json.array({}) }), "101,102,103,104,105,106,107,108", "an empty list does not filter")
  T.eq(ids({ commonName = "B.EXAMPLE" }), "102", "commonName: a substring, any case")
  T.eq(ids({ commonName = "%.example.net" }), "108", "% is any run")
  T.eq(ids({ commonName = "_.example.c%" }), "101,102,103,104,105,106,107", "_ is one character")
  T.eq(ids({ commonName = "" }), "101,102,103,104,105,106,107,108", "empty: no filter")
  T.eq(ids({ externalRequester = "alice@" }), "101", "externalRequester substring")
  T.eq(ids({ externalRequester = "ALICE" }), "", "externalRequester is case sensitive")
  T.eq(ids({ certificateRequestSource = "12" }), "101", "12 REST API")
  T.eq(ids({ certificateRequestSource = 10 }), "108", "10 ACME, as a number")
  T.eq(ids({ certificateRequestSource = "0", certificateStatus = "2" }), "102", "0 Enrollment Form")
end)

T.test("serial forms and includeIpAddresses", function()
  local rows = report({ certificateStatus = "0" })
  T.eq(T.find(rows, "id", 102).serialNumber, "FFEEDDCC", "default: without leading zeros")
  T.eq(T.find(rows, "id", 108).serialNumber, "1AB", "default: without leading zeros")
  T.eq(T.find(rows, "id", 104).serialNumber, nil, "no serial yet")
  T.eq(T.find(rows, "id", 101).ipAddresses, nil, "no ipAddresses unless asked")
  rows = report({ serialNumberFormat = "HEXWithLeadingZeros", includeIpAddresses = true })
  T.eq(T.find(rows, "id", 102).serialNumber, "00FFEEDDCC", "HEXWithLeadingZeros")
  T.eq(T.find(rows, "id", 108).serialNumber, "0001AB", "HEXWithLeadingZeros")
  T.eq(T.find(rows, "id", 101).ipAddresses, "", "ipAddresses with includeIpAddresses")
  T.eq(T.find(report({ serialNumberFormat = "Decimal" }), "id", 102).serialNumber, "FFEEDDCC", "another format: default")
  set({ sectigoReportSerialFormat = "colon" })
  rows = report({})
  T.eq(T.find(rows, "id", 102).serialNumber, T.decode(T.sc("GET", "/api/ssl/v1/102")).serialNumber, "colon: as details")
  T.eq(T.find(report({ serialNumberFormat = "HEXWithLeadingZeros" }), "id", 108).serialNumber, "0001AB", "the request wins")
  set({ sectigoReportSerialFormat = "plain" })
  T.eq(T.find(report({}), "id", 102).serialNumber, "FFEEDDCC", "plain again")
end)

T.test("bad requests get 400 in Sectigo's error shape", function()
  local cases = { { from = 20250101 }, { from = "2025-13-01" }, { to = "yesterday" },
    { from = "2025-02-01", to = "2025-01-31" }, { certificateStatus = "5" }, { certificateStatus = true },
    { certificateStatus = 1.5 }, { certificateDateAttribute = "1" }, { certificateRequestSource = "6" },
    { organizationIds = "7" }, { organizationIds = { "x" } }, { organizationIds = { a = 1 } },
    { commonName = 5 }, { commonName = "a<b" }, { commonName = string.rep("c", 257) },
    { externalRequester = false }, { includeIpAddresses = "maybe" }, { serialNumberFormat = 1 } }
  for _, body in ipairs(cases) do
    local b = T.sc_error(T.sc("POST", REPORT, body), 400, -1601, T.json.encode(body))
    T.ok(b.description:find("invalid value", 1, true), "description")
  end
  T.sc_error(T.sc("POST", REPORT, "{not json"), 400, -1002, "malformed")
  T.sc_error(T.sc("POST", REPORT, "[1]"), 400, -1002, "an array")
  T.eq(#report({ includeIpAddresses = "false", certificateStatus = "2" }), 2, "\"false\" is a boolean too")
end)

T.test("settings: row date format, inactive fields", function()
  set({ sectigoReportDateFormat = "yyyy-MM-dd" })
  T.eq(T.find(report({}), "id", 101).issued, "2025-05-21", "yyyy-MM-dd")
  set({ sectigoReportDateFormat = "MM/dd/yyyy" })
  T.eq(T.find(report({}), "id", 101).expires, "05/21/2026", "MM/dd/yyyy")
  T.eq(T.find(report({}, "?dateFormat=EU"), "id", 101).expires, "21.05.2026", "?dateFormat= overrides")
  set({ sectigoReportDateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'" })
  local function cf(row)
    local t = {}
    for _, f in ipairs(row.customFields) do t[f.name] = f.value end
    return t
  end
  T.eq(cf(T.find(report({}), "id", 101)).Legacy, nil, "inactive field left out by default")
  set({ sectigoReportInactiveFields = true })
  local a = cf(T.find(report({}), "id", 101))
  T.eq(a.Legacy, "old", "inactive field shown")
  T.eq(a["Cost Center"], "CC-1", "active fields too")
  set({ sectigoReportInactiveFields = false })
end)

T.test("a PUT shows in the next report (rows are not served stale)", function()
  local before = T.find(report({}), "id", 101)
  T.eq(before.comments, "first", "comments before")
  local r = T.sc("PUT", "/api/ssl/v1", { sslId = 101, comments = "second",
    customFields = { { name = "Cost Center", value = "CC-9" } } })
  T.eq(r.status, 200, "PUT")
  local after = T.find(report({}), "id", 101)
  T.eq(after.comments, "second", "comments after")
  local v
  for _, f in ipairs(after.customFields) do if f.name == "Cost Center" then v = f.value end end
  T.eq(v, "CC-9", "custom field after")
end)

T.test("sectigoReport switches the endpoint off in every way a client must survive", function()
  local want = { ["401"] = -16, ["403"] = -37, ["404"] = -1, ["405"] = -1 }
  for mode, code in pairs(want) do
    set({ sectigoReport = mode })
    T.sc_error(T.sc("POST", REPORT, {}), tonumber(mode), code, mode)
    T.eq(T.sc("GET", "/api/ssl/v1/101").status, 200, "details still served with " .. mode)
  end
  set({ sectigoReport = "badshape" })
  local r = T.sc("POST", REPORT, {})
  T.eq(r.status, 200, "badshape status")
  local doc = T.decode(r)
  T.ok(type(doc) == "table" and doc.reports == nil, "badshape: an object without reports")
  set({ sectigoReport = "badrows" })
  doc = T.decode(T.sc("POST", REPORT, {}))
  T.ok(type(doc.reports) == "table" and not T.json.is_array(doc.reports), "badrows: reports is not a list")
  set({ sectigoReport = "on" })
  T.eq(#report({}), 8, "on again")
end)

T.test("sectigoReportMaxRows: a larger result is refused with 400 saying it is too large", function()
  set({ sectigoReportMaxRows = 3 })
  local b = T.sc_error(T.sc("POST", REPORT, {}), 400, -1, "8 rows over a cap of 3")
  T.ok(b.description:find("too large", 1, true), "description says too large")
  T.eq(ids({ certificateStatus = "2" }), "101,102", "under the cap")
  T.eq(#report({ certificateDateAttribute = "3", from = "2025-01-01", to = "2025-12-31" }), 2, "a window under the cap")
  set({ sectigoReportMaxRows = 0 })
  T.eq(#report({}), 8, "no cap")
end)

T.test("generated world: windows use the date index and agree with a brute-force filter", function()
  T.eq(T.ctl("POST", "reset", { certs = 3000, seed = 3 }).status, 200, "reset")
  local certs = T.decode(T.ctl("GET", "state")).sectigo.certificates
  local function brute(attr, from, to)
    local out = {}
    for _, c in ipairs(certs) do
      local d = c[attr]
      if d and d >= from and d <= to then out[#out + 1] = c.id end
    end
    table.sort(out)
    return table.concat(out, ",")
  end
  T.ctl("DELETE", "stats")
  local year = tonumber(os.date("!%Y"))
  local windows = 0
  for _, spec in ipairs({ { "5", "issued" }, { "3", "expires" }, { "4", "requested" }, { "2", "revoked" } }) do
    for m = 1, 12, 3 do
      local from = string.format("%04d-%02d-01", year - 1, m)
      local to = string.format("%04d-%02d-28", year - 1, m + 2)
      T.eq(ids({ certificateDateAttribute = spec[1], from = from, to = to }), brute(spec[2], from, to),
        spec[2] .. " " .. from .. ".." .. to)
      windows = windows + 1
    end
  end
  local ix = T.decode(T.ctl("GET", "stats")).index
  T.eq(ix.sectigo_date_indexes, 4, "one index per date attribute, built once")
  -- The four index builds look at every certificate once; the windows only at their own rows.
  T.ok(ix.certificates_scanned < 4 * 3000 + windows * 3000 / 4, "windows did not scan the inventory: "
    .. ix.certificates_scanned)
  T.ctl("DELETE", "stats")
  ids({ certificateDateAttribute = "5", from = string.format("%04d-01-01", year - 1), to = string.format("%04d-01-07", year - 1) })
  ix = T.decode(T.ctl("GET", "stats")).index
  T.eq(ix.sectigo_date_indexes, 0, "the index is kept")
  T.ok(ix.certificates_scanned < 200, "a one-week window looks at its few rows only: " .. ix.certificates_scanned)
end)

T.done()
