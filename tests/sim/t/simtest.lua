-- Shared helpers for the simulator's own tests (run by `metasync run` under with-sim.sh).
local http = require("metasync.http")
local json = require("metasync.json")

local T = { json = json, failures = 0, dir = (arg and arg[0] or ""):match("^(.*/)") or "" }
T.S = assert(os.getenv("METASYNC_SIM_SECTIGO"), "METASYNC_SIM_SECTIGO not set")
T.K = assert(os.getenv("METASYNC_SIM_KEYFACTOR"), "METASYNC_SIM_KEYFACTOR not set")
T.KBASE = T.K:gsub("/KeyfactorAPI$", "")
T.SC_HEADERS = { login = "sim-admin", password = "sim-password", customerUri = "sim-customer" }
T.KF_AUTH = "Basic c2ltLWFkbWluOnNpbS1wYXNzd29yZA==" -- sim-admin:sim-password

function T.request(method, url, headers, body)
  if os.getenv("SIMTEST_DEBUG") then io.stderr:write(method, " ", url, "\n") end
  if os.getenv("SIMTEST_CURL") then return T.curl(method, url, headers, body) end
  local r, err = http.request { method = method, url = url, headers = headers or {}, body = body, timeout = 20 }
  if not r then return { status = 0, headers = {}, body = "", err = err } end
  return r
end

-- Debugging aid (SIMTEST_CURL=1): the same request through the curl command line.
function T.curl(method, url, headers, body)
  local tmp = os.tmpname()
  local args = { "curl", "-s", "-m", "20", "-X", method, "-D", tmp .. ".h", "-o", tmp .. ".b" }
  if method == "HEAD" then args[#args + 1] = "-I"; args[10] = "/dev/null" end
  for k, v in pairs(headers or {}) do args[#args + 1] = "-H '" .. k .. ": " .. v:gsub("'", "'\\''") .. "'" end
  if body then
    local f = assert(io.open(tmp, "wb")); f:write(body); f:close()
    args[#args + 1] = "--data-binary @" .. tmp
  end
  args[#args + 1] = "'" .. url:gsub("'", "%%27") .. "'"
  os.execute(table.concat(args, " "))
  local hf, bf = io.open(tmp .. ".h"), method ~= "HEAD" and io.open(tmp .. ".b")
  local r = { status = 0, headers = {}, body = bf and bf:read("a") or "" }
  for line in (hf and hf:read("a") or ""):gmatch("[^\r\n]+") do
    local st = line:match("^HTTP/%S+ (%d+)")
    if st then r.status = tonumber(st) end
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then r.headers[k:lower()] = v end
  end
  if hf then hf:close() end
  if bf then bf:close() end
  os.remove(tmp); os.remove(tmp .. ".h"); os.remove(tmp .. ".b")
  return r
end

local function merge(a, b)
  local t = {}
  for k, v in pairs(a or {}) do t[k] = v end
  for k, v in pairs(b or {}) do t[k] = v end
  return t
end

local function body_of(b) return type(b) == "table" and json.encode(b) or b end

function T.sc(method, path, body, headers)
  return T.request(method, T.S .. path, merge(merge(T.SC_HEADERS, body and { ["Content-Type"] = "application/json" }), headers), body_of(body))
end

function T.kf(method, path, body, headers)
  local h = merge({ Authorization = T.KF_AUTH, ["x-keyfactor-requested-with"] = "APIClient" },
    body and { ["Content-Type"] = "application/json" })
  return T.request(method, T.K .. path, merge(h, headers), body_of(body))
end

function T.ctl(method, path, body)
  return T.request(method, T.S .. "/__sim/" .. path, { ["Content-Type"] = "application/json" }, body_of(body))
end

function T.decode(r)
  local v, err = json.decode(r.body or "")
  if v == nil then error("response is not JSON (" .. tostring(err) .. "): " .. tostring(r.body):sub(1, 200), 2) end
  return v
end

local function show(v)
  if type(v) == "table" then
    local ok, s = pcall(json.encode, v)
    return ok and s or tostring(v)
  end
  return type(v) == "string" and string.format("%q", v) or tostring(v)
end

function T.eq(got, want, what)
  if got ~= want then error(string.format("%s: expected %s, got %s", what or "value", show(want), show(got)), 2) end
end

function T.ok(cond, what)
  if not cond then error((what or "assertion") .. " failed", 2) end
  return cond
end

-- Checks an error response: status and the vendor's body shape.
function T.sc_error(r, status, code, what)
  T.eq(r.status, status, (what or "") .. " status")
  local b = T.decode(r)
  T.eq(b.code, code, (what or "") .. " code")
  T.ok(type(b.description) == "string" and b.description ~= "", (what or "") .. " has a description")
  return b
end

function T.kf_error(r, status, what)
  T.eq(r.status, status, (what or "") .. " status")
  local b = T.decode(r)
  T.ok(type(b.ErrorCode) == "string" and b.ErrorCode:match("^0x%x+$"), (what or "") .. " ErrorCode 0x...")
  T.ok(type(b.Message) == "string" and b.Message ~= "", (what or "") .. " Message")
  return b
end

function T.fixture(name)
  local f = assert(io.open(T.dir .. "fixtures/" .. name, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Loads a fixture world through POST /__sim/reset.
function T.world(name)
  local r = T.ctl("POST", "reset", T.fixture(name))
  if r.status ~= 200 then error("loading " .. name .. " failed: " .. r.status .. " " .. r.body) end
  return T.decode(r)
end

function T.test(name, fn)
  local ok, err = pcall(fn)
  if ok then print("ok   " .. name) else
    T.failures = T.failures + 1
    print("FAIL " .. name .. ": " .. tostring(err))
  end
end

function T.done()
  if T.failures > 0 then
    print(T.failures .. " test(s) failed")
    os.exit(1)
  end
  print("all passed")
end

function T.find(list, key, value)
  for _, x in ipairs(list) do if x[key] == value then return x end end
end

return T
