-- What metasync actually sends, read from the simulator's request journal (/__sim/requests):
-- the complete merged custom-field list on kftosc (checked against a Sectigo that replaces the
-- stored list), the status / revoked / expired filters, the issuer DN term, sslTypeIds, one
-- cached OAuth token per API per run with scope and audience, and a second run that only reads.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

local function journal()
  local j = H.call("GET", H.sectigo .. "/__sim/requests")
  -- The journal keeps the newest 2000: a run that made more would be judged on a part of it.
  assert(#j < 2000, "journal overflowed: " .. #j .. " entries")
  return j
end
local function clear_journal() H.call("DELETE", H.sectigo .. "/__sim/requests") end

local function pick(j, endpoint)
  local out = {}
  for _, e in ipairs(j) do if e.endpoint == endpoint then out[#out + 1] = e end end
  return out
end

-- Query parameter values by name, case-insensitively and with or without the v10 "pq." prefix
-- (the simulator, like Keyfactor, binds them that way).
local function arg_values(e, name)
  local out = {}
  for k, v in pairs(e.args) do
    if k:lower():gsub("^pq%.", "") == name:lower() then
      if type(v) == "table" then for _, x in ipairs(v) do out[#out + 1] = x end else out[#out + 1] = v end
    end
  end
  return out
end
-- arg1(e, name) -> the one value sent for name. Keyfactor parameters go in both spellings
-- (v25 and the v10 "pq." form), once each, and must agree.
local function arg1(e, name)
  local v = arg_values(e, name)
  local where = e.method .. " " .. e.path .. "?" .. e.query .. ": " .. name
  assert(#v <= 2, where .. " sent " .. #v .. " times")
  if #v == 2 then
    assert(v[1] == v[2], where .. " sent as both '" .. tostring(v[1]) .. "' and '" .. tostring(v[2]) .. "'")
    local plain, prefixed = 0, 0
    for k in pairs(e.args) do
      if k:lower() == name:lower() then plain = plain + 1 elseif k:lower() == "pq." .. name:lower() then prefixed = prefixed + 1 end
    end
    assert(plain == 1 and prefixed == 1, where .. ": twice in one spelling")
  end
  return v[1]
end

local function run(dir, command, what, env)
  clear_journal()
  local rc, out, err = H.run(dir, command, "", env)
  H.eq(rc, 0, what .. " exit code: " .. out .. err)
  return journal()
end

local function show(e) return e.method .. " " .. e.path .. (e.query ~= "" and "?" .. e.query or "") end

------------------------------------------------------------------------------------------------
-- a. kftosc sends the complete merged list, even fields it does not map; comments untouched
------------------------------------------------------------------------------------------------
local w = H.world()
w.settings.sectigoCustomFieldsPut = "replace"
local c5001 = w.sectigo.certificates[1]
table.insert(c5001.customFields, { name = "Notes", value = "not in fields.json" })
table.insert(c5001.customFields, { name = "Owner Email", value = "ops@acme.test" })
w.keyfactor.certificates[1].Metadata = { CostCenter = "CC-NEW", Environment = "Production" }
w.keyfactor.certificates[2].Metadata = {}
H.reset(w)
local j = run(H.config_dir(), "kftosc", "kftosc")
local sc = H.sc_cert(H.state(), 5001)
local want = { ["Cost Center"] = "CC-NEW", Environment = "Production", ["Renewal Date"] = "2025-07-23",
  ["Budget Code"] = "42", Notes = "not in fields.json", ["Owner Email"] = "ops@acme.test" }
for name, v in pairs(want) do H.eq(H.cf(sc, name), v, "5001 " .. name .. " after kftosc (state)") end
H.eq(sc.comments, "keep me", "comments of 5001")
local puts = pick(j, "sectigo.update")
H.eq(#puts, 1, "Sectigo PUTs (only 5001 changed)")
local body = json.decode(puts[1].body)
H.eq(body.sslId, 5001, "PUT sslId")
local sent = {}
for _, f in ipairs(body.customFields or {}) do
  assert(sent[f.name] == nil, "field sent twice: " .. tostring(f.name))
  sent[f.name] = f.value
end
for name, v in pairs(want) do H.eq(sent[name], v, "PUT body field " .. name) end
for name in pairs(sent) do assert(want[name], "PUT body holds an unexpected field " .. name) end
assert(body.comments == nil or body.comments == "keep me", "PUT body changes comments: " .. tostring(body.comments))

------------------------------------------------------------------------------------------------
-- b. syncRevokedAndExpiredCerts: the filters sent to each API
------------------------------------------------------------------------------------------------
local function check_filters(jr, all, what)
  local lists, kfs = pick(jr, "sectigo.list"), pick(jr, "keyfactor.certificates")
  assert(#lists > 0 and #kfs > 0, what .. ": both inventories listed")
  for _, e in ipairs(lists) do
    if all then
      H.eq(arg1(e, "status"), nil, what .. ": no status filter in " .. show(e))
    else
      H.eq(arg1(e, "status"), "Issued", what .. ": status=Issued in " .. show(e))
    end
  end
  for _, e in ipairs(kfs) do
    for _, flag in ipairs({ "IncludeRevoked", "IncludeExpired" }) do
      local v = arg1(e, flag)
      if all then
        H.eq(v and v:lower(), "true", what .. ": " .. flag .. " in " .. show(e))
      else
        assert(v == nil or v:lower() == "false", what .. ": " .. flag .. "=" .. tostring(v) .. " in " .. show(e))
      end
    end
  end
end

H.reset(H.world())
local dir = H.config_dir()
check_filters(run(dir, "sctokf", "sctokf, current only"), false, "sctokf, current only")
check_filters(run(dir, "kftosc", "kftosc, current only"), false, "kftosc, current only")
H.reset(H.world())
check_filters(run(H.config_dir({ syncRevokedAndExpiredCerts = "true" }), "sctokf", "sctokf, all"), true, "sctokf, all")

------------------------------------------------------------------------------------------------
-- c. issuerDNLookupTerm goes into the Keyfactor query
------------------------------------------------------------------------------------------------
H.reset(H.world())
j = run(H.config_dir({ issuerDNLookupTerm = "Sectigo RSA Organization" }), "sctokf", "issuer term")
local kfs = pick(j, "keyfactor.certificates")
assert(#kfs > 0, "Keyfactor queried")
for _, e in ipairs(kfs) do
  local q = arg1(e, "QueryString") or ""
  assert(q:find('IssuerDN -contains "Sectigo RSA Organization"', 1, true), "query in " .. show(e) .. ": " .. q)
end

------------------------------------------------------------------------------------------------
-- d. sslTypeIds: exactly those profiles are listed
------------------------------------------------------------------------------------------------
H.reset(H.world())
j = run(H.config_dir({ sslTypeIds = json.array { 1018, 1019 } }), "sctokf", "sslTypeIds")
local seen = {}
local lists = pick(j, "sectigo.list")
for _, e in ipairs(lists) do
  local ids = arg_values(e, "sslTypeId")
  assert(#ids > 0, "a listing without sslTypeId lists every profile: " .. show(e))
  for _, id in ipairs(ids) do
    assert(id == "1018" or id == "1019", "unexpected sslTypeId " .. id .. " in " .. show(e))
    seen[id] = true
  end
end
assert(seen["1018"] and seen["1019"], "both profiles listed")

------------------------------------------------------------------------------------------------
-- e. OAuth on both APIs: one token request per API per run; scope and audience sent
-- f. a second run over an unchanged world only reads (token POSTs aside)
------------------------------------------------------------------------------------------------
local function only_reads(jr, what)
  local n = 0
  for _, e in ipairs(jr) do
    n = n + 1
    local token = e.endpoint == "sectigo.token" or e.endpoint == "keyfactor.token"
    assert(e.method == "GET" or e.method == "HEAD" or (token and e.method == "POST"),
      what .. ": a write on an unchanged world: " .. show(e) .. " " .. tostring(e.body):sub(1, 300))
  end
  assert(n > 0, what .. ": requests made")
end

H.reset(H.world())
dir = H.config_dir()
run(dir, "sctokf", "first sctokf")
only_reads(run(dir, "sctokf", "second sctokf"), "second sctokf")

local kf_root = H.keyfactor:match("^(https?://[^/]+)")
H.reset(H.world())
dir = H.config_dir({
  sectigoLogin = json.null, sectigoPassword = json.null,
  sectigoOAuth = { tokenUrl = H.sectigo .. "/oauth/token", clientId = "sim-client", clientSecret = "sim-secret" },
  keyfactorLogin = json.null, keyfactorPassword = json.null,
  keyfactorOAuth = { tokenUrl = kf_root .. "/oauth/token", clientId = "sim-client", clientSecret = "sim-secret",
    scopesCsv = "a,b", audience = "aud" },
})
local function check_oauth(jr, what)
  local st, kt = pick(jr, "sectigo.token"), pick(jr, "keyfactor.token")
  H.eq(#st, 1, what .. ": Sectigo token requests")
  H.eq(#kt, 1, what .. ": Keyfactor token requests")
  local form = kt[1].form or {}
  H.eq(form.grant_type, "client_credentials", what .. ": Keyfactor grant_type")
  H.eq(form.client_id, "sim-client", what .. ": Keyfactor client_id")
  local scopes = {}
  for s in (form.scope or ""):gmatch("%S+") do scopes[#scopes + 1] = s end
  H.eq(table.concat(scopes, " "), "a b", what .. ": Keyfactor scope (space-separated)")
  H.eq(form.audience, "aud", what .. ": Keyfactor audience")
  H.eq(st[1].form and st[1].form.scope, nil, what .. ": no scope configured for Sectigo")
  for _, e in ipairs(jr) do
    if e.endpoint ~= "sectigo.token" and e.endpoint ~= "keyfactor.token" then
      H.eq(e.auth, "bearer", what .. ": bearer auth on " .. show(e))
      assert(e.status ~= 401, what .. ": refused " .. show(e))
    end
  end
end
j = run(dir, "sctokf", "OAuth sctokf")
assert(#j > 10, "OAuth run made requests: " .. #j)
check_oauth(j, "OAuth sctokf")
j = run(dir, "sctokf", "second OAuth sctokf")
check_oauth(j, "second OAuth sctokf")
only_reads(j, "second OAuth sctokf")
print("ok")
