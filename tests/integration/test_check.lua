-- `metasync check` against the simulator: with the right credentials every check passes and the
-- output names what it found (the product version, the report endpoint, what it cannot check
-- without writing); with a wrong password, a read it may not do, or a report the configuration
-- relies on but cannot have, it fails with exit 1 and says which. Never a write, a lock, a
-- state file or a log file.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

-- A failed expectation shows the whole output (the host prints an error's first line only).
local function has(text, needle, what)
  if text:find(needle, 1, true) then return end
  io.stderr:write(text, "\n")
  error((what or "output") .. " lacks '" .. needle .. "'", 2)
end
local function lacks(text, needle, what)
  if not text:find(needle, 1, true) then return end
  io.stderr:write(text, "\n")
  error((what or "output") .. " has '" .. needle .. "'", 2)
end
local function exists(p)
  local f = io.open(p, "r")
  if f then f:close() end
  return f ~= nil
end

-- The right credentials: exit 0, each API reached, nothing written anywhere.
H.reset(H.world())
local dir = H.config_dir()
local home = dir:match("^(.*)/config$")
H.clear_stats()
local rc, out, err = H.run(dir, "check")
H.eq(rc, 0, "check with the right credentials: " .. out .. err)
has(out, "ok    configuration ")
has(out, "Sectigo " .. H.sectigo .. ": signed in; custom field definitions readable: 7 (6 active)")
has(out, "Sectigo: certificate list readable: 3 Issued certificate(s)")
has(out, "bulk report (POST /api/report/v1/ssl-certificates, read-only) answers")
has(out, "Keyfactor " .. H.keyfactor .. ": signed in; metadata fields readable: 2")
has(out, "Keyfactor: product version 25.1.0.0")
has(out, "Keyfactor: certificates readable: 3 whose issuer DN contains 'Sectigo'")
has(out, "not created yet")
has(out, "not checked, as it takes a write")
has(out, "PUT /api/ssl/v1")
has(out, "PUT /Certificates/Metadata")
has(out, "metasync check: no check failed")
lacks(out .. err, "sim-password", "output (a secret)")
local stats = H.stats()
H.eq(H.writes(stats), 0, "writes by check")
local function hits(api, method)
  local e = stats.requests[api]
  return e and e[method] or 0
end
H.eq(hits("sectigo.customfields", "GET"), 1, "Sectigo custom field reads")
H.eq(hits("sectigo.list", "GET"), 1, "Sectigo list reads (one page of one)")
H.eq(hits("sectigo.report", "POST"), 1, "Sectigo report POSTs")
H.eq(hits("keyfactor.status", "GET"), 1, "Keyfactor /Status/Endpoints reads")
assert(not exists(home .. "/state/metasync.db"), "check created the state file")
assert(not exists(home .. "/state/metasync.db.lock"), "check took the run lock")
assert(not exists(H.main_log(dir)) and not exists(home .. "/logs"), "check wrote a log file")
-- An importAllCustomFields mapping: "Cost Center" needs its blank replaced (bannedcharacters.json),
-- which the check reports as the run would (exit 1), without writing the file.
local dir2 = H.config_dir({ importAllCustomFields = "true" })
rc, out = H.run(dir2, "check")
H.eq(rc, 1, "check with a name lacking a replacement")
has(out, "FAIL  " .. dir2 .. "/bannedcharacters.json: no replacement for ' ' (U+0020) in 'Cost Center'")
assert(not exists(dir2 .. "/bannedcharacters.json"), "check wrote bannedcharacters.json")

-- The product version is Keyfactor's, as /Status/Endpoints gives it.
H.call("POST", H.sectigo .. "/__sim/settings", { productVersion = "10.4.1.0" })
rc, out = H.run(dir, "check")
H.eq(rc, 0, "check against 10.4.1.0")
has(out, "Keyfactor: product version 10.4.1.0")

-- A wrong Keyfactor password: exit 1, the vendor's words, Sectigo still checked.
H.reset(H.world())
rc, out, err = H.run(dir, "check", "", "METASYNC_KEYFACTOR_PASSWORD=wrong-password")
H.eq(rc, 1, "check with a wrong Keyfactor password")
has(out, "FAIL  Keyfactor " .. H.keyfactor .. ": cannot read the metadata fields (GET /MetadataFields)")
has(out, "HTTP 401")
has(out, "the other checks of Keyfactor were skipped")
has(out, "ok    Sectigo " .. H.sectigo .. ": signed in")
has(out, "metasync check: 1 check(s) failed")
lacks(out .. err, "wrong-password", "output (a secret)")

-- A wrong Sectigo password: exit 1, Keyfactor still checked.
rc, out = H.run(dir, "check", "", "METASYNC_SECTIGO_PASSWORD=wrong-password")
H.eq(rc, 1, "check with a wrong Sectigo password")
has(out, "FAIL  Sectigo " .. H.sectigo .. ": cannot read the custom field definitions")
has(out, "HTTP 401")
has(out, "ok    Keyfactor: product version 25.1.0.0")

-- Signed in, but refused one read (403): that read fails, the others are still tried.
H.reset(H.world())
H.faults({ scripts = { { endpoint = "keyfactor.metadatafields", method = "GET",
  responses = { { status = 403, body = { ErrorCode = "0xA0130001", Message = "User does not have the required permission." } } } } } })
rc, out = H.run(dir, "check")
H.eq(rc, 1, "check refused the metadata fields")
has(out, "FAIL  Keyfactor " .. H.keyfactor .. ": cannot read the metadata fields (GET /MetadataFields)")
has(out, "HTTP 403: User does not have the required permission.")
has(out, "ok    Keyfactor: product version")
has(out, "ok    Keyfactor: certificates readable")

-- /Status/Endpoints not listing a write endpoint for this identity is a warning, not a failure.
H.reset(H.world())
H.faults({ scripts = { { endpoint = "keyfactor.status", responses = { { status = 200,
  body = { "GET /Certificates", "GET /MetadataFields", "PUT /Certificates/Metadata" },
  headers = { ["x-keyfactor-product-version"] = "25.1.0.0" } } } } } })
rc, out = H.run(dir, "check")
H.eq(rc, 0, "check with write endpoints unlisted")
has(out, "warn  Keyfactor: GET /Status/Endpoints does not list POST /MetadataFields, PUT /MetadataFields")
has(out, "no check failed (1 warning(s))")

-- The report: not offered is information while the run does not need it, a failure when
-- sectigoBulkReads is on (a run would stop without it).
H.reset(H.world())
H.call("POST", H.sectigo .. "/__sim/settings", { sectigoReport = "404" })
rc, out = H.run(dir, "check")
H.eq(rc, 0, "check without the report, sectigoBulkReads off")
has(out, "info  Sectigo: the bulk report (POST /api/report/v1/ssl-certificates, read-only) is not offered to this account")
local on = H.config_dir({ sectigoBulkReads = "on" })
rc, out = H.run(on, "check")
H.eq(rc, 1, "check without the report, sectigoBulkReads on")
has(out, "FAIL  Sectigo: the bulk report (POST /api/report/v1/ssl-certificates, read-only) failed")
local auto = H.config_dir({ sectigoBulkReads = "auto" })
rc, out = H.run(auto, "check")
H.eq(rc, 0, "check without the report, sectigoBulkReads auto")
has(out, "sectigoBulkReads auto falls back")

-- An unreachable API fails quickly (a check retries twice, not a run's eight times).
local down = H.config_dir({ keyfactorAPIUrl = "http://127.0.0.1:9/KeyfactorAPI" })
local t0 = os.time()
rc, out = H.run(down, "check")
H.eq(rc, 1, "check with Keyfactor down")
has(out, "FAIL  Keyfactor http://127.0.0.1:9/KeyfactorAPI: cannot read the metadata fields")
assert(os.time() - t0 < 20, "check took too long against a closed port")

-- A configuration error: exit 1, one line naming the key, no request at all.
H.clear_stats()
local bad = H.config_dir({ keyfactorAPIUrl = "ftp://nowhere" })
rc, out = H.run(bad, "check")
H.eq(rc, 1, "check with a bad URL")
has(out, "FAIL  " .. bad .. "/config.json: key 'keyfactorAPIUrl'")
has(out, "the APIs were not tried")
H.eq(H.stats().total or 0, 0, "requests after a configuration error")

-- After a run, the state file's last run is named (and the file is only read).
H.reset(H.world())
rc = H.run(dir, "sctokf")
H.eq(rc, 0, "sctokf before check")
rc, out = H.run(dir, "check")
H.eq(rc, 0, "check after a run")
has(out, "state file " .. home .. "/state/metasync.db: last run ")
has(out, "(sctokf, started ")
print(json.encode({ ok = true }))
