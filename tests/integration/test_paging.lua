-- Keyfactor Command v10 binds only the documented pq.* names of the certificate query (and
-- v25 only the bare ones): a run lists everything against either. A server that ignores the
-- paging parameters altogether makes the run fail loudly instead of syncing page 1 only.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local B = require("bigworld")

local world = B.world(150, 5) -- about 119 Keyfactor certificates the stock policy considers
local fields = B.fields(H)
local function settings(t) H.call("POST", H.sectigo .. "/__sim/settings", t) end

local counts = {}
for _, names in ipairs({ "any", "v10", "v25" }) do
  H.reset(world)
  settings { keyfactorQueryNames = names }
  local dir = H.config_dir({ sectigoPageSize = 20, keyfactorPageSize = 50 }, fields)
  local rc, out, err = H.run(dir, "sctokf")
  H.eq(rc, 0, names .. ": exit code: " .. err .. out)
  counts[names] = tonumber(out:match("considered: +(%d+)"))
  -- a second run over what the first wrote: every certificate seen again, nothing to write
  H.clear_stats()
  rc, out = H.run(dir, "sctokf")
  H.eq(rc, 0, names .. ": second run")
  assert(out:find("updated: +0"), names .. ": second run writes nothing:\n" .. out)
  H.eq(tonumber(out:match("considered: +(%d+)")), counts[names], names .. ": considered again")
  os.execute("rm -rf " .. H.sh_quote(dir))
end
assert(counts.any > 100, "certificates considered: " .. tostring(counts.any))
H.eq(counts.v10, counts.any, "v10 server: every page listed")
H.eq(counts.v25, counts.any, "v25 server: every page listed")

-- a Keyfactor that ignores paging: the listing fails and says why; the run is not a success
H.reset(world)
settings { keyfactorIgnorePaging = true }
local dir = H.config_dir({ sectigoPageSize = 20, keyfactorPageSize = 50 }, fields)
local rc, out, err = H.run(dir, "sctokf")
assert(rc == 1 or rc == 2, "ignored Keyfactor paging: exit code " .. tostring(rc))
assert((out .. err):find("ignores the paging parameters", 1, true), out .. err)

-- a Sectigo that ignores paging: the index is incomplete, so nothing may be written (exit 1)
H.reset(world)
settings { sectigoIgnorePaging = true }
H.clear_stats()
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 1, "ignored Sectigo paging: exit code")
assert(err:find("Sectigo certificates: page 2 holds only items of earlier pages: the server ignores the paging parameters", 1, true), err)
H.eq(H.writes(H.stats()), 0, "no write with an incomplete Sectigo index")
os.execute("rm -rf " .. H.sh_quote(dir))
print("ok")
