-- The /__sim/ control API and the deterministic generator.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

T.test("generated world (--certs 300 --seed 7) has the documented variety", function()
  local st = T.decode(T.ctl("GET", "state"))
  local s, k = st.sectigo, st.keyfactor
  T.eq(#s.certificates, 300, "certs")
  T.ok(#s.types >= 3, "types")
  local types, statuses, empty_serial, inputs, inactive, names = {}, {}, 0, {}, 0, {}
  for _, c in ipairs(s.certificates) do
    types[c.sslTypeId] = true
    statuses[c.status] = (statuses[c.status] or 0) + 1
    if c.status == "Applied" and (c.serialNumber == nil or c.serialNumber == "") then empty_serial = empty_serial + 1 end
  end
  local nt = 0
  for _ in pairs(types) do nt = nt + 1 end
  T.ok(nt >= 3, "spread over 3 sslTypeIds")
  T.ok(statuses.Issued > 150 and statuses.Revoked > 0 and statuses.Expired > 0 and statuses.Applied > 0, "statuses")
  T.ok(empty_serial > 0, "Applied without serial")
  for _, f in ipairs(s.customFields) do
    inputs[f.input.type] = true
    names[f.name] = true
    if f.state == "INACTIVE" then inactive = inactive + 1 end
  end
  for _, t in ipairs({ "TEXT_SINGLE_LINE", "TEXT_MULTI_LINE", "EMAIL", "NUMBER", "TEXT_OPTION", "DATE" }) do
    T.ok(inputs[t], "input type " .. t)
  end
  T.eq(inactive, 1, "one inactive field")
  T.ok(names["Cost Center"] and names["App/Service"], "names with spaces and slashes")
  local norm = function(x) return (x or ""):gsub("[:%s]", ""):upper():gsub("^0+", "") end
  local sc_serials = {}
  for _, c in ipairs(s.certificates) do if norm(c.serialNumber) ~= "" then sc_serials[norm(c.serialNumber)] = c end end
  local known, unknown_sectigo, other, collide, with_md = 0, 0, 0, 0, 0
  for _, c in ipairs(k.certificates) do
    T.eq(#c.SerialNumber, 32, "zero-padded serial")
    local hit = sc_serials[norm(c.SerialNumber)]
    if c.IssuerDN:find("Sectigo", 1, true) then
      if hit then known = known + 1 else unknown_sectigo = unknown_sectigo + 1 end
    else
      other = other + 1
      if hit then collide = collide + 1 end
    end
    if next(c.Metadata) then with_md = with_md + 1 end
  end
  local issued = 0
  for _ in pairs(sc_serials) do issued = issued + 1 end
  T.ok(known >= issued * 0.8, "inventory holds most Sectigo certs")
  T.ok(unknown_sectigo > 0 and other > 0 and collide > 0 and with_md > 0, "unknowns, other issuers, collisions, metadata")
  T.ok(#k.metadataFields > 0 and #k.metadataFields < #s.customFields, "some metadata fields defined, not all")
end)

T.test("reset with certs/seed is deterministic", function()
  local a = T.ctl("POST", "reset", { certs = 40, seed = 11 })
  T.eq(a.status, 200, "reset")
  T.eq(T.decode(a).sectigo_certificates, 40, "count")
  local function canon(s) return T.json.encode(T.json.decode(s), { sort_keys = true }) end
  local s1 = canon(T.ctl("GET", "state").body)
  T.ctl("POST", "reset", { certs = 40, seed = 12 })
  local s2 = canon(T.ctl("GET", "state").body)
  T.ctl("POST", "reset", { certs = 40, seed = 11 })
  local s3 = canon(T.ctl("GET", "state").body)
  T.ok(s1 ~= s2, "another seed differs")
  T.eq(s3, s1, "same seed, same world")
  T.eq(T.decode(T.ctl("POST", "reset", "")).sectigo_certificates, 300, "empty body: startup options")
end)

T.test("reset with a world; bad worlds are refused with a clear message", function()
  T.eq(T.world("basic.json").sectigo_certificates, 6, "fixture loaded")
  local r = T.ctl("POST", "reset", { sectigo = { certificates = { { id = 1, status = "Bogus" } } } })
  T.eq(r.status, 400, "bad status")
  T.ok(T.decode(r).error:find("sectigo.certificates[1].status", 1, true), "error names the path")
  r = T.ctl("POST", "reset", { keyfactor = { metadataFields = { { Name = "A", DataType = 2 } },
    certificates = { { Id = 1, SerialNumber = "01", Metadata = { A = "x" } } } } })
  T.eq(r.status, 400, "bad metadata value")
  T.eq(T.ctl("POST", "reset", { certs = -1 }).status, 400, "bad certs")
  T.eq(T.ctl("POST", "reset", "[").status, 400, "malformed")
  T.eq(#T.decode(T.ctl("GET", "state")).sectigo.certificates, 6, "world unchanged after refusals")
end)

T.test("state round-trips through reset", function()
  local function canon(s) return T.json.encode(T.json.decode(s), { sort_keys = true }) end
  local before = T.ctl("GET", "state").body
  T.eq(T.ctl("POST", "reset", before).status, 200, "reload dump")
  T.eq(canon(T.ctl("GET", "state").body), canon(before), "identical")
end)

T.test("stats: counts per endpoint and method, writes, max in flight", function()
  T.eq(T.ctl("DELETE", "stats").status, 204, "reset stats")
  T.sc("GET", "/api/ssl/v1")
  T.sc("HEAD", "/api/ssl/v1")
  T.sc("GET", "/api/ssl/v1/101")
  T.sc("GET", "/api/ssl/v1/101")
  T.kf("PUT", "/Certificates/Metadata", { Id = 1, Metadata = { CostCenter = "X" } })
  local s = T.decode(T.ctl("GET", "stats"))
  T.eq(s.requests["sectigo.list"].GET, 1, "list GET")
  T.eq(s.requests["sectigo.list"].HEAD, 1, "list HEAD")
  T.eq(s.requests["sectigo.details"].GET, 2, "details")
  T.eq(s.requests["keyfactor.metadata"].PUT, 1, "metadata PUT")
  T.eq(s.total, 5, "total")
  T.eq(s.writes, 1, "writes")
  T.eq(s.statuses["204"], 1, "statuses")
  T.ok(math.type(s.max_inflight) == "integer" and s.max_inflight >= 1, "max_inflight")
  T.eq(T.request("GET", T.KBASE .. "/__sim/stats").status, 200, "control API on the Keyfactor port too")
  T.eq(T.ctl("GET", "nope").status, 404, "unknown control path")
end)

T.done()
