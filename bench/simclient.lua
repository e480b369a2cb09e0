-- The simulator's side of the HTTP benchmarks (http-cpu.lua, inflight-latency.lua), loaded with
-- dofile from beside them: its URLs (from tests/with-sim.sh), the default credentials of
-- tests/sim/README.md as request headers, and ids of Sectigo certificates that exist.
local http = require("metasync.http")
local keyfactor = require("metasync.keyfactor")

local M = {}
M.sectigo = assert(os.getenv("METASYNC_SIM_SECTIGO"), "run through tests/with-sim.sh")
M.keyfactor = assert(os.getenv("METASYNC_SIM_KEYFACTOR"), "run through tests/with-sim.sh")

M.SC_HEADERS = { login = "sim-admin", password = "sim-password", customerUri = "sim-customer",
  Accept = "application/json" }
M.SC_PUT_HEADERS = { login = "sim-admin", password = "sim-password", customerUri = "sim-customer",
  Accept = "application/json", ["Content-Type"] = "application/json" }
M.KF_HEADERS = { Authorization = "Basic " .. keyfactor.base64("DOMAIN\\sim-admin:sim-password"),
  ["x-keyfactor-requested-with"] = "APIClient", Accept = "application/json",
  ["Content-Type"] = "application/json" }

-- ids() -> the sslIds of the first 1000 certificates listed (the generated world skips some
-- ids), 200 a page.
function M.ids()
  local ids = {}
  for pos = 0, 800, 200 do
    local r = assert(http.request { url = M.sectigo .. "/api/ssl/v1?size=200&position=" .. pos, headers = M.SC_HEADERS })
    for id in r.body:gmatch('"sslId":(%d+)') do ids[#ids + 1] = tonumber(id) end
  end
  assert(#ids > 0, "no certificates listed")
  return ids
end

return M
