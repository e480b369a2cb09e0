-- A script may end while its tasks still sleep or wait on requests (parked by a host limit, or in
-- flight): the process exits cleanly and frees them (the ASan build checks for leaks).
package.path = arg[0]:match("^(.*)/") .. "/?.lua;" .. package.path
local http = require "metasync.http"
local task = require "metasync.task"
local S = require "common"

http.limit(S.base, {concurrency = 1})
for i = 1, 3 do
  task.spawn(function() return S.get("/delay?ms=2000&id=" .. i) end) -- one in flight, two parked
end
task.spawn(function() task.sleep(60) end)
task.sleep(0.2) -- let them start
assert(http.stats()[S.base:match("//([^/]+)")].parked == 2)
print("test_exit_pending: ok")
