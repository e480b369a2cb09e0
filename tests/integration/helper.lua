-- Shared plumbing for the end-to-end tests: a known world loaded into metasync-sim, a config
-- directory written from the simulator's URLs, and metasync run as a child process.
local http = require("metasync.http")
local json = require("metasync.json")

local H = {}

H.metasync = assert(arg and arg[1], "usage: metasync run test.lua METASYNC_BINARY")
H.sectigo = assert(os.getenv("METASYNC_SIM_SECTIGO"), "run under tests/with-sim.sh")
H.keyfactor = assert(os.getenv("METASYNC_SIM_KEYFACTOR"), "run under tests/with-sim.sh")
H.here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."
H.source_root = H.here .. "/../.."

local function call(method, url, body)
  local r, err = http.request { method = method, url = url, body = body and json.encode(body),
    headers = body and { ["Content-Type"] = "application/json" } or nil }
  assert(r, err)
  assert(r.status < 300, method .. " " .. url .. " -> " .. r.status .. " " .. tostring(r.body))
  return (r.body ~= "" and json.decode(r.body)) or nil
end
H.call = call

function H.reset(world) return call("POST", H.sectigo .. "/__sim/reset", world or {}) end
function H.state() return call("GET", H.sectigo .. "/__sim/state") end
function H.stats() return call("GET", H.sectigo .. "/__sim/stats") end
function H.clear_stats() call("DELETE", H.sectigo .. "/__sim/stats") end
function H.faults(doc) return call("POST", H.sectigo .. "/__sim/faults", doc) end

function H.sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Every directory made here is removed when the test's Lua state closes (at exit, also after
-- a failed assertion).
local made = setmetatable({}, { __gc = function(t)
  for _, p in ipairs(t) do os.execute("rm -rf " .. H.sh_quote(p)) end
end })
H.tmpdirs = made

function H.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. H.sh_quote(p)))
  made[#made + 1] = p
  return p
end

function H.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

function H.read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The world every test starts from (tests change copies of it).
function H.world()
  local sectigo_issuer = "CN=Sectigo RSA Organization Validation Secure Server CA, O=Sectigo Limited, C=GB"
  return {
    settings = { sectigoListSerialFormat = "colon" },
    sectigo = {
      types = { { id = 1018, name = "OV SSL" }, { id = 1019, name = "EV SSL" } },
      customFields = {
        { id = 201, name = "Cost Center", input = { type = "TEXT_SINGLE_LINE" } },
        { id = 202, name = "Environment", input = { type = "TEXT_OPTION", options = { "Production", "Staging", "Development" } } },
        { id = 203, name = "Renewal Date", input = { type = "DATE" } },
        { id = 204, name = "Budget Code", input = { type = "NUMBER" } },
        { id = 205, name = "Notes", input = { type = "TEXT_MULTI_LINE" } },
        { id = 206, name = "Owner Email", input = { type = "EMAIL" } },
        { id = 207, name = "Legacy Code", state = "INACTIVE", input = { type = "TEXT_SINGLE_LINE" } },
      },
      certificates = {
        { id = 5001, commonName = "www.acme.test", sslTypeId = 1018, status = "Issued", serialNumber = "0A:11:22:33",
          issued = "2025-01-01", expires = "2099-01-01", comments = "keep me",
          customFields = { { name = "Cost Center", value = "CC-1" }, { name = "Environment", value = "Production" },
            { name = "Renewal Date", value = "2025-07-23" }, { name = "Budget Code", value = "42" } } },
        { id = 5002, commonName = "api.acme.test", sslTypeId = 1019, status = "Issued", serialNumber = "0B:44:55:66",
          issued = "2025-01-01", expires = "2099-01-01", customFields = { { name = "Cost Center", value = "CC-2" } } },
        { id = 5003, commonName = "old.acme.test", sslTypeId = 1018, status = "Revoked", serialNumber = "0C:77:88:99",
          issued = "2025-01-01", expires = "2099-01-01", revoked = "2025-02-01",
          customFields = { { name = "Cost Center", value = "CC-3" } } },
        { id = 5004, commonName = "dup.acme.test", sslTypeId = 1018, status = "Issued", serialNumber = "0D:AA:BB:CC",
          issued = "2025-01-01", expires = "2099-01-01", customFields = { { name = "Cost Center", value = "CC-4" } } },
        { id = 5005, commonName = "pending.acme.test", sslTypeId = 1018, status = "Requested" },
      },
    },
    keyfactor = {
      metadataFields = {
        { Id = 1, Name = "CostCenter", Description = "outdated description", DataType = 1, DisplayOrder = 1 },
        { Id = 2, Name = "Environment", Description = "Deployment environment", DataType = 5,
          Options = "Production,Staging,Development", DisplayOrder = 2 },
      },
      certificates = {
        { Id = 1, SerialNumber = "000A112233", IssuedCN = "www.acme.test", IssuerDN = sectigo_issuer,
          NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z", Metadata = { CostCenter = "old" } },
        { Id = 2, SerialNumber = "0B445566", IssuedCN = "api.acme.test", IssuerDN = sectigo_issuer,
          NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z", Metadata = { Environment = "Staging" } },
        { Id = 3, SerialNumber = "0C778899", IssuedCN = "old.acme.test", IssuerDN = sectigo_issuer, CertState = 2,
          NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z" },
        { Id = 4, SerialNumber = "0DAABBCC", IssuedCN = "dup.digicert.test", IssuerDN = "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US",
          NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z" },
        { Id = 6, SerialNumber = "FFFF0001", IssuedCN = "stray.acme.test", IssuerDN = sectigo_issuer,
          NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z" },
      },
    },
  }
end

local function field(sc, kf, dt, extra)
  local f = { sectigoFieldName = sc, keyfactorMetadataFieldName = kf, keyfactorDescription = kf,
    keyfactorDataType = dt, keyfactorHint = "", keyfactorValidation = json.null, keyfactorEnrollment = 0,
    keyfactorMessage = json.null, keyfactorOptions = json.null, keyfactorDefaultValue = json.null,
    keyfactorDisplayOrder = 0, keyfactorCaseSensitive = false }
  for k, v in pairs(extra or {}) do f[k] = v end
  return f
end
H.field = field

function H.fields()
  return {
    ManualFields = {
      field("id", "SectigoID", 2), field("certType.id", "SectigoCertTypeID", 2),
      field("status", "SectigoStatus", 1), field("renewed", "SectigoRenewed", 4),
    },
    CustomFields = {
      field("Cost Center", "CostCenter", 1, { keyfactorDescription = "Cost center charged" }),
      field("Environment", "Environment", 5, { keyfactorDescription = "Deployment environment",
        keyfactorOptions = { "Production", "Staging", "Development" } }),
      field("Renewal Date", "RenewalDate", 3), field("Budget Code", "BudgetCode", 2),
    },
  }
end

-- config_dir(overrides, fields, banned_text) -> directory holding the three files. It is
-- <home>/config, as the old tool laid it out, so the tool's home (and with it the state file,
-- <home>/state/metasync.db) is the test's own.
function H.config_dir(over, fields, banned)
  local c = { sectigoLogin = "sim-admin", sectigoPassword = "sim-password", sectigoCustomerUri = "sim-customer",
    sectigoAPIUrl = H.sectigo, keyfactorAPIUrl = H.keyfactor, keyfactorLogin = "DOMAIN\\sim-admin",
    keyfactorPassword = "sim-password", importAllCustomFields = "false", syncRevokedAndExpiredCerts = "false",
    issuerDNLookupTerm = "Sectigo", sslTypeIds = json.array(), sectigoPageSize = 2, keyfactorPageSize = 2 }
  for k, v in pairs(over or {}) do c[k] = v end
  local d = H.tmpdir() .. "/config"
  assert(os.execute("mkdir -p " .. H.sh_quote(d)))
  H.write(d .. "/config.json", json.encode({ Config = c }, { pretty = true }))
  os.execute("chmod 600 " .. H.sh_quote(d .. "/config.json")) -- it holds passwords
  H.write(d .. "/fields.json", json.encode(fields or H.fields(), { pretty = true }))
  if banned then H.write(d .. "/bannedcharacters.json", banned) end
  return d
end

-- The logs of a run with config directory dir: <home>/logs/, the home being dir's parent (where
-- the old tool kept its executable and logs/), whatever the working directory.
function H.home(dir) return (dir:gsub("/+$", ""):match("^(.*)/[^/]*$")) end
function H.main_log(dir) return H.home(dir) .. "/logs/MetadataSync.log" end
function H.errors_log(dir) return H.home(dir) .. "/logs/MetadataSync-Errors.log" end

-- run(dir, command, extra, env) -> exit code, stdout, stderr, log text. Runs in dir (not the
-- home), so a log written relative to the working directory would be missed.
function H.run(dir, command, extra, env)
  local out, err = dir .. "/.stdout", dir .. "/.stderr"
  local cmd = string.format("cd %s && %s %s -c %s %s %s >%s 2>%s", H.sh_quote(dir), env or "", H.sh_quote(H.metasync),
    H.sh_quote(dir), extra or "", command, H.sh_quote(out), H.sh_quote(err))
  local _, _, rc = os.execute(cmd)
  local logtext = (H.read(H.main_log(dir)) or "") .. (H.read(H.errors_log(dir)) or "")
  return rc, H.read(out) or "", H.read(err) or "", logtext
end

-- Edits made the way a person would make them: through each API, with the simulator's
-- credentials (what config_dir writes).
local function api(method, url, body, headers)
  headers["Content-Type"] = "application/json"
  local r, err = http.request { method = method, url = url, body = json.encode(body), headers = headers }
  assert(r, err)
  assert(r.status < 300, method .. " " .. url .. " -> " .. r.status .. " " .. tostring(r.body))
end

-- kf_edit(id, {Field = "value" | ""}): "" clears
function H.kf_edit(id, md)
  api("PUT", H.keyfactor .. "/Certificates/Metadata", { Id = id, Metadata = md },
    { Authorization = "Basic " .. require("metasync.keyfactor").base64("DOMAIN\\sim-admin:sim-password"),
      ["x-keyfactor-requested-with"] = "APIClient" })
end

-- sc_edit(sslId, {{name=, value=}, ...}): the fields sent are merged in; value "" clears
function H.sc_edit(id, list)
  api("PUT", H.sectigo .. "/api/ssl/v1", { sslId = id, customFields = list },
    { login = "sim-admin", password = "sim-password", customerUri = "sim-customer" })
end

function H.kf_cert(state, id)
  for _, c in ipairs(state.keyfactor.certificates) do if c.Id == id then return c end end
end
function H.kf_field(state, name)
  for _, f in ipairs(state.keyfactor.metadataFields) do if f.Name == name then return f end end
end
function H.sc_cert(state, id)
  for _, c in ipairs(state.sectigo.certificates) do if c.id == id then return c end end
end
function H.cf(cert, name)
  for _, f in ipairs(cert.customFields or {}) do if f.name == name then return f.value end end
end

function H.eq(got, want, what)
  if got ~= want then
    error(string.format("%s: expected %s, got %s", what or "value", tostring(want), tostring(got)), 2)
  end
end

-- parse_csv(text) -> list of records (lists of strings), per RFC 4180: quoted fields may hold
-- commas, CR, LF and doubled quotes. Written independently of metasync.csv, to read its output.
function H.parse_csv(text)
  local rows, row, i, n = {}, {}, 1, #text
  while i <= n do
    local c = text:sub(i, i)
    local value
    if c == '"' then
      local parts, j = {}, i + 1
      while true do
        local q = text:find('"', j, true)
        assert(q, "unterminated quoted field")
        parts[#parts + 1] = text:sub(j, q - 1)
        if text:sub(q + 1, q + 1) == '"' then parts[#parts + 1] = '"'; j = q + 2
        else i = q + 1; break end
      end
      value = table.concat(parts)
    else
      local e = text:find('[,\r\n]', i) or (n + 1)
      value = text:sub(i, e - 1)
      i = e
    end
    row[#row + 1] = value
    local d = text:sub(i, i)
    if d == "," then i = i + 1
    elseif d == "\r" and text:sub(i + 1, i + 1) == "\n" then rows[#rows + 1] = row; row = {}; i = i + 2
    elseif d == "\n" then rows[#rows + 1] = row; row = {}; i = i + 1
    elseif d == "" then rows[#rows + 1] = row; row = {}
    else error("bad CSV at byte " .. i .. ": " .. d) end
  end
  return rows
end

-- writes(stats) -> total write requests the simulator saw
function H.writes(stats) return stats.writes or 0 end

return H
