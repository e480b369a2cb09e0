-- sectigoBulkReads: the Sectigo report replaces the details GETs, and both paths end in the
-- same state. "auto" falls back to list + details when the report is not offered (404) or
-- does not look like one; "on" refuses to run without it, before any write.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local B = require("bigworld")

local world = B.world(600, 11)
-- Every manual path here is one a report row carries (no "renewed"), so bulk reads need no
-- details at all.
local fields = B.fields(H)
for i = #fields.ManualFields, 1, -1 do
  if fields.ManualFields[i].sectigoFieldName == "renewed" then table.remove(fields.ManualFields, i) end
end

local function requests(st, ep) local r = st.requests[ep]; return r and (r.GET or 0) + (r.POST or 0) or 0 end

-- both(over, settings) -> digest, per-run {rc, details GETs, report POSTs, list GETs, stdout, log}
local function both(over, settings)
  H.reset(world)
  if settings then H.call("POST", H.sectigo .. "/__sim/settings", settings) end
  local dir = H.config_dir(over, fields)
  local runs = {}
  for _, mode in ipairs({ "sctokf", "kftosc" }) do
    H.clear_stats()
    local rc, out, err, logtext = H.run(dir, mode)
    local st = H.stats()
    runs[mode] = { rc = rc, details = requests(st, "sectigo.details"), report = requests(st, "sectigo.report"),
      list = requests(st, "sectigo.list"), out = out .. err, log = logtext, writes = H.writes(st) }
  end
  os.execute("rm -rf " .. H.sh_quote(dir))
  return B.digest(H.state()), runs
end

local base = { sectigoPageSize = 50, keyfactorPageSize = 40 }
local function with(k, v) local t = {}; for a, b in pairs(base) do t[a] = b end; t[k] = v; return t end

local plain, pruns = both(base)
for _, m in ipairs({ "sctokf", "kftosc" }) do
  H.eq(pruns[m].rc, 0, m .. " without bulk reads: " .. pruns[m].out)
  assert(pruns[m].details > 0 and pruns[m].report == 0, m .. ": details path reads details")
end

local bulk, bruns = both(with("sectigoBulkReads", "on"))
for _, m in ipairs({ "sctokf", "kftosc" }) do
  H.eq(bruns[m].rc, 0, m .. " with bulk reads: " .. bruns[m].out)
  H.eq(bruns[m].details, 0, m .. ": details GETs with bulk reads")
  H.eq(bruns[m].list, 0, m .. ": list GETs with bulk reads")
  assert(bruns[m].report > 0, m .. ": the report was used")
end
assert(bulk == plain, "bulk and details paths end in different states")

-- auto, report not offered: one line in the log, then list + details, same result
local auto, aruns = both(with("sectigoBulkReads", "auto"), { sectigoReport = "404" })
for _, m in ipairs({ "sctokf", "kftosc" }) do
  H.eq(aruns[m].rc, 0, m .. " auto with the report unavailable: " .. aruns[m].out)
  assert(aruns[m].details > 0 and aruns[m].report == 1, m .. ": tried the report once, then details")
  assert(aruns[m].log:find("bulk report is not available", 1, true), m .. ": the fallback is logged")
end
assert(auto == plain, "the fallback ends in a different state")

-- auto, an answer that is not a report: also a fallback
local _, shruns = both(with("sectigoBulkReads", "auto"), { sectigoReport = "badshape" })
H.eq(shruns.sctokf.rc, 0, "auto with a malformed report: " .. shruns.sctokf.out)
assert(shruns.sctokf.details > 0, "malformed report: details used")

-- on, report not offered: exit 1 before any write
local _, oruns = both(with("sectigoBulkReads", "on"), { sectigoReport = "404" })
H.eq(oruns.sctokf.rc, 1, "on with the report unavailable: " .. oruns.sctokf.out)
H.eq(oruns.sctokf.writes, 0, "nothing written when the report is required and missing")
assert(oruns.sctokf.out:find("Sectigo bulk report failed (sectigoBulkReads is on)", 1, true), oruns.sctokf.out)

-- A no-op sctokf with bulk reads reads no baseline: every pair is settled by its baseline's
-- digest, which the first run recorded with its writes. A value edited since is still seen,
-- written back, and only that certificate's baseline is read.
do
  -- (the fields whose values the native settle decides: a date, different for every
  -- certificate, is decided by the Lua, which reads the baseline)
  local native = { ManualFields = {}, CustomFields = {} }
  for k, list in pairs(native) do
    for _, f in ipairs(fields[k]) do
      if f.keyfactorDataType ~= 3 then list[#list + 1] = f end
    end
  end
  H.reset(world)
  local ddir = H.config_dir(with("sectigoBulkReads", "on"), native)
  local function run()
    H.clear_stats()
    local rc, out, err, logtext = H.run(ddir, "sctokf", "--log-level debug")
    H.eq(rc, 0, "sctokf: " .. out .. err)
    local read, by_digest = logtext:match("baselines read for (%d+) certificates; (%d+) settled by their baselines' digests")
    assert(read, "the last run's baseline line: " .. logtext:sub(-600))
    local unchanged = tonumber(out:match("unchanged:%s+(%d+)"))
    os.remove(H.main_log(ddir)) -- each run's lines alone
    return H.writes(H.stats()), tonumber(read), tonumber(by_digest), unchanged
  end
  local w1 = run()
  assert(w1 > 100, "the first run writes: " .. w1)
  local w2, read2, dig2, unchanged2 = run()
  H.eq(w2, 0, "no-op writes")
  H.eq(read2, 0, "no-op: baselines read")
  assert(dig2 > 100 and dig2 == unchanged2, string.format("no-op: %d settled by digest, %d unchanged", dig2, unchanged2))
  local edited
  for _, c in ipairs(H.state().keyfactor.certificates) do
    if c.Metadata and c.Metadata.CostCenter and c.Metadata.CostCenter ~= "" then edited = c; break end
  end
  local was = edited.Metadata.CostCenter
  H.kf_edit(edited.Id, { CostCenter = "edited-by-hand" })
  local w3, read3, dig3 = run()
  H.eq(w3, 1, "the edited certificate is written back")
  H.eq(read3, 1, "only its baseline is read")
  H.eq(dig3, dig2 - 1, "the others are settled by digest")
  H.eq(H.kf_cert(H.state(), edited.Id).Metadata.CostCenter, was, "its value is Sectigo's again")
  local _, read4, dig4 = run()
  assert(read4 == 0 and dig4 == dig2, string.format("after the write, digests again: %d read, %d", read4, dig4))
  os.execute("rm -rf " .. H.sh_quote(ddir))
end

-- a bad value for the key is a configuration error naming it
local dir = H.config_dir(with("sectigoBulkReads", "sometimes"), fields)
local rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 1, "bad sectigoBulkReads")
assert(err:find("key 'sectigoBulkReads': expected one of off, auto, on", 1, true), err)
os.execute("rm -rf " .. H.sh_quote(dir))
print("ok")
