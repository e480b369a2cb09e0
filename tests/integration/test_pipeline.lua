-- The streaming pipeline's shape, from the simulator's request journal: Keyfactor writes begin
-- while Sectigo reads are still going on (the two APIs are busy at once, not one after the
-- other), the number of pairs in flight stays bounded, and Sectigo's dates are read in
-- Sectigo's format whatever keyfactorDateFormat says.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local B = require("bigworld")

-- 1. Overlap: 400 certificates, 4 requests in flight per API.
H.reset(B.world(400, 3))
local dir = H.config_dir({ sectigoPageSize = 50, keyfactorPageSize = 50, sectigoConcurrency = 4,
  keyfactorConcurrency = 4 }, B.fields(H))
H.call("DELETE", H.sectigo .. "/__sim/requests")
H.faults { global = { latency_ms = 2 } }
local rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 0, "sctokf exit code: " .. err .. out)
H.call("DELETE", H.sectigo .. "/__sim/faults")
local j = H.call("GET", H.sectigo .. "/__sim/requests")
assert(#j < 2000, "journal overflowed")
local first_put, last_get, gets, puts = math.huge, 0, 0, 0
for _, e in ipairs(j) do
  if e.endpoint == "keyfactor.metadata" then puts = puts + 1; first_put = math.min(first_put, e.seq) end
  if e.endpoint == "sectigo.details" then gets = gets + 1; last_get = math.max(last_get, e.seq) end
end
assert(gets > 100 and puts > 100, "details GETs " .. gets .. ", metadata PUTs " .. puts)
assert(first_put < last_get, string.format("the first Keyfactor write (seq %d) comes before the last Sectigo read (seq %d)",
  first_put, last_get))
-- Both APIs' caps were used together: the simulator saw more than one API's cap in flight.
local st = H.stats()
assert(st.max_inflight > 4, "requests in flight across both APIs: " .. tostring(st.max_inflight))
assert(st.max_inflight <= 4 + 4 + 1, "caps held: " .. tostring(st.max_inflight))
os.execute("rm -rf " .. H.sh_quote(dir))

-- 2. A day-first keyfactorDateFormat leaves Sectigo's dates alone: Sectigo's details give
-- 03/04/2026 (MM/dd/yyyy, 4 March), which must reach Keyfactor as 2026-03-04, not 3 April.
local w = H.world()
w.sectigo.certificates[1].expires = "2026-03-04"
w.sectigo.certificates[1].issued = "2025-03-04"
H.reset(w)
local f = H.fields()
f.ManualFields = { H.field("expires", "SectigoExpires", 3) }
f.CustomFields = { H.field("Renewal Date", "RenewalDate", 3) }
dir = H.config_dir({ keyfactorDateFormat = "d/M/yyyy" }, f)
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 0, "day-first sctokf exit code: " .. err .. out)
local c1 = H.kf_cert(H.state(), 1)
H.eq(c1.Metadata.SectigoExpires, "2026-03-04", "Sectigo's 03/04/2026 is 4 March")
H.eq(c1.Metadata.RenewalDate, "2025-07-23", "a custom DATE value")
-- and a second run sees nothing to change (Keyfactor's day-first read-back compares equal)
H.clear_stats()
rc, out = H.run(dir, "sctokf")
H.eq(rc, 0, "second day-first run")
assert(out:find("updated: +0"), out)
os.execute("rm -rf " .. H.sh_quote(dir))
print("ok")
