-- metasync.http over TLS, against metasync-sim --tls-* serving testserver.lua. Run by
-- tls_test.sh as `metasync run test_tls.lua DIR MODE`: DIR holds ca.pem, client.pem, client.key
-- and other-client.pem/.key (signed by another CA); MODE is "mutual" (the server demands a
-- client certificate from the CA) or "server" (it does not ask for one).
local http = require "metasync.http"
local json = require "metasync.json"

local dir, mode = arg and arg[1], arg and arg[2]
-- Certificates and TLS servers come from tests/http/tls_test.sh; without them this is misuse.
assert(dir, "usage: run through tests/http/tls_test.sh (needs certificates and TLS servers)")
assert(mode == "mutual" or mode == "server", "MODE must be mutual or server")
local base = assert(os.getenv("METASYNC_SIM_SECTIGO"), "run through tests/with-sim.sh")
assert(base:match("^https://127%.0%.0%.1:%d+$"), "the ready line gives an https URL: " .. base)
local ca, cert, key = dir .. "/ca.pem", dir .. "/client.pem", dir .. "/client.key"

local function get(opts)
  local req = { url = base .. "/echo?tls=1", timeout = 10 }
  for k, v in pairs(opts) do req[k] = v end
  return http.request(req)
end

local function fails(what, r, err, kind, kinds)
  assert(r == nil, what .. ": expected a failure, got status " .. tostring(r and r.status))
  assert(kinds[kind], what .. ": kind " .. tostring(kind) .. " (" .. tostring(err) .. ")")
  print("ok   " .. what .. ": " .. kind .. " (" .. tostring(err) .. ")")
end

local function succeeds(what, r, err, kind)
  assert(r, what .. ": " .. tostring(err) .. " (" .. tostring(kind) .. ")")
  assert(r.status == 200, what .. ": status " .. tostring(r.status))
  local e = assert(json.decode(r.body))
  assert(e.path == "/echo" and e.args.tls == "1", what .. ": echo " .. r.body)
  print("ok   " .. what)
end

-- (a) Verification is on by default: the test CA is not among the system's trusted roots.
local r, err, kind = get { cert = cert, key = key }
fails("without cafile the server is not trusted", r, err, kind, { tls = true })

if mode == "mutual" then
  -- (b) Trusting the server is not enough: it demands a client certificate. With TLS 1.3 the
  -- server's refusal comes after the client's side of the handshake, as a dropped connection.
  r, err, kind = get { cafile = ca }
  fails("without a client certificate", r, err, kind, { tls = true, reset = true })
  r, err, kind = get { cafile = ca, cert = dir .. "/other-client.pem", key = dir .. "/other-client.key" }
  fails("with a client certificate from another CA", r, err, kind, { tls = true, reset = true })
  -- (c) Server trusted, client certificate from the CA: the request goes through.
  succeeds("cafile + client certificate", get { cafile = ca, cert = cert, key = key })
  -- (d) insecure skips verifying the server, but the client certificate is still demanded.
  succeeds("insecure + client certificate", get { insecure = true, cert = cert, key = key })
  r, err, kind = get { insecure = true }
  fails("insecure without a client certificate", r, err, kind, { tls = true, reset = true })
else
  -- A server that does not ask for client certificates: trusting its CA is all it takes.
  succeeds("cafile alone", get { cafile = ca })
  succeeds("insecure alone", get { insecure = true })
  -- Plain HTTP to a TLS port is not answered as HTTP.
  local plain, perr = http.request { url = base:gsub("^https:", "http:") .. "/echo", timeout = 10 }
  assert(plain == nil or plain.status ~= 200, "plain HTTP got an answer: " .. tostring(perr))
  print("ok   plain HTTP to the TLS port fails")
end
print("test_tls (" .. mode .. "): ok")
