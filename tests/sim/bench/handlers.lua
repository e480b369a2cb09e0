-- Micro-benchmark of the simulator's Lua side alone (no HTTP): loads tests/sim/lua with a stand-in
-- for the host's native module and times M.handle for typical requests.
-- usage: metasync run tests/sim/bench/handlers.lua [CERTS] [LUA_DIR]
local task = require("metasync.task")
local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local n = tonumber(arg and arg[1]) or 20000
local dir = arg and arg[2] or (here .. "../lua")
package.path = dir .. "/?.lua;" .. package.path
local t0 = os.time() + 0.0
package.preload.simcore = function()
  return { now = task.now, time = function() return t0 + task.now() end, http_date = function() return "" end,
    inflight = function() return 0 end, max_inflight = function() return 0 end, reset_inflight = function() end }
end
local M = dofile(dir .. "/sim.lua")
local c0 = os.clock()
M.init({ "--certs", tostring(n), "--seed", "1" })
print(string.format("init --certs %d: %.2f s cpu, Lua heap %.0f MB", n, os.clock() - c0, collectgarbage("count") / 1024))

local SC = { login = "sim-admin", password = "sim-password", customeruri = "sim-customer" }
local KF = { authorization = "Basic c2ltLWFkbWluOnNpbS1wYXNzd29yZA==", ["x-keyfactor-requested-with"] = "APIClient" }

local function req(api, method, path, query, body)
  local args, list = {}, {}
  for k, v in (query or ""):gmatch("([^&=]+)=?([^&]*)") do
    v = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    args[k] = v
    list[#list + 1] = { k, v }
  end
  return { api = api, method = method, path = path, query = query or "", args = args, arg_list = list,
    headers = api == "keyfactor" and KF or SC, body = body or "", remote = "127.0.0.1:1" }
end

local function bench(name, count, make)
  local c = os.clock()
  local bytes = 0
  for i = 1, count do
    local r = M.handle(make(i))
    if r.status ~= 200 and r.status ~= 204 then error(name .. ": " .. r.status .. " " .. r.body:sub(1, 200)) end
    bytes = bytes + #r.body
  end
  local dt = os.clock() - c
  print(string.format("%-34s %6d x  %8.1f us each  %7.0f bytes", name, count, dt / count * 1e6, bytes / count))
end

local ids = {}
for _, c in ipairs(require("util").decode(M.handle(req("sectigo", "GET", "/__sim/state")).body).sectigo.certificates) do
  ids[#ids + 1] = c.id
end
bench("sectigo list size=200", 50, function(i) return req("sectigo", "GET", "/api/ssl/v1", "size=200&position=" .. (i - 1) * 200) end)
bench("sectigo list size=200 (2nd pass)", 50, function(i) return req("sectigo", "GET", "/api/ssl/v1", "size=200&position=" .. (i - 1) * 200) end)
bench("sectigo list status=Issued", 20, function(i)
  return req("sectigo", "GET", "/api/ssl/v1", "status=Issued&size=200&position=" .. (i - 1) * 200) end)
bench("sectigo details", 2000, function(i) return req("sectigo", "GET", "/api/ssl/v1/" .. ids[i % #ids + 1]) end)
bench("sectigo details (2nd pass)", 2000, function(i) return req("sectigo", "GET", "/api/ssl/v1/" .. ids[i % #ids + 1]) end)
bench("keyfactor list 100 +md", 50, function(i)
  return req("keyfactor", "GET", "/KeyfactorAPI/Certificates", "includeMetadata=true&ReturnLimit=100&PageReturned=" .. i) end)
bench("keyfactor list 100 +md (2nd pass)", 50, function(i)
  return req("keyfactor", "GET", "/KeyfactorAPI/Certificates", "includeMetadata=true&ReturnLimit=100&PageReturned=" .. i) end)
bench("keyfactor query IssuerDN 100 +md", 20, function(i)
  return req("keyfactor", "GET", "/KeyfactorAPI/Certificates",
    "includeMetadata=true&ReturnLimit=100&QueryString=IssuerDN%20-contains%20%22Sectigo%22&PageReturned=" .. i) end)
bench("keyfactor sort NotAfter desc 100", 20, function(i)
  return req("keyfactor", "GET", "/KeyfactorAPI/Certificates",
    "ReturnLimit=100&SortField=NotAfter&SortAscending=1&PageReturned=" .. i) end)
bench("keyfactor details", 2000, function(i) return req("keyfactor", "GET", "/KeyfactorAPI/Certificates/" .. (i % 1000 + 1)) end)
local y = os.date("!%Y")
bench("sectigo report 30-day window", 20, function(i)
  local m = (i - 1) % 12 + 1
  return req("sectigo", "POST", "/api/report/v1/ssl-certificates", "",
    string.format('{"certificateDateAttribute":"5","from":"%s-%02d-01","to":"%s-%02d-28"}', y - 1, m, y - 1, m)) end)
bench("keyfactor PUT metadata", 2000, function(i)
  local r = req("keyfactor", "PUT", "/KeyfactorAPI/Certificates/Metadata", "",
    string.format('{"Id":%d,"Metadata":{"CostCenter":"CC-%d"}}', i % 1000 + 1, i))
  return r
end)
print(string.format("Lua heap after: %.0f MB", collectgarbage("count") / 1024))
