-- The plan is applied with bounded concurrency: by default at least 8 requests are in flight
-- at once; -j 1 keeps it to one. Uses a generated world with simulated latency.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

local fields = assert(json.decode(assert(H.read(H.source_root .. "/config/fields.json"))))
local banned = assert(H.read(H.source_root .. "/config/bannedcharacters.json"))

H.reset({ certs = 80, seed = 5 })
H.faults { global = { latency_ms = 50 } }
local dir = H.config_dir({ sectigoPageSize = 25, keyfactorPageSize = 100 }, fields, banned)
local rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 0, "default run: " .. err)
local peak = H.stats().max_inflight
assert(peak >= 8, "expected at least 8 requests in flight by default, saw " .. tostring(peak))
assert(out:find("updated: +[1-9]"), out)

H.reset({ certs = 80, seed = 5 })
H.faults { global = { latency_ms = 5 } }
rc, out, err = H.run(dir, "sctokf", "-j 1")
H.eq(rc, 0, "-j 1 run: " .. err)
-- The simulator lowers its in-flight counter only after the response has left, so a client
-- that fires its next request at once can briefly be counted twice: allow that, not more.
local serial_peak = H.stats().max_inflight
assert(serial_peak >= 1 and serial_peak <= 2, "in flight with -j 1: " .. tostring(serial_peak))
print("ok")
