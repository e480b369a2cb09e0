-- Shared by the HTTP tests: the test server's base URL and its counters.
local http = require "metasync.http"
local json = require "metasync.json"
local M = {}
M.base = assert(os.getenv("METASYNC_SIM_SECTIGO"), "run through tests/with-sim.sh")
function M.get(path, opts)
  local req = {url = M.base .. path}
  for k, v in pairs(opts or {}) do req[k] = v end
  return http.request(req)
end
function M.stats()
  local r = assert(http.request{url = M.base .. "/__test/stats"})
  return assert(json.decode(r.body))
end
-- The server counts a request as finished a moment after the client has its answer, so wait for
-- earlier requests to drain (only this stats call left in flight) before resetting the maximum.
function M.reset()
  for _ = 1, 250 do
    if M.stats().inflight <= 1 then break end
    require("metasync.task").sleep(0.02)
  end
  assert(http.request{url = M.base .. "/__test/reset"})
end
return M
