-- metasync.http: request shapes, headers, bodies, methods, blocking and yielding use.
package.path = arg[0]:match("^(.*)/") .. "/?.lua;" .. package.path
local http = require "metasync.http"
local json = require "metasync.json"
local task = require "metasync.task"
local S = require "common"

-- Blocking use at top level (the script itself is a task, so run one from a plain coroutine too).
local r = assert(S.get("/echo?a=1&b=two", {method = "PUT", body = '{"x":1}',
  headers = {["X-Test"] = "yes", ["Content-Type"] = "application/json"}}))
assert(r.status == 200)
local e = assert(json.decode(r.body))
assert(e.method == "PUT" and e.body == '{"x":1}' and e.args.a == "1" and e.args.b == "two")
assert(e.headers["x-test"] == "yes")
assert(e.headers["expect"] == nil, "no Expect: 100-continue")
-- Header lookup is case-insensitive.
assert(r.headers["Content-Type"] == r.headers["content-type"] and r.headers["CONTENT-TYPE"])

-- The standard request headers: a User-Agent, and every content encoding this libcurl decodes;
-- a caller's own User-Agent or Accept-Encoding replaces them (one of each on the wire).
local sent = e.headers
assert(sent["user-agent"] and sent["user-agent"]:match("^metasync/"), tostring(sent["user-agent"]))
assert(sent["accept-encoding"] and sent["accept-encoding"]:find("gzip", 1, true), tostring(sent["accept-encoding"]))
local own = json.decode(assert(S.get("/echo", {headers = {["user-agent"] = "probe/1", ["Accept-Encoding"] = "identity"}})).body)
assert(own.headers["user-agent"] == "probe/1" and own.headers["accept-encoding"] == "identity",
  json.encode(own.headers))
local gz = assert(S.get("/gzip"))
assert(gz.status == 200 and gz.body == ("hello, gzip world\n"):rep(3), "gzip body not decoded: " .. #gz.body)

-- Outside any task (a plain coroutine): the call blocks and still works.
local co = coroutine.wrap(function() return S.get("/echo").status end)
assert(co() == 200)

-- Methods: HEAD has no body; DELETE and POST carry theirs.
local h = assert(S.get("/big?bytes=1000", {method = "HEAD"}))
assert(h.status == 200 and h.body == "")
local p = assert(S.get("/echo", {method = "POST", body = "a=b"}))
assert(json.decode(p.body).method == "POST" and json.decode(p.body).body == "a=b")
local d = assert(S.get("/echo", {method = "DELETE"}))
assert(json.decode(d.body).method == "DELETE")

-- A big body arrives whole; max_body refuses larger ones without raising.
local big = assert(S.get("/big?bytes=3000000"))
assert(#big.body == 3000000)
local nb, err, kind = S.get("/big?bytes=100000", {max_body = 1000})
assert(nb == nil and kind == "too_big" and err:find("exceeds"), err)

-- Transport errors return nil, message, kind: never raise.
local nc, cerr, ckind = http.request{url = "http://127.0.0.1:1/x"}
assert(nc == nil and ckind == "connect" and cerr:find("127.0.0.1:1", 1, true), cerr)
local nu, uerr = http.request{url = "::not a url::"}
assert(nu == nil and uerr)

-- Misuse raises.
assert(not pcall(http.request, {}))
assert(not pcall(http.request, {url = S.base, method = "get me"}))
assert(not pcall(http.request, {url = S.base, headers = {["X"] = "a\r\nInjected: 1"}}))
assert(not pcall(http.request, {url = S.base, timeout = -1}))

-- Connections are reused: sequential requests reach the server from one client address:port.
local remotes, n = {}, 0
for _ = 1, 5 do
  local x = json.decode(assert(S.get("/echo")).body)
  assert(x.remote and x.remote:match(":%d+$"), "the server reports the client's address")
  if not remotes[x.remote] then n = n + 1 end
  remotes[x.remote] = true
end
assert(n == 1, "5 sequential requests used " .. n .. " connections")

-- A proxy: the request reaches the proxy (our server) with the absolute URL, both when given as an
-- option and through the standard http_proxy variable.
local px = assert(http.request{url = "http://metasync.invalid/echo", proxy = S.base})
assert(px.status == 404 and px.body:find("http://metasync.invalid/echo", 1, true), px.body)
local exe = require("metasync.options").executable
local script = os.tmpname()
local f = assert(io.open(script, "w"))
f:write('local r = require("metasync.http").request{url = "http://metasync.invalid/echo"}\n',
        'print(r and r.status, r and r.body)\n')
f:close()
local p = assert(io.popen("http_proxy=" .. S.base .. " '" .. exe .. "' run " .. script))
local out = p:read("a")
p:close()
os.remove(script)
assert(out:find("404", 1, true) and out:find("metasync.invalid", 1, true), "http_proxy ignored: " .. out)

-- TLS is verified: talking TLS to a plain-HTTP port fails as a TLS error, it does not fall back.
local tls, terr, tkind = http.request{url = S.base:gsub("^http:", "https:") .. "/echo"}
assert(tls == nil and tkind == "tls", tostring(terr) .. " " .. tostring(tkind))

-- Inside tasks the same calls yield.
local t = task.spawn(function() return S.get("/echo").status end)
assert(select(2, t:join()) == 200)
print("test_basic: ok")
