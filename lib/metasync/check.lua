-- `metasync check`: is this configuration ready for a run? It loads and validates the
-- configuration as a run does, then reaches both APIs with its credentials, reading only, and
-- prints one line per check:
--   ok    the check passed
--   FAIL  a run would stop on it (exit 1), or could not work
--   warn  a run would go on, but likely not as meant
--   info  worth knowing, nothing wrong
--   note  what it cannot check without writing
-- Exit 0 when nothing failed, else 1. The host runs this file with the argument "check".
--
-- It is safe beside a running job and on a production account: no request writes (Sectigo's
-- report POST only reads), no run lock is taken, the state file is opened read-only (and not
-- created), no log file is written and bannedcharacters.json is never rewritten.
local config = require("metasync.config")
local log = require("metasync.log")
local json = require("metasync.json")
local fields = require("metasync.fields")
local setup = require("metasync.setup")
local state = require("metasync.state")

local opts = require("metasync.options")

local failed, warned = 0, 0

local function line(status, fmt, ...)
  if status == "FAIL" then failed = failed + 1 elseif status == "warn" then warned = warned + 1 end
  io.stdout:write(string.format("%-5s ", status), log.redact(string.format(fmt, ...)), "\n")
end

-- The HTTP status in a client's error text ("... -> HTTP 401: ..."), if it has one.
local function status_of(err)
  return tonumber(tostring(err):match("%-> HTTP (%d%d%d)"))
end

-- After a failure that no other request to the same API would get past (bad credentials, no
-- connection), the API's other checks are skipped rather than failed once more each.
local function hopeless(err)
  local s = status_of(err)
  return s == nil or s == 401
end

local function finish()
  if failed > 0 then
    io.stdout:write(string.format("metasync check: %d check(s) failed%s\n", failed,
      warned > 0 and string.format(", %d warning(s)", warned) or ""))
    return 1
  end
  io.stdout:write(string.format("metasync check: no check failed%s\n",
    warned > 0 and string.format(" (%d warning(s))", warned) or ""))
  return 0
end

-- Requests go to stderr only with -v or --log-level; a check writes no log file.
log.setup { level = opts.log_level or (opts.verbose and "debug") or "warn", file = false, errors_file = false,
  stderr = true }

---------------------------------------------------------------------------------------------
-- The configuration
---------------------------------------------------------------------------------------------
local dir = opts.config_dir or "config"
local cfg, errs, warnings = config.load(dir)
if not cfg then
  for _, w in ipairs(warnings or {}) do line("warn", "%s", w) end
  for _, e in ipairs(errs) do line("FAIL", "%s", e) end
  line("info", "the APIs were not tried: the configuration must load first")
  return finish()
end
setup.register_secrets(cfg)
for _, w in ipairs(errs) do line("warn", "%s", w) end -- config.load: cfg, warnings
local mapping
if cfg.importAllCustomFields then
  mapping = string.format("every Sectigo custom field (importAllCustomFields) and %d manual field(s)", #cfg.fields.manual)
else
  mapping = string.format("%d custom and %d manual field(s)", #cfg.fields.custom, #cfg.fields.manual)
end
line("ok", "configuration %s: loaded and valid; %s", cfg.dir, mapping)

-- A check is a quick answer: a run's patience (8 retries, backoff up to 30 s) would make an
-- unreachable API take minutes to report. Two retries still ride out a blip.
cfg.maxRetries = math.min(cfg.maxRetries or 2, 2)
local sectigo, keyfactor = setup.clients(cfg, opts)

-- Keyfactor names: a character Keyfactor refuses without a replacement in
-- bannedcharacters.json stops a run (exit 1). Checked here without writing the file.
local function check_names(list)
  local pending = {}
  for _, f in ipairs(list) do
    local _, missing = cfg.banned:rewrite(f.keyfactor)
    for _, c in ipairs(missing or {}) do
      pending[#pending + 1] = string.format("%s in '%s'", require("metasync.names").describe(c), f.keyfactor)
    end
  end
  if #pending > 0 then
    line("FAIL", "%s: no replacement for %s: a run stops until \"replacementcharacter\" is set",
      cfg.banned_path, table.concat(pending, ", "))
  end
end

---------------------------------------------------------------------------------------------
-- Sectigo
---------------------------------------------------------------------------------------------
local function check_sectigo()
  local where = "Sectigo " .. cfg.sectigo_base
  local defs, err = sectigo:custom_fields()
  if not defs then
    line("FAIL", "%s: cannot read the custom field definitions (GET /api/customField/v2?certType=SSL): %s", where, err)
    if hopeless(err) then
      line("info", "Sectigo: the other checks of Sectigo were skipped")
      return
    end
  else
    local active = 0
    for _, d in ipairs(defs) do if fields.active(d) then active = active + 1 end end
    line("ok", "%s: signed in; custom field definitions readable: %d (%d active)", where, #defs, active)
    local list = {}
    if cfg.importAllCustomFields then
      for _, d in ipairs(defs) do list[#list + 1] = fields.from_sectigo(d) end
    else
      local by = fields.by_name(defs)
      for _, f in ipairs(cfg.fields.custom) do
        local d = by[f.sectigo:lower()]
        if not d then
          line("warn", "fields.json: CustomFields names the Sectigo field '%s', which Sectigo does not have: it is never written to Sectigo",
            f.sectigo)
        elseif not fields.active(d) then
          line("info", "fields.json: the Sectigo field '%s' is inactive: Sectigo takes no values for it", f.sectigo)
        end
        list[#list + 1] = f
      end
    end
    for _, f in ipairs(cfg.fields.manual) do list[#list + 1] = f end
    check_names(list)
  end

  -- The list a run indexes, one certificate's worth.
  local filter = {}
  if not cfg.syncRevokedAndExpiredCerts then filter[1] = { "status", "Issued" } end
  local page, total = sectigo:page(filter, 0, 1)
  if not page then
    line("FAIL", "%s: cannot read the certificate list (GET /api/ssl/v1): %s", where, total)
  else
    line("ok", "Sectigo: certificate list readable: %s%s certificate(s) (GET /api/ssl/v1)",
      total and tostring(total) or (#page > 0 and "at least 1" or "no"), filter[1] and " Issued" or "")
  end

  -- The bulk report, for today's issuances only: a small answer whatever the inventory.
  local mode = cfg.sectigoBulkReads or "off"
  local today = os.date("!%Y-%m-%d")
  local rows, rerr, unavailable = sectigo:report({ from = today, to = today, certificateDateAttribute = "5" }, { "id" })
  local what = "the bulk report (POST /api/report/v1/ssl-certificates, read-only)"
  if rows then
    line("ok", "Sectigo: %s answers: %d certificate(s) issued today; sectigoBulkReads is %s", what, #rows, mode)
  elseif mode == "on" then
    line("FAIL", "Sectigo: %s failed: %s; with sectigoBulkReads on a run stops without it", what, rerr)
  elseif unavailable then
    line("info", "Sectigo: %s is not offered to this account (%s); a run reads the list and the details%s", what,
      rerr, mode == "auto" and " (sectigoBulkReads auto falls back to them)" or "")
  elseif mode == "auto" then
    line("FAIL", "Sectigo: %s failed: %s; with sectigoBulkReads auto a run stops on such a failure", what, rerr)
  else
    line("warn", "Sectigo: %s failed: %s (sectigoBulkReads is off: a run does not use it)", what, rerr)
  end
end

---------------------------------------------------------------------------------------------
-- Keyfactor
---------------------------------------------------------------------------------------------
-- The endpoints a run writes to, as Keyfactor's /Status/Endpoints names them.
local KF_WRITES = { "PUT /Certificates/Metadata", "POST /MetadataFields", "PUT /MetadataFields" }

local function check_keyfactor()
  local where = "Keyfactor " .. cfg.keyfactor_base
  local defs, err = keyfactor:metadata_fields()
  if not defs then
    line("FAIL", "%s: cannot read the metadata fields (GET /MetadataFields): %s", where, err)
    if hopeless(err) then
      line("info", "Keyfactor: the other checks of Keyfactor were skipped")
      return
    end
  else
    line("ok", "%s: signed in; metadata fields readable: %d", where, #defs)
  end

  local resp, verr = keyfactor.rest:request("GET", "/Status/Endpoints")
  if not resp then
    line("FAIL", "Keyfactor: cannot read GET /Status/Endpoints: %s", verr)
  else
    local version = resp.headers and resp.headers["x-keyfactor-product-version"]
    if version and version ~= "" then
      line("ok", "Keyfactor: product version %s (GET /Status/Endpoints)", version)
    else
      line("info", "Keyfactor: GET /Status/Endpoints answers without x-keyfactor-product-version (a proxy may drop it)")
    end
    -- The list names the endpoints open to this identity: a write endpoint missing from it
    -- is a hint, not proof, that a run's writes would be refused.
    local list = resp.json
    if type(list) == "table" and json.is_array(list) then
      local listed = {}
      for _, e in ipairs(list) do
        if type(e) == "string" then listed[e:gsub("%s+", " "):upper()] = true end
      end
      local missing = {}
      for _, e in ipairs(KF_WRITES) do if not listed[e:upper()] then missing[#missing + 1] = e end end
      if #missing > 0 then
        line("warn", "Keyfactor: GET /Status/Endpoints does not list %s for this identity: a run's writes there may be refused",
          table.concat(missing, ", "))
      else
        line("info", "Keyfactor: GET /Status/Endpoints lists the endpoints a run writes to (%s)", table.concat(KF_WRITES, ", "))
      end
    end
  end

  -- The certificates a run considers, one page of one.
  local term = cfg.issuerDNLookupTerm:gsub("\\", "\\\\"):gsub('"', '\\"')
  local q = string.format('IssuerDN -contains "%s"', term)
  local query = { { "QueryString", q }, { "pq.queryString", q }, { "PageReturned", 1 }, { "pq.pageReturned", 1 },
    { "ReturnLimit", 1 }, { "pq.returnLimit", 1 } }
  if cfg.syncRevokedAndExpiredCerts then
    for _, k in ipairs { "IncludeRevoked", "IncludeExpired" } do
      query[#query + 1] = { k, "true" }
      query[#query + 1] = { "pq." .. k:sub(1, 1):lower() .. k:sub(2), "true" }
    end
  end
  local r, cerr = keyfactor.rest:request("GET", "/Certificates", { query = query, decode = { select = { "Id" } } })
  if not r then
    line("FAIL", "Keyfactor: cannot read the certificates (GET /Certificates): %s", cerr)
  elseif type(r.json) ~= "table" or not json.is_array(r.json) then
    line("FAIL", "Keyfactor: GET /Certificates: expected a list, got %s", fields.describe(r.json))
  else
    local total = r.headers and r.headers["x-total-count"]
    line("ok", "Keyfactor: certificates readable: %s whose issuer DN contains '%s' (GET /Certificates)",
      total or (#r.json > 0 and "at least 1" or "none"), cfg.issuerDNLookupTerm)
  end
end

check_sectigo()
check_keyfactor()

---------------------------------------------------------------------------------------------
-- The state store: read-only, and not created when it is not there yet
---------------------------------------------------------------------------------------------
local st, serr = state.open(cfg.state_path, { readonly = true })
if not st then
  line("FAIL", "%s/config.json: key 'stateFile': cannot read %s: %s", cfg.dir, cfg.state_path, serr)
elseif st.empty then
  line("ok", "state file %s: not created yet (the first run creates it)", cfg.state_path)
else
  local run = st:resolve_run("last")
  if run then
    line("ok", "state file %s: last run %s (%s, started %s, %s)", cfg.state_path, run.id, run.command, run.started,
      run.exit_code and ("exit " .. run.exit_code) or "not finished")
  else
    line("ok", "state file %s: no run recorded yet", cfg.state_path)
  end
  st:close()
end

line("note", "not checked, as it takes a write: permission to write Sectigo custom fields (PUT /api/ssl/v1), " ..
  "Keyfactor metadata (PUT /Certificates/Metadata) and Keyfactor field definitions (POST and PUT /MetadataFields); " ..
  "'metasync --dry-run sync' shows what a run would write")
return finish()
