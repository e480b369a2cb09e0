-- Benchmark (not a test): json.decode of big paged API responses, in full and with opts.select.
-- Builds a 500-item Keyfactor certificate page (the shape of tests/sim/lua/keyfactor.lua `item`:
-- ~35 keys, SubjectAltNameElements and ExtendedKeyUsages arrays, a Metadata object) and a
-- 2000-row Sectigo report ({"statusCode":0,"message":"","reports":[...]}, ~35 keys a row), then
-- decodes each repeatedly and prints CPU microseconds per item (os.clock) both ways.
-- Usage: build/metasync run bench/json-select.lua [SECONDS_PER_CASE]   (default 2)
local json = require("metasync.json")
local cjson = require("cjson")

local budget = tonumber(arg and arg[1]) or 2.0
local null = json.null

local function hex(seed, n)
  local t = {}
  local x = seed
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.format("%X", x % 16)
  end
  return table.concat(t)
end

local function iso(day, sec)
  return string.format("2024-%02d-%02dT%02d:%02d:%02dZ", day % 12 + 1, day % 28 + 1, sec % 24,
    sec % 60, (sec * 7) % 60)
end

local STATES = { "Unknown", "Active", "Revoked", "Denied", "Failed", "Pending" }

local function kf_item(i)
  local id = 100000 + i
  local cn = string.format("host%05d.example.com", i)
  local sans = json.array()
  for k = 1, 1 + i % 4 do
    sans[k] = { Id = id * 100 + k, Value = k == 1 and cn or string.format("alt%d-%s", k, cn),
      Type = 2, ValueHash = null }
  end
  local md = {}
  if i % 5 ~= 0 then
    md = { CostCenter = tostring(4000 + i % 50), Owner = "ops team " .. i % 7,
      Environment = i % 3 == 0 and "prod" or "test", Ticket = "CHG" .. (100000 + i),
      AppId = "APP-" .. i % 300, Notes = "imported from Sectigo order " .. (7000000 + i),
      RenewalContact = "pki-" .. i % 11 .. "@example.com", SectigoId = tostring(5000000 + i) }
  end
  local state = 1 + i % 4
  return {
    Id = id, Thumbprint = hex(i, 40), SerialNumber = hex(i * 7, 32),
    IssuedDN = "CN=" .. cn .. ", O=Example Corp, L=Springfield, C=US", IssuedCN = cn,
    ImportDate = iso(i, i * 3), NotBefore = iso(i + 1, i * 5), NotAfter = iso(i + 2, i * 11),
    IssuerDN = "CN=Sectigo RSA Organization Validation Secure Server CA, O=Sectigo Limited, L=Salford, C=GB",
    PrincipalId = null, TemplateId = null, CertState = state, CertStateString = STATES[state + 1],
    KeySizeInBits = 2048, KeyType = 1, KeyTypeString = "RSA", RequesterId = null, IssuedOU = null,
    IssuedEmail = null, KeyUsage = 160, SigningAlgorithm = "SHA256-RSA", CertificateAuthorityId = null,
    CertificateAuthorityName = "Sectigo", TemplateName = "WebServer", HasPrivateKey = i % 2 == 0,
    KeyRecoverable = false, ArchivedKey = false, CertRequestId = 20000 + i,
    CARecordId = tostring(7000000 + i), CARowIndex = 0, RevocationEffDate = null,
    RevocationReason = null, RevocationComment = null, ContentBytes = null,
    SubjectAltNameElements = sans,
    ExtendedKeyUsages = json.array({ { Id = 1, Oid = "1.3.6.1.5.5.7.3.1", DisplayName = "Server Authentication" } }),
    CRLDistributionPoints = json.array(), LocationsCount = json.array(), Locations = json.array(),
    SSLLocations = json.array(), Metadata = md,
  }
end

local function sc_row(i)
  local cn = string.format("www%05d.example.org", i)
  local cf = json.array()
  for k = 1, i % 4 do
    cf[k] = { name = "Field " .. k, value = "value " .. (i * k) % 97 }
  end
  return {
    id = 3000000 + i, type = "Sectigo OV SSL", typeId = 1024 + i % 3, orgId = 100 + i % 9,
    commonName = cn, subjAltNames = cn .. ",alt-" .. cn, status = i % 9 == 0 and "Revoked" or "Issued",
    requester = "requester" .. i % 13 .. "@example.org", approver = "Sim Admin",
    organizationName = "Example Corp " .. i % 9, orderNumber = 7000000 + i,
    backendCertId = tostring(7000000 + i), requestedVia = "Enrollment Form", term = 365,
    comments = i % 4 == 0 and "renewal of order " .. (6000000 + i) or "", externalRequester = "",
    signatureAlg = "SHA256WITHRSA", publicKeyType = "RSA - 2048", sha1 = hex(i * 3, 40),
    requested = iso(i, i), approved = iso(i, i + 1), issued = iso(i, i + 2), expires = iso(i + 3, i),
    serialNumber = hex(i * 5, 32),
    issuer = "CN=Sectigo RSA Organization Validation Secure Server CA,O=Sectigo Limited,C=GB",
    customFields = cf, keySize = 2048, validationType = "STANDARD", ownerEmail = null,
    suspendNotifications = false, autoRenew = i % 2 == 1, sslId = 3000000 + i,
    renewed = false, keyAlgorithm = "RSA", certificateStatusCode = 2,
  }
end

local function build(n, make)
  local t = json.array()
  for i = 1, n do t[i] = make(i) end
  return t
end

local kf_page = json.encode(build(500, kf_item))
local sc_report = json.encode({ statusCode = 0, message = "", reports = build(2000, sc_row) })

local KF_SELECT = { "Id", "Thumbprint", "SerialNumber", "IssuedCN", "NotAfter", "Metadata" }
local SC_SELECT = { "id", "sslId", "commonName", "serialNumber", "status", "expires", "issued",
  "subjAltNames", "orgId", "customFields" }

-- CPU microseconds per item for each decoder, measured in interleaved rounds (so that a busy
-- machine slows every variant alike), each round repeating a decoder for about budget/(7 * #fns)
-- seconds; gives the median over the rounds for each.
local function time(text, nitems, fns)
  local per = {}
  for i = 1, #fns do per[i] = {} end
  for round = 1, 7 do
    for i, fn in ipairs(fns) do
      collectgarbage()
      local reps, t0 = 0, os.clock()
      local t1
      repeat
        fn(text)
        reps = reps + 1
        t1 = os.clock()
      until t1 - t0 >= budget / (7 * #fns)
      per[i][round] = (t1 - t0) / reps / nitems * 1e6
    end
  end
  local med = {}
  for i = 1, #fns do
    table.sort(per[i])
    med[i] = per[i][4]
  end
  return table.unpack(med)
end

local function case(label, text, nitems, opts)
  -- the selected result must be the full result restricted to the selected keys
  local full, sel = json.decode(text), json.decode(text, opts)
  local list_full = opts.at and full[opts.at] or full
  local list_sel = opts.at and sel[opts.at] or sel
  assert(#list_sel == nitems and #list_full == nitems)
  for i = 1, nitems, 97 do
    local want = {}
    for _, k in ipairs(opts.select) do want[k] = list_full[i][k] end
    assert(json.encode(want, { sort_keys = true }) == json.encode(list_sel[i], { sort_keys = true }))
  end
  full, sel, list_full, list_sel = nil, nil, nil, nil
  local skip_only = { select = {}, at = opts.at }
  local t_full, t_sel, t_skip, t_cjson = time(text, nitems, {
    json.decode,
    function(s) return json.decode(s, opts) end,
    function(s) return json.decode(s, skip_only) end,
    cjson.decode,
  })
  print(string.format("%s: %d items, %.0f bytes an item", label, nitems, #text / nitems))
  print(string.format("  full decode         %7.2f us/item", t_full))
  print(string.format("  select (%2d keys)    %7.2f us/item   %.1fx faster", #opts.select, t_sel,
    t_full / t_sel))
  print(string.format("  select {} (no keys) %7.2f us/item   (the scanning alone)", t_skip))
  print(string.format("  cjson.decode        %7.2f us/item   (for reference)", t_cjson))
end

print(string.format("json.decode, CPU time per item (os.clock; median of 7 interleaved rounds, %.1f s a case)",
  budget))
case("Keyfactor page (top-level array)", kf_page, 500, { select = KF_SELECT })
case("Sectigo report (at = \"reports\")", sc_report, 2000, { select = SC_SELECT, at = "reports" })
