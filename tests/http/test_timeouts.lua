-- Timeouts fire: total timeout on a slow response; transfers keep going for other tasks.
package.path = arg[0]:match("^(.*)/") .. "/?.lua;" .. package.path
local task = require "metasync.task"
local S = require "common"

local t0 = task.now()
local r, err, kind = S.get("/delay?ms=3000", {timeout = 0.3})
local took = task.now() - t0
assert(r == nil and kind == "timeout", tostring(err))
assert(took >= 0.29, "timed out too early: " .. took)
assert(took < 2.9, "the timeout did not fire before the response: " .. took)

-- A timed-out request does not disturb others in flight.
local slow = task.spawn(function() return S.get("/delay?ms=3000", {timeout = 0.2}) end)
local fine = task.spawn(function() return S.get("/delay?ms=100", {timeout = 5}) end)
local _, a, _, ak = slow:join()
local _, b = fine:join()
assert(a == nil and ak == "timeout")
assert(b and b.status == 200)

-- The connect timeout is separate from the total one: it bounds only the connection, so a
-- response slower than it still arrives when the total timeout allows.
local c, cerr = S.get("/delay?ms=1200", {connect_timeout = 0.3, timeout = 10})
assert(c and c.status == 200, "connect_timeout capped the whole transfer: " .. tostring(cerr))
local nc, nerr, nk = require("metasync.http").request{url = "http://127.0.0.1:1/", connect_timeout = 0.5}
assert(nc == nil and nk == "connect", nerr)

-- Faults from the server side: a reset or truncated body is an error, not a short success.
local rr, rerr, rk = S.get("/reset-conn?after=10&bytes=100000")
assert(rr == nil and rk == "reset", tostring(rerr) .. " " .. tostring(rk))
local tr, terr = S.get("/truncate?after=10&bytes=1000")
assert(tr == nil and terr, "a truncated body must fail")
print("test_timeouts: ok")
