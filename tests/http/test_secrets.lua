-- Header values of Authorization, password and login never reach a log, even at trace level.
package.path = arg[0]:match("^(.*)/") .. "/?.lua;" .. package.path
local log = require "metasync.log"
local rest = require "metasync.rest"
local S = require "common"

local dir = os.tmpname()
os.remove(dir)
assert(log.setup{level = "trace", file = dir .. "/main.log", errors_file = dir .. "/err.log", stderr = false})
local secrets = {"Basic c2VjcmV0LXVzZXI6aHVudGVyMg==", "hunter2-password", "admin-login-name"}
local r = assert(S.get("/echo", {headers = {Authorization = secrets[1], password = secrets[2], login = secrets[3]}}))
assert(r.status == 200)
-- Through the REST client too, including a failing request that logs its error.
local c = rest.new{name = "T", base = S.base, retries = 1, backoff_base = 0.01,
  headers = {password = secrets[2], login = secrets[3], Authorization = secrets[1]}}
assert(c:request("GET", "/echo"))
c:request("GET", "/seq/s?codes=503")
log.setup{level = "info", stderr = false, file = false, errors_file = false}

local f = assert(io.open(dir .. "/main.log"))
local text = f:read("a")
f:close()
assert(text:find("> authorization: ***", 1, true) or text:find("Authorization: ***", 1, true),
  "trace log shows the header, masked")
assert(text:find("/echo", 1, true), "trace log has the request")
for _, s in ipairs(secrets) do
  assert(not text:find(s, 1, true), "secret leaked into the log: " .. s)
end
os.execute("rm -rf '" .. dir .. "'")
print("test_secrets: ok")
