-- What a run tells the operator: failures grouped by reason in the summary, a refused login
-- at pre-flight naming the keys to check, the progress line (mode, throttle, ETA, erase), the
-- per-certificate rows of --report, and the metrics file's text.
local report = require("metasync.report")
local progress = require("metasync.progress")
local runreport = require("metasync.runreport")
local metrics = require("metasync.metrics")
local json = require("metasync.json")
local log = require("metasync.log")
log.setup { level = "fatal", file = false, errors_file = false, stderr = false }

local function has(text, want, what)
  if not text:find(want, 1, true) then error(string.format("%s: '%s' not in:\n%s", what, want, text), 2) end
end
local function lacks(text, bad, what)
  if text:find(bad, 1, true) then error(string.format("%s: '%s' should not be in:\n%s", what, bad, text), 2) end
end

-- 1. Grouping: ids the clients append and serials do not split a reason.
local N = report.normalise
assert(N("Keyfactor PUT /Certificates/Metadata -> HTTP 400: bad value. (0xA0110000) (certificate 123)")
  == "Keyfactor PUT /Certificates/Metadata -> HTTP 400: bad value. (0xA0110000)", "certificate id stripped, error code kept")
assert(N("Sectigo PUT /api/ssl/v1 -> HTTP 400: -135 inactive (sslId 5)") == "Sectigo PUT /api/ssl/v1 -> HTTP 400: -135 inactive")
assert(N("x (certificate revoked)") == "x (certificate revoked)", "only ids are stripped")
assert(N("Sectigo GET /api/ssl/v1/5001: customFields is an object") == N("Sectigo GET /api/ssl/v1/77: customFields is an object"))
assert(N("Certificate with Id 12 was not found.") == N("Certificate with Id 99 was not found."))
assert(N("serial 0A:11:22:33 refused") == N("serial 0B:44:55:66 refused"))
assert(N("serial 000A112233FF refused") == N("serial 0B4455669900 refused"))
assert(N("field Environment: 'Development' is not allowed") ~= N("field Environment: 'Staging' is not allowed"),
  "values stay: they are the reason")

local r = report.new("sctokf")
local refusal = "Keyfactor PUT /Certificates/Metadata -> HTTP 400: The value for metadata field 'Environment' is not one of the allowed values. (0xA0110000)"
for i = 1, 243 do r:fail(string.format("%08X", 0x10000000 + i), refusal .. string.format(" (certificate %d)", i)) end
r:fail("0BADF00D", "Sectigo GET /api/ssl/v1/5009 -> HTTP 404: not found")
for i = 1, 3 do r:fail("AA" .. i, "field BudgetCode: not a number") end
assert(#r.failed == 247, "#r.failed counts every failure: " .. #r.failed)
assert(r.failed[1].serial == "10000001" and r.failed[101] == nil, "the first 100 kept as records")
local text = table.concat(r:lines(), "\n")
has(text, "failed:                  247", "count")
has(text, "    243 certificates: " .. refusal .. " (e.g. 10000001, 10000002, 10000003, 10000004, 10000005, ...)", "grouped")
lacks(text, "(certificate 7)", "ids stripped in the group line")
has(text, "    3 certificates: field BudgetCode: not a number (e.g. AA1, AA2, AA3)", "second group, all examples, no ...")
has(text, "    0BADF00D: Sectigo GET /api/ssl/v1/5009 -> HTTP 404: not found", "a reason met once reads as before")
assert(text:find("243 certificates", 1, true) < text:find("3 certificates: field", 1, true), "largest group first")
local lines = 0
for _ in text:gmatch("\n    ") do lines = lines + 1 end
assert(lines == 3, "one line per reason, not per certificate: " .. lines)
assert(r:exit_code() == 2)
-- many distinct reasons: only the first GROUPS_SHOWN are printed, the rest summed
r = report.new("sctokf")
for i = 1, 30 do r:fail("S" .. i, "reason number " .. string.rep("x", i)) end
text = table.concat(r:lines(), "\n")
has(text, "... and 10 more certificates, 10 other reasons (see the errors log)", "tail of many reasons")

-- 2. A refused login at pre-flight says so and names the keys to check.
local noenv = function() return nil end
local e401 = "Sectigo GET /api/customField/v2 -> HTTP 401: Unauthorized"
local m = report.preflight("Sectigo", e401, {}, noenv)
has(m, "Sectigo refused the credentials (HTTP 401): check sectigoLogin, sectigoPassword and sectigoCustomerUri (or sectigoOAuth)", "Sectigo 401")
has(m, e401, "the API's own words follow")
lacks(m, "cannot reach", "not a reachability problem")
m = report.preflight("Keyfactor", "Keyfactor GET /MetadataFields -> HTTP 403: Forbidden", {}, noenv)
has(m, "Keyfactor refused the credentials (HTTP 403): check keyfactorLogin/keyfactorPassword (or keyfactorOAuth)", "Keyfactor 403")
m = report.preflight("Keyfactor", "Keyfactor GET /MetadataFields -> Keyfactor POST /oauth/token -> HTTP 400: invalid_client",
  { UseKeyfactorOAuth = true }, noenv)
has(m, "Keyfactor refused the credentials (HTTP 400): check keyfactorOAuth (tokenUrl, clientId, clientSecret)", "OAuth invalid_client")
m = report.preflight("Sectigo", e401, {}, function(n) return n == "METASYNC_SECTIGO_PASSWORD" and "x" or nil end)
has(m, "METASYNC_SECTIGO_PASSWORD is set and replaces sectigoPassword", "the environment variable that wins is named")
m = report.preflight("Sectigo", "Sectigo GET /api/customField/v2 -> transport error: connection refused", {}, noenv)
assert(m == "cannot reach Sectigo: Sectigo GET /api/customField/v2 -> transport error: connection refused", m)
m = report.preflight("Sectigo", "Sectigo GET /api/customField/v2 -> HTTP 4013: odd", {}, noenv)
has(m, "cannot reach Sectigo", "HTTP 4013 is not 401")

-- 3. Progress: which display, how often, what it says, and that it is erased.
assert(progress.mode({ stderr_tty = true }, function() return "xterm" end) == "tty")
assert(progress.mode({ stderr_tty = true }, function() return "dumb" end) == "log")
assert(progress.mode({ stderr_tty = true }, noenv) == "log", "no TERM")
assert(progress.mode({ stderr_tty = false }, function() return "xterm" end) == "log", "not a terminal")
assert(progress.mode({ progress = true }, noenv) == "tty", "--progress forces it")
assert(progress.mode({ progress = true, quiet = true, stderr_tty = true }, function() return "xterm" end) == "log", "--quiet wins")
assert(progress.mode({ stderr_tty = true, verbose = true }, function() return "xterm" end) == "log", "-v streams lines")

local sink = { text = "", writes = 0 }
function sink.write(self, ...) for _, s in ipairs { ... } do self.text = self.text .. s end; self.writes = self.writes + 1 end
function sink.flush() end
local rep = report.new("sctokf")
local ctx = { report = rep, stage = "the Keyfactor listing", index = { size = 1000 } }
local clock = 0
local p = progress.new { ctx = ctx, mode = "tty", out = sink, width = 120, now = function() return clock end }
for i = 1, 40 do -- 2 s of ticks every 50 ms, 10 certificates listed and matched per tick
  clock = i * 0.05
  rep.considered, rep.matched, rep.updated = i * 10, i * 10, i * 8
  p:tick()
end
assert(p.draws <= 9 and p.draws >= 7, "at most 4 redraws a second: " .. p.draws)
local last = sink.text:match("([^\r]*)\r$")
-- drawn at 0.05, 0.30, ..., 1.80 s: the last one shows the counters of 1.80 s
has(last, "syncing: 360 listed, 360/1000 matched, 288 written, 0 failed, 200/s, ETA 3s", "status line")
assert(#last < 120, "never wider than the terminal")
p:stop()
assert(sink.text:sub(-4) == "\r\27[K", "erased at the end")
local narrow = progress.line({ phase = "syncing", listed = 123456, matched = 95000, expected = 100000, written = 94000, failed = 3 }, 412, 65, 80)
assert(#narrow <= 79 and narrow:find("ETA 1m05s", 1, true), "a narrow terminal keeps the ETA: " .. narrow)
-- with Keyfactor's total known, the ETA follows the listing instead
local s = { phase = "syncing", listed = 500, matched = 100, expected = 1000, total = 1500, written = 0, failed = 0 }
local meter = progress.meter()
meter:update(0, { phase = "syncing", listed = 0, matched = 0 })
local rate, eta = meter:update(10, s)
assert(rate == 50 and eta == 20, "ETA from x-total-count: " .. tostring(eta))
assert(progress.duration(7322) == "2h02m" and progress.duration(59.6) == "1m00s")

-- not on a terminal: an INFO line every 30 s, nothing on stderr
local logged = {}
local real_info = log.info
log.info = function(logger, fmt, ...) if logger == "progress" then logged[#logged + 1] = string.format(fmt, ...) end end
sink.text = ""
clock = 0
p = progress.new { ctx = ctx, mode = "log", out = sink, now = function() return clock end }
for i = 1, 380 do clock = i * 0.25; p:tick() end -- 95 s
log.info = real_info
assert(#logged == 3, "one INFO line per 30 s: " .. #logged)
has(logged[1], "syncing: 400 listed", "the INFO line")
p:stop()
assert(sink.text == "", "nothing drawn off a terminal")

-- 4. --report rows: one per considered certificate, decided as they come.
local dir = os.tmpname()
os.remove(dir)
-- (also when an assertion fails: the Lua state's close runs it)
local cleanup_at_close = setmetatable({}, { __gc = function() os.execute("rm -rf '" .. dir .. "'") end })
os.execute("mkdir -p " .. dir)
local function rows_of(path)
  local f = assert(io.open(path, "rb"))
  local t = f:read("a")
  f:close()
  return t
end
rep = report.new("sctokf")
rep.run_id = "run1"
local rows = assert(runreport.open(dir .. "/r.jsonl", "run1", rep))
rep.rows = rows
local kf1 = { Id = 11, IssuedCN = "a.test" }
rep:skip("0C", { Id = 13, IssuedCN = "c.test" })
rep:unmatched_serial("0D", { Id = 14 })
local p1, p2, p3 = { serial = "0A", ssl_id = 501, kf = kf1 }, { serial = "0B", ssl_id = 502, kf = { Id = 12 } },
  { serial = "0E", ssl_id = 505, kf = { Id = 15 } }
rep:pair_begin(p1); rep:pair_begin(p2); rep:pair_begin(p3)
rep:changed("0A", "Keyfactor id 11", { { field = "CostCenter", old = "old", new = "CC-1" }, { field = "BudgetCode", old = nil, new = 42 } })
rep:fail("0B", "Keyfactor PUT -> HTTP 400: nope (certificate 12)")
rep:pair_end(p2); rep:pair_end(p1)
assert(io.open(dir .. "/r.jsonl", "rb") == nil, "nothing at FILE before the end")
rep:unchanged_pair(p3); rep:pair_end(p3)
assert(rows:close(true))
assert(io.open(dir .. "/r.jsonl.tmp", "rb") == nil, "the .tmp is gone")
local got = {}
for line in rows_of(dir .. "/r.jsonl"):gmatch("[^\n]+") do got[#got + 1] = assert(json.decode(line)) end
assert(#got == 5, "five rows: " .. #got)
assert(got[1].action == "skipped" and got[1].serial == "0C" and got[1].keyfactor_id == 13 and got[1].cn == "c.test")
assert(got[2].action == "unmatched" and got[2].keyfactor_id == 14 and got[2].sectigo_id == json.null)
assert(got[3].action == "failed" and got[3].serial == "0B" and got[3].error:find("nope", 1, true))
assert(got[4].action == "updated" and got[4].sectigo_id == 501 and got[4].run_id == "run1" and #got[4].changes == 2)
assert(got[4].changes[1].field == "CostCenter" and got[4].changes[1].old == "old" and got[4].changes[1].new == "CC-1"
  and got[4].changes[1].to == "keyfactor")
assert(got[4].changes[2].old == json.null and got[4].changes[2].new == "42", "no value is null; values as text")
assert(got[5].action == "unchanged" and got[5].serial == "0E")
assert(rep.unchanged == 1 and rep.skipped == 1 and rep.unmatched == 1, "counting goes on as before")

-- a pair no hook spoke for is unchanged; once the change limit tripped it may have been held
rep = report.new("sctokf")
rows = assert(runreport.open(dir .. "/r.csv", "run2", rep))
rep.rows = rows
rep.limit = { tripped = function() return true end }
local p4 = { serial = "0F", ssl_id = 9, kf = { Id = 16, IssuedCN = 'x, "y"\nz' } }
rep:pair_begin(p4); rep:pair_end(p4)
local p5 = { serial = "10", ssl_id = 10, kf = { Id = 17 } }
rep:pair_begin(p5); rep:held(p5, { { field = "F", old = "a", new = "b" } }); rep:pair_end(p5)
-- a stopped run's pairs still in flight get a row too
local p6 = { serial = "11", ssl_id = 11, kf = { Id = 18 } }
rep:pair_begin(p6)
assert(rows:close(true))
local csvtext = rows_of(dir .. "/r.csv")
has(csvtext, "run_id,serial,keyfactor_id,sectigo_id,cn,action,changes,error\r\n", "CSV header")
has(csvtext, 'run2,0F,16,9,"x, ""y""\nz",unchanged or held,,\r\n', "RFC 4180 quoting")
has(csvtext, 'run2,10,17,10,,held,"[{""field"":""F"",""new"":""b"",""old"":""a"",""to"":""keyfactor""}]",\r\n', "held row with its changes")
has(csvtext, "run2,11,18,11,,interrupted,,the run stopped before it was finished\r\n", "in flight at the end")

-- a run that stops before it considered anything leaves neither FILE nor FILE.tmp
rows = assert(runreport.open(dir .. "/none.csv", "run3"))
assert(rows:close(false))
assert(io.open(dir .. "/none.csv", "rb") == nil and io.open(dir .. "/none.csv.tmp", "rb") == nil)
assert(runreport.open(dir .. "/no/such/dir/r.csv", "x") == nil, "an unwritable path is an error at open")

-- 5. Metrics: Prometheus text, a direction label, other directions' samples kept.
rep = report.new("sctokf")
rep.considered, rep.matched, rep.updated, rep.unchanged, rep.unmatched = 206, 191, 190, 1, 15
rep:fail("X", "boom")
local mine = metrics.samples("sctokf", rep, 2, { sectigo = { requests = 300, retries = 2 }, keyfactor = { requests = 400, retries = 0 } }, 1700000000)
local old = '# HELP metasync_last_run_exit_code x\n# TYPE metasync_last_run_exit_code gauge\n' ..
  'metasync_last_run_exit_code{direction="kftosc"} 0\nmetasync_last_run_exit_code{direction="sctokf"} 1\n' ..
  'metasync_unknown_metric{direction="kftosc"} 5\n'
local out = metrics.render(mine, old, "sctokf")
has(out, "# HELP metasync_last_run_exit_code ", "HELP")
has(out, "# TYPE metasync_last_run_exit_code gauge\n", "TYPE")
has(out, 'metasync_last_run_exit_code{direction="kftosc"} 0\n', "the other direction kept")
has(out, 'metasync_last_run_exit_code{direction="sctokf"} 2\n', "this run's exit code")
lacks(out, 'metasync_last_run_exit_code{direction="sctokf"} 1', "this direction's old sample replaced")
lacks(out, "metasync_unknown_metric", "only metasync's own metrics")
has(out, 'metasync_last_run_certificates{direction="sctokf",outcome="failed"} 1\n', "failed count")
has(out, 'metasync_last_run_certificates{direction="sctokf",outcome="considered"} 206\n', "considered")
has(out, 'metasync_last_run_requests{direction="sctokf",api="keyfactor"} 400\n', "requests by API")
has(out, 'metasync_last_run_timestamp_seconds{direction="sctokf"} 1700000000\n', "timestamp")
has(out, 'metasync_last_run_success{direction="sctokf"} 0\n', "success")
for line in out:gmatch("[^\n]+") do
  assert(line:match("^# HELP metasync_[%w_]+ .+$") or line:match("^# TYPE metasync_[%w_]+ gauge$")
    or line:match('^metasync_[%w_]+{direction="%w+"[^}]*} %-?[%d.]+$'), "a valid exposition line: " .. line)
end
os.execute("rm -rf " .. dir)
print("ok")
