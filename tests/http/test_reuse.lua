-- Finished requests hand their curl handle to the next one: nothing of one request (method, body,
-- headers, limits, errors) may leak into the next. Connections outlive a lull in traffic, and a
-- long run of requests is driven to the end with the counts right. (Counts only, no timings.)
package.path = arg[0]:match("^(.*)/") .. "/?.lua;" .. package.path
local http = require "metasync.http"
local json = require "metasync.json"
local task = require "metasync.task"
local S = require "common"

local function echo(opts)
  local r = assert(S.get("/echo", opts))
  assert(r.status == 200, r.status)
  return json.decode(r.body), r
end

-- One request at a time from one task: each one gets the handle the previous one left.
local e = echo{method = "PUT", body = '{"a":1}', headers = {["X-One"] = "1", ["Content-Type"] = "application/json"}}
assert(e.method == "PUT" and e.body == '{"a":1}' and e.headers["x-one"] == "1")
e = echo{}
assert(e.method == "GET" and e.body == "", "a GET after a PUT: " .. e.method .. " " .. e.body)
assert(e.headers["x-one"] == nil and e.headers["content-type"] == nil and e.headers["content-length"] == nil,
  "headers of the previous request leaked")
e = echo{method = "DELETE"}
assert(e.method == "DELETE" and e.body == "" and e.headers["content-length"] == nil)
e = echo{method = "POST", body = "x=1"}
assert(e.method == "POST" and e.body == "x=1")
e = echo{method = "DELETE", body = "gone"}
assert(e.method == "DELETE" and e.body == "gone")
e = echo{}
assert(e.method == "GET" and e.body == "")
local h = assert(S.get("/big?bytes=500", {method = "HEAD"}))
assert(h.status == 200 and h.body == "")
local g = assert(S.get("/big?bytes=500"))
assert(#g.body == 500, "a GET after a HEAD has no body: " .. #g.body)
e = echo{method = "PATCH", body = "p"}
assert(e.method == "PATCH" and e.body == "p")
e = echo{method = "OPTIONS"}
assert(e.method == "OPTIONS" and e.body == "")

-- Limits and outcomes of one request are not the next one's.
local tb, _, kind = S.get("/big?bytes=5000", {max_body = 100})
assert(tb == nil and kind == "too_big")
assert(#assert(S.get("/big?bytes=5000")).body == 5000, "max_body stuck to the handle")
local to, _, tkind = S.get("/delay?ms=2000", {timeout = 0.2})
assert(to == nil and tkind == "timeout")
local slow = assert(S.get("/delay?ms=400"), "the previous request's timeout stuck to the handle")
assert(slow.status == 200)
local nc, _, ckind = http.request{url = "http://127.0.0.1:1/"}
assert(nc == nil and ckind == "connect")
local fine = assert(S.get("/echo"))
assert(fine.status == 200)
local r503 = assert(S.get("/status?code=503&retry_after=7"))
assert(r503.status == 503 and r503.headers["retry-after"] == "7")
local after = assert(S.get("/echo"))
assert(after.headers["retry-after"] == nil, "response headers leaked into the next response")
local big = assert(S.get("/big?bytes=1000000"))
assert(#big.body == 1000000)
assert(#assert(S.get("/big?bytes=10")).body == 10)

-- Connections are kept through a lull: 24 concurrent requests open 24 connections; 30 sequential
-- ones follow (one transfer at a time); a second burst of 24 finds its connections still open.
local function burst(n)
  local ts, seen = {}, {}
  for i = 1, n do
    ts[i] = task.spawn(function() return json.decode(assert(S.get("/delay?ms=500&id=" .. i)).body).remote end)
  end
  for i = 1, n do
    local ok, remote = ts[i]:join()
    assert(ok and remote, tostring(remote))
    seen[remote] = true
  end
  return seen
end
local first = burst(24)
local nfirst = 0
for _ in pairs(first) do nfirst = nfirst + 1 end
assert(nfirst > 1, "24 concurrent requests used " .. nfirst .. " connection(s)")
for _ = 1, 30 do assert(S.get("/echo")) end
local new = 0
for remote in pairs(burst(24)) do
  if not first[remote] then new = new + 1 end
end
-- (on a machine too slow to have all 24 in flight at once, the first burst used fewer)
assert(new <= 24 - nfirst, new .. " connections were opened again after the lull")

-- A long run with a cap on the host: every request made once, never more than the cap in flight.
local key = S.base:match("//([^/]+)")
local before = http.stats()[key].requests
http.limit(S.base, {concurrency = 16})
local i = 0
local results, errors = task.map(function() i = i + 1; return i <= 600 and i or nil end, 40, function(k)
  local r = assert(S.get("/echo?k=" .. k))
  return json.decode(r.body).args.k
end)
http.limit(S.base, {concurrency = 0})
local k1, e1 = next(errors)
assert(k1 == nil, tostring(e1))
for k = 1, 600 do assert(results[k] == tostring(k), "answer " .. k .. " went astray") end
local st = http.stats()[key]
assert(st.requests - before == 600, "requests made: " .. (st.requests - before))
assert(st.inflight == 0 and st.parked == 0)
print("test_reuse: ok")
