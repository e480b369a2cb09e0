-- GET /api/ssl/v1/{id}, dateFormat, types, custom field definitions, the bulk report.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

T.world("basic.json")

T.test("details: the documented shape", function()
  local r = T.sc("GET", "/api/ssl/v1/101")
  T.eq(r.status, 200, "status")
  T.ok(r.headers["content-type"]:find("application/json", 1, true), "content type")
  local d = T.decode(r)
  T.eq(d.sslId, 101, "sslId")
  T.eq(d.id, 101, "id")
  T.eq(d.commonName, "a.example.com", "commonName")
  T.eq(d.status, "Issued", "status")
  T.eq(d.orgId, 7, "orgId")
  T.eq(d.serialNumber, "0A:1B:2C:3D", "uppercase colon-hex serial")
  T.eq(d.certType.id, 1018, "certType.id")
  T.eq(d.certType.name, "OV SSL", "certType.name")
  T.eq(d.certType.terms[1], 365, "certType.terms")
  T.eq(d.certType.keyTypes.RSA[2], "4096", "certType.keyTypes")
  T.eq(d.certType.useSecondaryOrgName, false, "useSecondaryOrgName")
  T.eq(d.keyType, "RSA - 2048", "keyType")
  T.eq(d.comments, "first", "comments")
  T.eq(d.renewed, false, "renewed")
  T.eq(d.suspendNotifications, false, "suspendNotifications")
  T.eq(d.autoInstallDetails.state, "Not configured", "autoInstallDetails")
  T.eq(d.autoRenewDetails.state, "Not scheduled", "autoRenewDetails")
  T.ok(d.certificateDetails.issuer:find("Sectigo", 1, true), "certificateDetails.issuer")
  T.ok(d.certificateDetails.subject:find("CN=a.example.com", 1, true), "certificateDetails.subject")
  T.eq(d.subjectAlternativeNames[1], "a.example.com", "SANs")
  for _, k in ipairs({ "orderNumber", "backendCertId", "vendor", "term", "owner", "requester", "keyAlgorithm",
    "keySize", "signatureAlg", "validationType", "requestedVia" }) do
    T.ok(d[k] ~= nil, "member " .. k)
  end
end)

T.test("details: dates are MM/dd/yyyy by default", function()
  local d = T.decode(T.sc("GET", "/api/ssl/v1/101"))
  T.eq(d.issued, "05/21/2025", "issued")
  T.eq(d.expires, "05/21/2026", "expires")
  T.eq(d.requested, "05/20/2025", "requested")
  local rv = T.decode(T.sc("GET", "/api/ssl/v1/103"))
  T.eq(rv.revoked, "04/01/2024", "revoked")
end)

T.test("details: dateFormat names (any case) and patterns", function()
  local cases = { ISO = "2026-05-21", iso = "2026-05-21", EU = "21.05.2026", uk = "21/05/2026",
    JP = "2026/05/21", US = "05/21/2026", ISO_HMS = "2026-05-21T00:00:00.000Z",
    EU_HMS = "21.05.2026 00:00:00", ["dd.MM.yyyy"] = "21.05.2026", ["yyyy-MM-dd"] = "2026-05-21" }
  for fmt, want in pairs(cases) do
    local d = T.decode(T.sc("GET", "/api/ssl/v1/101?dateFormat=" .. fmt))
    T.eq(d.expires, want, "dateFormat=" .. fmt)
  end
  T.eq(T.decode(T.sc("GET", "/api/ssl/v1/101")).expires, "05/21/2026", "default unchanged after a custom format")
  T.sc_error(T.sc("GET", "/api/ssl/v1/101?dateFormat=qqqq"), 400, -1601, "bad dateFormat")
end)

T.test("details: inactive custom fields' values are omitted", function()
  local d = T.decode(T.sc("GET", "/api/ssl/v1/101"))
  local names = {}
  for _, f in ipairs(d.customFields) do names[f.name] = f.value end
  T.eq(names["Cost Center"], "CC-1", "active value")
  T.eq(names["App/Service"], "CRM", "slash name")
  T.eq(names["Legacy"], nil, "inactive value hidden")
end)

T.test("details: Applied certificates carry an empty or no serial", function()
  T.eq(T.decode(T.sc("GET", "/api/ssl/v1/104")).serialNumber, "", "empty serial")
  local e = T.decode(T.sc("GET", "/api/ssl/v1/105"))
  T.eq(e.serialNumber, nil, "missing serial")
  T.eq(e.status, "Applied", "status")
end)

T.test("details: unknown id is 404, junk id is 400", function()
  T.sc_error(T.sc("GET", "/api/ssl/v1/999999"), 404, -5101, "unknown id")
  T.sc_error(T.sc("GET", "/api/ssl/v1/abc"), 400, -124, "junk id")
  T.sc_error(T.sc("GET", "/api/ssl/v1/" .. string.rep("9", 40)), 400, -124, "huge id")
  T.sc_error(T.request("GET", T.S .. "/api/ssl/v1/101", {}), 401, -16, "no auth")
end)

T.test("GET /api/ssl/v1/types", function()
  local t = T.decode(T.sc("GET", "/api/ssl/v1/types"))
  T.eq(#t, 3, "types")
  T.eq(t[3].id, 1040, "id")
  T.eq(t[3].terms[2], 730, "terms")
  T.eq(t[3].keyTypes.EC[1], "P-256", "keyTypes")
  T.eq(t[3].useSecondaryOrgName, false, "useSecondaryOrgName")
  T.eq(t[1].description, "OV", "description")
end)

T.test("GET /api/customField/v2 with certType compared case-insensitively", function()
  local all = T.decode(T.sc("GET", "/api/customField/v2"))
  T.eq(#all, 8, "all fields")
  local ssl = T.decode(T.sc("GET", "/api/customField/v2?certType=SSL"))
  T.eq(#ssl, 7, "SSL fields")
  T.eq(#T.decode(T.sc("GET", "/api/customField/v2/?certType=ssl")), 7, "lowercase, trailing slash")
  T.eq(#T.decode(T.sc("GET", "/api/customField/v2?certType=Device")), 1, "device")
  local opt = T.find(ssl, "name", "App/Service")
  T.eq(opt.id, 302, "id")
  T.eq(opt.certType, "ssl", "certType")
  T.eq(opt.state, "ACTIVE", "state")
  T.eq(opt.input.type, "TEXT_OPTION", "input.type")
  T.eq(opt.input.options[2], "CRM", "options")
  T.ok(type(opt.mandatories) == "table", "mandatories array")
  T.eq(T.find(ssl, "name", "Legacy").state, "INACTIVE", "inactive state")
  local types = {}
  for _, f in ipairs(ssl) do types[f.input.type] = true end
  for _, ty in ipairs({ "TEXT_SINGLE_LINE", "TEXT_MULTI_LINE", "EMAIL", "NUMBER", "TEXT_OPTION", "DATE" }) do
    T.ok(types[ty], "input type " .. ty)
  end
end)

T.test("POST /api/report/v1/ssl-certificates carries custom fields", function()
  local r = T.sc("POST", "/api/report/v1/ssl-certificates", { certificateStatus = "0" })
  T.eq(r.status, 200, "status")
  local rep = T.decode(r)
  T.eq(rep.statusCode, 0, "statusCode")
  T.eq(#rep.reports, 6, "rows")
  local a = T.find(rep.reports, "id", 101)
  T.eq(a.typeId, 1018, "typeId")
  T.eq(a.status, "Issued", "status")
  T.eq(a.commonName, "a.example.com", "commonName")
  T.eq(a.serialNumber, "A1B2C3D", "hex serial, leading zeros stripped")
  T.eq(#a.customFields, 2, "active custom fields only")
  T.eq(a.customFields[1].name, "Cost Center", "custom field name")
  r = T.sc("POST", "/api/report/v1/ssl-certificates", { certificateStatus = 2, serialNumberFormat = "HEXWithLeadingZeros" })
  rep = T.decode(r)
  T.eq(#rep.reports, 2, "issued only")
  T.eq(T.find(rep.reports, "id", 102).serialNumber, "00FFEEDDCC", "leading zeros kept")
  rep = T.decode(T.sc("POST", "/api/report/v1/ssl-certificates",
    { certificateDateAttribute = "3", from = "2025-12-01", to = "2026-12-31" }))
  T.eq(#rep.reports, 2, "expiring in range")
  T.sc_error(T.sc("POST", "/api/report/v1/ssl-certificates", "{not json"), 400, -1002, "malformed")
  T.sc_error(T.sc("POST", "/api/report/v1/ssl-certificates", { certificateStatus = "9" }), 400, -1601, "bad status")
end)

T.done()
