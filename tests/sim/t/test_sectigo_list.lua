-- GET/HEAD /api/ssl/v1: auth, paging, filters, X-Total-Count, item shape, bad parameters.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

T.test("wrong credentials get 401 -16 Unknown user", function()
  local r = T.request("GET", T.S .. "/api/ssl/v1", { login = "sim-admin", password = "nope", customerUri = "sim-customer" })
  local b = T.sc_error(r, 401, -16)
  T.eq(b.description, "Unknown user", "description")
  T.sc_error(T.request("GET", T.S .. "/api/ssl/v1", {}), 401, -16, "no headers")
end)

T.test("generated world: default page, X-Total-Count, size capped at 200", function()
  local r = T.sc("GET", "/api/ssl/v1")
  T.eq(r.status, 200, "status")
  T.eq(r.headers["x-total-count"], "300", "X-Total-Count")
  T.eq(#T.decode(r), 10, "default size")
  r = T.sc("GET", "/api/ssl/v1?size=500&position=0")
  T.eq(#T.decode(r), 200, "size capped")
  r = T.sc("GET", "/api/ssl/v1?size=200&position=200")
  T.eq(#T.decode(r), 100, "last page")
end)

T.test("paging walks every certificate exactly once", function()
  local seen, pos = {}, 0
  while true do
    local page = T.decode(T.sc("GET", "/api/ssl/v1?size=64&position=" .. pos))
    for _, it in ipairs(page) do
      T.ok(not seen[it.sslId], "duplicate " .. it.sslId)
      seen[it.sslId] = true
    end
    if #page < 64 then break end
    pos = pos + 64
  end
  local n = 0
  for _ in pairs(seen) do n = n + 1 end
  T.eq(n, 300, "certificates seen")
end)

T.test("position past the end returns [] with the total", function()
  local r = T.sc("GET", "/api/ssl/v1?position=100000&size=10")
  T.eq(r.status, 200, "status")
  T.eq(r.body, "[]", "body")
  T.eq(r.headers["x-total-count"], "300", "total")
end)

T.test("HEAD returns only X-Total-Count, honouring filters", function()
  local r = T.sc("HEAD", "/api/ssl/v1?status=Issued")
  T.eq(r.status, 200, "status")
  T.eq(r.body, "", "empty body")
  local issued = tonumber(r.headers["x-total-count"])
  T.ok(issued and issued > 100 and issued < 300, "most certificates are Issued")
end)

T.world("basic.json")

T.test("items: sslId, commonName, subjectAlternativeNames, colon serial; empty members left out", function()
  local items = T.decode(T.sc("GET", "/api/ssl/v1?size=50"))
  T.eq(#items, 6, "items")
  local a = T.find(items, "sslId", 101)
  T.eq(a.commonName, "a.example.com", "commonName")
  T.eq(a.serialNumber, "0A:1B:2C:3D", "serial")
  T.eq(a.subjectAlternativeNames[1], "a.example.com", "SAN")
  local d = T.find(items, "sslId", 104)
  T.eq(d.serialNumber, nil, "empty serial left out")
  T.eq(d.subjectAlternativeNames, nil, "empty SAN list left out")
  for k in pairs(a) do
    T.ok(k == "sslId" or k == "commonName" or k == "subjectAlternativeNames" or k == "serialNumber", "unexpected member " .. k)
  end
end)

T.test("filters: sslTypeId, status, commonName, serialNumber (normalised)", function()
  local function ids(q)
    local r = T.sc("GET", "/api/ssl/v1?size=50&" .. q)
    T.eq(r.status, 200, q)
    local out = {}
    for _, it in ipairs(T.decode(r)) do out[#out + 1] = it.sslId end
    T.eq(r.headers["x-total-count"], tostring(#out), q .. " total")
    return table.concat(out, ",")
  end
  T.eq(ids("sslTypeId=1018"), "101,104,105,106", "sslTypeId")
  T.eq(ids("status=Applied"), "104,105", "status")
  T.eq(ids("status=revoked"), "103", "status any case")
  T.eq(ids("commonName=B.EXAMPLE.COM"), "102", "commonName")
  T.eq(ids("serialNumber=a1b2c3d"), "101", "serial without leading zero")
  T.eq(ids("serialNumber=00%3A0A%3A1B%3A2C%3A3D"), "101", "colon serial with zero byte")
  T.eq(ids("serialNumber=00ffeeddcc"), "102", "lowercase serial")
  T.eq(ids("serialNumber=DEADBEEF"), "", "no match")
  T.eq(ids("sslTypeId=1018&status=Expired"), "106", "combined")
end)

T.test("list serial format can be switched to plain hex", function()
  T.eq(T.ctl("POST", "settings", { sectigoListSerialFormat = "plain" }).status, 200, "settings")
  local items = T.decode(T.sc("GET", "/api/ssl/v1?serialNumber=0A1B2C3D"))
  T.eq(items[1].serialNumber, "0A1B2C3D", "plain serial")
  T.eq(T.decode(T.sc("GET", "/api/ssl/v1/101")).serialNumber, "0A:1B:2C:3D", "details keep colons")
  T.ctl("POST", "settings", { sectigoListSerialFormat = "colon" })
  T.eq(T.ctl("POST", "settings", { sectigoListSerialFormat = "dashes" }).status, 400, "bad setting")
end)

T.test("absurd parameters get 400 with a Sectigo error body", function()
  for _, q in ipairs({ "size=-1", "position=1e99", "position=-5", "size=abc", "sslTypeId=x1",
    "status=Bogus", "position=99999999999999999999", "size=" .. string.rep("9", 5000) }) do
    local r = T.sc("GET", "/api/ssl/v1?" .. q)
    local b = T.sc_error(r, 400, -1601, q)
    T.ok(b.description:find("invalid value", 1, true), q .. " description")
  end
end)

T.test("an OAuth bearer token from /oauth/token is accepted", function()
  local r = T.request("POST", T.S .. "/oauth/token", { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=client_credentials&client_id=sim-client&client_secret=sim-secret")
  T.eq(r.status, 200, "token status")
  local tok = T.decode(r)
  T.eq(tok.token_type, "Bearer", "token_type")
  T.ok(math.type(tok.expires_in) == "integer" and tok.expires_in > 0, "expires_in")
  r = T.request("GET", T.S .. "/api/ssl/v1", { Authorization = "Bearer " .. tok.access_token })
  T.eq(r.status, 200, "bearer accepted")
  r = T.request("GET", T.S .. "/api/ssl/v1", { Authorization = "Bearer forged" })
  T.sc_error(r, 401, -16, "forged token")
  T.ok(r.headers["www-authenticate"], "WWW-Authenticate on a bearer 401")
  r = T.request("POST", T.S .. "/oauth/token", { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=client_credentials&client_id=sim-client&client_secret=wrong")
  T.eq(r.status, 401, "bad client secret")
  T.eq(T.decode(r).error, "invalid_client", "oauth error")
  r = T.request("POST", T.S .. "/oauth/token", {}, "grant_type=password")
  T.eq(r.status, 400, "unsupported grant")
end)

T.done()
