-- Fuzz target: the Sectigo and Keyfactor responses of a run, bytes in, through the SDK code that
-- handles them: metasync.rest (status, content type, json.decode with the select options the
-- clients use), the clients' shape checks (metasync.sectigo, metasync.keyfactor, the pager), and
-- the stages of a run after its setup, as metasync.pipeline strings them together: pre-flight
-- (custom fields, metadata fields), fieldset (names, definition diff, field writes), scindex
-- (list pages or the bulk report), kfstream (include, matching), pair / twoway (details,
-- values.dig, fields.custom_value, fields.metadata, to_keyfactor / to_sectigo, the writes).
-- The HTTP layer is the only fake: metasync.http answers from the input.
--
-- Input: one mode character, then responses separated by "\n--\n". Mode bits: 1|2 direction
-- (0 sctokf, 1 kftosc, 2 sync, 3 sctokf), 4 importAllCustomFields, 8 sectigoBulkReads "auto",
-- 16 enableTruncation, 32 syncRevokedAndExpiredCerts, 64 day-first keyfactorDateFormat.
-- A response is three characters then the body:
--   1. which requests it answers: C custom fields, M metadata fields, S Sectigo list page,
--      D Sectigo details, R Sectigo report, K Keyfactor certificate page, F one Keyfactor
--      field by name (looked up after a failed create), W any write;
--      each kind takes its responses in order, then a default (an empty list, {}, or 204);
--   2. the status: 0 200 JSON, 1 200 text/plain, 2 204, 3 400, 4 401, 5 404, 6 500, 7 503,
--      8 429, 9 413 (anything else 200);
--   3. X-Total-Count: 0-9, a-z (10, 17, 24 ...), anything else none.
-- Properties:
--   * nothing raises out of the stages but the documented fatal() of metasync.setup (a run
--     stopped before any write, exit 1);
--   * no fatal message, listing failure, field failure or certificate failure is a Lua runtime
--     error of the SDK, an encoder error, or a read of a Keyfactor key the listing did not fetch
--     (the SDK catches those per certificate, which would hide them);
--   * every write is well formed: Keyfactor metadata values are strings (Keyfactor's own form),
--     keyed by mapped field names; Sectigo updates carry an integer sslId and named custom
--     fields.
local H = require("harness").setup(...)
local json = require("metasync.json")
local names = require("metasync.names")
local fieldsconf = require("metasync.fieldsconf")
local setup = require("metasync.setup")
local sectigo = require("metasync.sectigo")
local keyfactor = require("metasync.keyfactor")
local report = require("metasync.report")
local fieldset = require("metasync.fieldset")
local scindex = require("metasync.scindex")
local kfstream = require("metasync.kfstream")
local pair = require("metasync.pair")
local twoway = require("metasync.twoway")
local stock = require("metasync.stock")
local log = require("metasync.log")

local POLICIES = { sctokf = stock.load("sctokf"), kftosc = stock.load("kftosc"), sync = stock.load("sync") }
local WORK = { sctokf = pair.sctokf, kftosc = pair.kftosc, sync = twoway.sync }
local DIRECTIONS = { [0] = "sctokf", "kftosc", "sync", "sctokf" }

local SC, KF = "http://sectigo.fuzz", "http://keyfactor.fuzz/KeyfactorAPI"

-- A site's fields.json, every data type and a few manual paths (some a bulk row carries, some
-- not), validated the way config.load validates it.
local FIELDS = json.decode([[{
  "ManualFields": [
    {"sectigoFieldName": "id", "keyfactorMetadataFieldName": "SectigoID", "keyfactorDataType": 2},
    {"sectigoFieldName": "certType.id", "keyfactorMetadataFieldName": "SectigoType", "keyfactorDataType": 2},
    {"sectigoFieldName": "status", "keyfactorMetadataFieldName": "SectigoStatus", "keyfactorDataType": 1},
    {"sectigoFieldName": "expires", "keyfactorMetadataFieldName": "SectigoExpires", "keyfactorDataType": 3},
    {"sectigoFieldName": "certificateDetails.subject", "keyfactorMetadataFieldName": "Subject", "keyfactorDataType": 6},
    {"sectigoFieldName": "suspendNotifications", "keyfactorMetadataFieldName": "Quiet", "keyfactorDataType": 4}
  ],
  "CustomFields": [
    {"sectigoFieldName": "Cost Center", "keyfactorMetadataFieldName": "CostCenter", "keyfactorDataType": 1},
    {"sectigoFieldName": "Environment", "keyfactorMetadataFieldName": "Environment", "keyfactorDataType": 5,
     "keyfactorOptions": ["Production", "Staging", "Development"]},
    {"sectigoFieldName": "Owner Email", "keyfactorMetadataFieldName": "OwnerEmail", "keyfactorDataType": 7},
    {"sectigoFieldName": "Renewal Date", "keyfactorMetadataFieldName": "RenewalDate", "keyfactorDataType": 3},
    {"sectigoFieldName": "Budget Code", "keyfactorMetadataFieldName": "BudgetCode", "keyfactorDataType": 2},
    {"sectigoFieldName": "Approved", "keyfactorMetadataFieldName": "Approved", "keyfactorDataType": 4},
    {"sectigoFieldName": "Notes", "keyfactorMetadataFieldName": "Notes", "keyfactorDataType": 6, "syncDirection": "kftosc"},
    {"sectigoFieldName": "Ticket", "keyfactorMetadataFieldName": "Ticket Number", "keyfactorDataType": 1, "syncDirection": "sctokf"}
  ]
}]])
local BANNED = { { character = " ", replacement = "_" }, { character = "/", replacement = "-" } }

-- bannedcharacters.json is written back when a Sectigo name (importAllCustomFields) holds a
-- character without a replacement: into a directory of this process, removed at exit.
local function pid()
  local f = io.open("/proc/self/stat", "r")
  local s = f and f:read("l")
  if f then f:close() end
  return s and s:match("^(%d+)") or tostring(os.time())
end
local root = string.format("%s/metasync-fuzz-response.%s", os.getenv("TMPDIR") or "/tmp", pid())
assert(os.execute(string.format("rm -rf '%s' && mkdir -p '%s'", root, root)))
FUZZ_CLEANUP_RESPONSE = setmetatable({}, { __gc = function() os.execute(string.format("rm -rf '%s'", root)) end })

local STATUS = { ["0"] = 200, ["1"] = 200, ["2"] = 204, ["3"] = 400, ["4"] = 401, ["5"] = 404, ["6"] = 500,
  ["7"] = 503, ["8"] = 429, ["9"] = 413 }
local DEFAULT = { C = "[]", M = "[]", S = "[]", K = "[]", D = "{}", R = '{"reports":[]}' }

local function total_of(c)
  if c:match("^%d$") then return c end
  local b = c:byte()
  if b and b >= 97 and b <= 122 then return tostring(10 + (b - 97) * 7) end
  return nil
end

-- kind_of(method, url) -> the response kind a request takes
local function kind_of(method, url)
  local path = url:match("^[a-z]+://[^/]+(/[^?]*)") or ""
  if method ~= "GET" and method ~= "HEAD" then
    if path == "/api/report/v1/ssl-certificates" then return "R" end
    return "W", path
  end
  if path == "/api/customField/v2" then return "C" end
  if path == "/api/ssl/v1" then return "S" end
  if path:match("^/api/ssl/v1/%-?%d+$") then return "D" end
  if path == "/KeyfactorAPI/MetadataFields" then return "M" end
  if path == "/KeyfactorAPI/Certificates" then return "K" end
  if path:match("^/KeyfactorAPI/MetadataFields/.") then return "F" end
  return "?"
end

local field_names -- Keyfactor names of the run's fields (ctx.fields, once settled)

-- check_write(kind, path, body): the properties of what a run sends.
local function check_write(path, body)
  local doc = json.decode(body or "")
  if type(doc) ~= "table" then H.fail("write to %s sent no JSON object: %s", path, H.quote(body)) end
  if path == "/KeyfactorAPI/Certificates/Metadata" then
    if type(doc.Metadata) ~= "table" then H.fail("metadata write without Metadata: %s", H.quote(body)) end
    for k, v in pairs(doc.Metadata) do
      if type(v) ~= "string" then H.fail("metadata %s sent as a %s: %s", tostring(k), type(v), H.quote(body)) end
      if field_names and not field_names[k] then H.fail("metadata write of unmapped field %s", H.quote(k)) end
    end
  elseif path == "/api/ssl/v1" then
    if math.type(doc.sslId) ~= "integer" then H.fail("Sectigo update without an integer sslId: %s", H.quote(body)) end
    if type(doc.customFields) ~= "table" then H.fail("Sectigo update without customFields: %s", H.quote(body)) end
    for _, cf in ipairs(doc.customFields) do
      if type(cf) ~= "table" or type(cf.name) ~= "string" then H.fail("Sectigo update with an unnamed field: %s", H.quote(body)) end
    end
  end
end

local function bad_reason(msg)
  msg = tostring(msg)
  return H.runtime_error_in(msg) or msg:find("cannot encod[e]") or msg:find("was not fetche[d]")
end

local function new_state()
  local st = {}
  function st.baseline() return {} end
  for _, m in ipairs { "agree", "in_step", "journal", "prefetch", "begin_run", "finish_run", "close" } do st[m] = function() end end
  return st
end

-- The site's fields are not what this target fuzzes, so they are validated once per setting
-- that validation reads, and each input gets a fresh copy (a run may annotate them).
local validated = {}
-- {manual = {field...}, custom = {field...}, ...}: fresh lists of fresh field tables (their
-- values are strings, numbers and option lists the run only reads)
local function copy(fields)
  local t = {}
  for k, v in pairs(fields) do
    if type(v) == "table" and (k == "manual" or k == "custom") then
      local list = {}
      for i, f in ipairs(v) do
        local g = {}
        for fk, fv in pairs(f) do g[fk] = fv end
        list[i] = setmetatable(g, getmetatable(f))
      end
      t[k] = list
    else
      t[k] = v
    end
  end
  return setmetatable(t, getmetatable(fields))
end
local function validated_fields(cfg, mode)
  local key = mode & (4 | 16 | 64)
  if not validated[key] then
    local errs = {}
    validated[key] = fieldsconf.validate(FIELDS, "fields.json", cfg, errs, {})
    assert(#errs == 0, errs[1])
  end
  return copy(validated[key])
end

local function run(data)
  local mode = data:byte(1) or 0
  local direction = DIRECTIONS[mode & 3]
  local policy = POLICIES[direction]
  local queues, served = { C = {}, M = {}, S = {}, K = {}, D = {}, R = {}, W = {}, F = {} }, {}
  for _, part in ipairs(H.split(data:sub(2), "\n--\n")) do
    local q = queues[part:sub(1, 1)]
    if q then q[#q + 1] = part end
  end
  -- At most this many requests: a run that keeps asking (paging on, report windows) is cut
  -- off with transport errors, as a dead server would.
  local budget = 200
  H.serve = function(r)
    budget = budget - 1
    if budget < 0 then return nil, "fuzz: request budget spent", "connect" end
    local kind, path = kind_of(r.method, r.url)
    if kind == "W" then check_write(path, r.body) end
    local n = (served[kind] or 0) + 1
    served[kind] = n
    local part = queues[kind] and queues[kind][n]
    if not part then
      if kind == "W" then return { status = 204, headers = {}, body = "" } end
      if kind == "F" then return { status = 404, headers = {}, body = "" } end
      return { status = 200, headers = { ["content-type"] = "application/json" }, body = DEFAULT[kind] or "{}" }
    end
    local status = STATUS[part:sub(2, 2)] or 200
    local headers = { ["content-type"] = part:sub(2, 2) == "1" and "text/plain" or "application/json" }
    headers["x-total-count"] = total_of(part:sub(3, 3))
    local body = part:sub(4)
    if status == 204 then body = "" end
    return { status = status, headers = headers, body = body }
  end

  local cfg = { importAllCustomFields = mode & 4 ~= 0, enableDisabledFieldSync = false, sslTypeIds = {},
    sectigoPageSize = 2, keyfactorPageSize = 2, syncRevokedAndExpiredCerts = mode & 32 ~= 0,
    issuerDNLookupTerm = "Sectigo", keyfactorAddedSince = nil, enableTruncation = mode & 16 ~= 0,
    sectigoBulkReads = mode & 8 ~= 0 and "auto" or "off",
    keyfactorDateFormat = mode & 64 ~= 0 and "d/M/yyyy" or "M/d/yyyy h:mm:ss tt",
    conflictPolicy = "report", journalDays = 90, banned_path = root .. "/bannedcharacters.json" }
  cfg.banned = names.new_table(BANNED)
  cfg.fields = validated_fields(cfg, mode)
  local http = { retries = 0 }
  local ctx = { cfg = cfg, options = {}, dry_run = false, banned = cfg.banned, date_format = cfg.keyfactorDateFormat,
    sectigo_date_format = "MM/dd/yyyy", today = "2025-07-23", report = report.new(direction), log = log,
    state = new_state(), direction = direction,
    sectigo = sectigo.new { base = SC, login = "l", password = "p", customer_uri = "c", concurrency = 1, http = http },
    keyfactor = keyfactor.new { base = KF, login = "l", password = "p", concurrency = 1, http = http } }
  ctx.concurrency = { sectigo = 1, keyfactor = 1 }
  field_names = nil

  -- The stages of metasync.pipeline after setup.context, in its order.
  local fatal = setup.fatal
  local ok, err = pcall(function()
    local e
    ctx.sectigo_fields, e = ctx.sectigo:custom_fields()
    if not ctx.sectigo_fields then fatal("cannot reach Sectigo: %s", e) end
    ctx.kf_fields, e = ctx.keyfactor:metadata_fields()
    if not ctx.kf_fields then fatal("cannot reach Keyfactor: %s", e) end
    local defs = fieldset.prepare(ctx, policy)
    field_names = {}
    for _, f in ipairs(ctx.fields) do field_names[f.keyfactor] = true end
    ctx.index = scindex.build(ctx, policy)
    fieldset.apply(ctx, defs)
    pair.prepare(ctx)
    local limit = 2 * (ctx.concurrency.sectigo + ctx.concurrency.keyfactor)
    local lerr = kfstream.run(ctx, policy, ctx.index, WORK[direction], limit)
    if lerr then ctx.report:listing_failed("listing Keyfactor certificates failed: " .. lerr) end
  end)
  if not ok then
    if getmetatable(err) ~= setup.Fatal then H.fail("a stage raised: %s", tostring(err)) end
    if bad_reason(err.msg) then H.fail("fatal with an SDK error inside: %s", err.msg) end
  end
  local r = ctx.report
  for _, f in ipairs(r.failed) do
    if bad_reason(f.reason) then H.fail("certificate %s failed with an SDK error: %s", tostring(f.serial), f.reason) end
  end
  for _, f in ipairs(r.field_failures) do
    if bad_reason(f.reason) then H.fail("field %s failed with an SDK error: %s", tostring(f.name), f.reason) end
  end
  if r.listing_failure and bad_reason(r.listing_failure) then H.fail("listing failed with an SDK error: %s", tostring(r.listing_failure)) end
  -- The summary and the exit code are computed from what is left (never printed here).
  local lok, lines = pcall(r.lines, r)
  if not lok then H.fail("report lines raised: %s", tostring(lines)) end
  local cok, code = pcall(r.exit_code, r)
  if not cok or math.type(code) ~= "integer" then H.fail("exit_code raised or is no integer: %s", tostring(code)) end
  return ctx, served
end

return run
