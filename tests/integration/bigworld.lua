-- A deterministic world of several thousand certificates with every kind of field, for the
-- equivalence tests (tests/integration/test_equivalence.lua). Unlike metasync-sim's own
-- generator, every date is absolute and far from today (issued in 2025, valid until 2099, or
-- expired in 2020), so the same world gives the same final state on any day.
local json = require("metasync.json")

local B = {}

local SECTIGO_OV = "CN=Sectigo RSA Organization Validation Secure Server CA, O=Sectigo Limited, C=GB"
local OTHER = "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US"
local ENVS = { "Production", "Staging", "Development" }

-- A small LCG: the same sequence on every machine and Lua build.
local function rng(seed)
  local s = seed
  local r = {}
  function r.next() s = (s * 1103515245 + 12345) % 2147483648; return s end
  function r.float() return r.next() / 2147483648 end
  -- The high bits: an LCG's low bits repeat with a short period.
  function r.int(a, b) return a + math.floor(r.float() * (b - a + 1)) end
  function r.pick(t) return t[r.int(1, #t)] end
  function r.hex(n)
    local out = {}
    for i = 1, n do out[i] = string.format("%02X", r.int(0, 255)) end
    return table.concat(out)
  end
  return r
end

local function ymd(y, m, d) return string.format("%04d-%02d-%02d", y, m, d) end

-- world(n, seed) -> a --data world of n Sectigo certificates and their Keyfactor twins.
function B.world(n, seed)
  local r = rng(seed or 7)
  local sc_certs, kf_certs = {}, {}
  local fields = {
    { id = 201, name = "Cost Center", input = { type = "TEXT_SINGLE_LINE" } },
    { id = 202, name = "Environment", input = { type = "TEXT_OPTION", options = ENVS } },
    { id = 203, name = "Renewal Date", input = { type = "DATE" } },
    { id = 204, name = "Budget Code", input = { type = "NUMBER" } },
    { id = 205, name = "Notes", input = { type = "TEXT_MULTI_LINE" } },
    { id = 206, name = "Owner Email", input = { type = "EMAIL" } },
    { id = 207, name = "Legacy Code", state = "INACTIVE", input = { type = "TEXT_SINGLE_LINE" } },
  }
  local function sectigo_value(f, i)
    local t = f.input.type
    if t == "TEXT_OPTION" then return r.pick(ENVS)
    elseif t == "DATE" then return ymd(r.int(2025, 2027), r.int(1, 12), r.int(1, 28))
    elseif t == "NUMBER" then return tostring(r.int(1, 99999))
    elseif t == "TEXT_MULTI_LINE" then return "Line one\nLine two " .. i
    elseif t == "EMAIL" then return "owner" .. r.int(1, 40) .. "@example.com" end
    return "CC-" .. r.int(100, 999)
  end
  for i = 1, n do
    local x = r.float()
    local status = x < 0.80 and "Issued" or x < 0.88 and "Expired" or x < 0.94 and "Revoked" or "Applied"
    local typ = (i % 3 == 0) and 1019 or 1018
    local c = { id = 10000 + i, commonName = "host" .. i .. ".acme.test", sslTypeId = typ, status = status,
      orgId = r.pick({ 7, 8, 9 }), term = 365, keyAlgorithm = "RSA", keySize = r.pick({ 2048, 4096 }),
      signatureAlg = "SHA256WITHRSA", customFields = {} }
    if status ~= "Applied" then
      local hex = r.hex(r.pick({ 8, 12, 16 }))
      if r.float() < 0.15 then hex = "00" .. hex end
      c.serialNumber = hex
      if status == "Expired" then
        c.requested, c.approved, c.issued, c.expires = "2019-03-01", "2019-03-01", "2019-03-02", "2020-03-02"
      else
        local m, d = r.int(1, 12), r.int(1, 28)
        c.requested, c.approved, c.issued = ymd(2025, m, d), ymd(2025, m, d), ymd(2025, m, d)
        c.expires = ymd(2099, m, d)
        if status == "Revoked" then c.revoked = ymd(2026, m, d) end
      end
    end
    for _, f in ipairs(fields) do
      if r.float() < 0.45 then c.customFields[#c.customFields + 1] = { name = f.name, value = sectigo_value(f, i) } end
    end
    sc_certs[#sc_certs + 1] = c
    -- About 90% of the certificates with a serial are in Keyfactor, some with metadata of
    -- their own: equal by meaning, different, or only there (which kftosc copies back).
    if c.serialNumber and r.float() < 0.9 then
      local md = {}
      local y = r.float()
      if y < 0.3 then
        for _, cf in ipairs(c.customFields) do
          if cf.name == "Cost Center" then md.CostCenter = cf.value end
          if cf.name == "Renewal Date" then md.RenewalDate = cf.value end
        end
      elseif y < 0.6 then
        md.CostCenter = "KF-" .. r.int(100, 999)
        md.Environment = r.pick(ENVS)
        if r.float() < 0.5 then md.BudgetCode = tostring(r.int(1, 500)) end
        if r.float() < 0.5 then md.RenewalDate = ymd(2028, r.int(1, 12), r.int(1, 28)) end
        if r.float() < 0.3 then md.OwnerEmail = "kf" .. r.int(1, 9) .. "@example.com" end
      end
      local nb = c.issued .. "T10:00:00Z"
      local na = c.expires .. "T10:00:00Z"
      kf_certs[#kf_certs + 1] = { SerialNumber = (r.float() < 0.5 and "000" or "") .. c.serialNumber,
        IssuedCN = c.commonName, IssuedDN = "CN=" .. c.commonName, IssuerDN = SECTIGO_OV,
        NotBefore = nb, NotAfter = na, CertState = status == "Revoked" and 2 or 1,
        Metadata = next(md) and md or nil }
    end
  end
  -- Strangers: Sectigo-issued certificates Sectigo does not list, and another issuer's
  -- certificates whose serials collide with Sectigo ones (never to be touched).
  for i = 1, n // 20 do
    kf_certs[#kf_certs + 1] = { SerialNumber = "FF" .. r.hex(10), IssuedCN = "stray" .. i .. ".acme.test",
      IssuerDN = SECTIGO_OV, NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z" }
    local twin = sc_certs[r.int(1, #sc_certs)]
    if twin.serialNumber then
      kf_certs[#kf_certs + 1] = { SerialNumber = twin.serialNumber, IssuedCN = "other" .. i .. ".example.org",
        IssuerDN = OTHER, NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z",
        Metadata = { CostCenter = "DIGI-" .. i } }
    end
  end
  for i = #kf_certs, 2, -1 do
    local j = r.int(1, i)
    kf_certs[i], kf_certs[j] = kf_certs[j], kf_certs[i]
  end
  for i, c in ipairs(kf_certs) do c.Id = i end
  return {
    settings = { sectigoListSerialFormat = "colon" },
    sectigo = { types = { { id = 1018, name = "OV SSL" }, { id = 1019, name = "EV SSL" } },
      customFields = fields, certificates = sc_certs },
    keyfactor = {
      metadataFields = {
        { Id = 1, Name = "CostCenter", Description = "Cost center charged for the certificate", DataType = 1, DisplayOrder = 1 },
        { Id = 2, Name = "Environment", Description = "Deployment environment", DataType = 5,
          Options = "Production,Staging,Development", DisplayOrder = 2 },
        { Id = 3, Name = "OwnerEmail", Description = "Certificate owner", DataType = 7, DisplayOrder = 3 },
        { Id = 4, Name = "RenewalDate", Description = "Planned renewal date", DataType = 3, DisplayOrder = 4 },
        { Id = 5, Name = "BudgetCode", Description = "Budget code", DataType = 2, DisplayOrder = 10 },
      },
      certificates = kf_certs,
    },
  }
end

-- fields() -> a fields.json covering every Keyfactor data type and the manual paths a report
-- row carries under another name (certType.id, certificateDetails.issuer, dates, key size)
-- and one it lacks (renewed), so bulk reads must fall back to details for it.
function B.fields(H)
  local f = H.field
  return {
    ManualFields = {
      f("id", "SectigoID", 2), f("certType.id", "SectigoCertTypeID", 2), f("status", "SectigoStatus", 1),
      f("commonName", "SectigoCN", 1), f("expires", "SectigoExpires", 3), f("issued", "SectigoIssuedText", 1),
      f("certificateDetails.issuer", "SectigoIssuer", 6), f("keySize", "SectigoKeySize", 2),
      f("renewed", "SectigoRenewed", 4),
    },
    CustomFields = {
      f("Cost Center", "CostCenter", 1, { keyfactorDescription = "Cost center charged for the certificate", keyfactorDisplayOrder = 1 }),
      f("Environment", "Environment", 5, { keyfactorDescription = "Deployment environment",
        keyfactorOptions = ENVS, keyfactorDisplayOrder = 2 }),
      f("Owner Email", "OwnerEmail", 7, { keyfactorDescription = "Certificate owner", keyfactorDisplayOrder = 3 }),
      f("Renewal Date", "RenewalDate", 3, { keyfactorDescription = "Planned renewal date", keyfactorDisplayOrder = 4 }),
      f("Budget Code", "BudgetCode", 2, { keyfactorDescription = "Budget code", keyfactorDisplayOrder = 10 }),
      f("Notes", "Notes", 6),
      f("Legacy Code", "LegacyCode", 1),
    },
  }
end

-- digest(state) -> the synced part of a world as sorted text lines: every Keyfactor
-- certificate's metadata, every Sectigo certificate's custom fields and comments, and the
-- Keyfactor field definitions. Two runs that end in the same state give the same text.
function B.digest(state)
  local lines = {}
  local function kv(t)
    local keys, out = {}, {}
    for k in pairs(t or {}) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. tostring(t[k]):gsub("\n", "\\n") end
    return table.concat(out, "|")
  end
  for _, c in ipairs(state.keyfactor.certificates) do
    lines[#lines + 1] = string.format("K %d %s", c.Id, kv(c.Metadata))
  end
  for _, c in ipairs(state.sectigo.certificates) do
    local cf = {}
    for _, x in ipairs(c.customFields or {}) do cf[x.name] = x.value end
    lines[#lines + 1] = string.format("S %d %s%s", c.id, kv(cf), c.comments and c.comments ~= "" and (" #" .. c.comments) or "")
  end
  for _, f in ipairs(state.keyfactor.metadataFields) do
    lines[#lines + 1] = string.format("F %s %d %s %s", f.Name, f.DataType, tostring(f.Description),
      tostring(f.Options ~= json.null and f.Options or ""))
  end
  table.sort(lines)
  return table.concat(lines, "\n") .. "\n"
end

-- FNV-1a, 32 bits: a short fingerprint of one line.
local function fnv(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return string.format("%08x", h)
end

-- fingerprint(text) -> the digest with each certificate line's values reduced to a hash, so
-- the golden file stays small; `lines` maps each hashed line back to its full text for the
-- test to show what differs.
function B.fingerprint(text)
  local out, full = {}, {}
  for l in text:gmatch("[^\n]+") do
    local head, rest = l:match("^([KS] %d+) (.*)$")
    if head then
      local h = head .. " " .. fnv(rest)
      full[h] = l
      out[#out + 1] = h
    else
      out[#out + 1] = l
    end
  end
  return table.concat(out, "\n") .. "\n", full
end

return B
