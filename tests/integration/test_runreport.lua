-- --report FILE: one row per considered certificate (CSV read back by an independent RFC 4180
-- parser, with commas, quotes and line breaks in values; JSON lines), written atomically;
-- metricsFile in the Prometheus text format; a refused login naming the keys to check.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

local function has(text, want, what)
  if not text:find(want, 1, true) then error(string.format("%s: '%s' not in:\n%s", what, want, text), 2) end
end

-- A world whose values need quoting: a comma, quotes and a line break in a CN and a value.
local TRICKY_CN = 'www.acme.test, "primary"\nsecond line'
local TRICKY_CC = 'CC-1, "east"\nfloor 2'
local w = H.world()
w.keyfactor.certificates[1].IssuedCN = TRICKY_CN
w.sectigo.customFields[1].input.type = "TEXT_MULTI_LINE" -- Cost Center may hold a line break here
w.sectigo.certificates[1].customFields[1].value = TRICKY_CC
-- one more Sectigo-issued Keyfactor certificate, left out by the site's include hook
table.insert(w.keyfactor.certificates, { Id = 7, SerialNumber = "0E000001", IssuedCN = "skip.acme.test",
  IssuerDN = w.keyfactor.certificates[1].IssuerDN, NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z" })
H.reset(w)
local dir = H.config_dir { metricsFile = "__METRICS__" }
local home = dir:match("^(.*)/config$")
local prom = home .. "/metasync.prom"
-- metricsFile as an absolute path (the config is written before the path is known)
local cfgtext = H.read(dir .. "/config.json"):gsub("__METRICS__", prom)
H.write(dir .. "/config.json", cfgtext)
local scripts = home .. "/site"
os.execute("mkdir -p " .. H.sh_quote(scripts))
H.write(scripts .. "/sctokf.lua", [[
local policy = require("metasync.stock").load("sctokf")
local stock_include = policy.include
function policy.include(cert, ctx)
  if cert.IssuedCN == "skip.acme.test" then return false end
  return stock_include(cert, ctx)
end
return policy:run()
]])

-- 1. sctokf --report FILE.csv, one certificate update refused by Keyfactor.
H.faults { scripts = { { endpoint = "keyfactor.metadata", method = "PUT",
  responses = { { status = 400, body = '{"ErrorCode":"0xA0110007","Message":"Simulated refusal, with a comma"}' } } } } }
local csvfile = home .. "/run report.csv"
local rc, out, err = H.run(dir, "sctokf", "--scripts " .. H.sh_quote(scripts) .. " --report " .. H.sh_quote(csvfile))
H.call("DELETE", H.sectigo .. "/__sim/faults")
H.eq(rc, 2, "one refused update: exit code\n" .. out .. err)
assert(not H.read(csvfile .. ".tmp"), "no .tmp left behind")
local text = assert(H.read(csvfile), "the report was written: " .. err)
local rows = H.parse_csv(text)
local header = table.concat(rows[1], ",")
H.eq(header, "run_id,serial,keyfactor_id,sectigo_id,cn,action,changes,error", "CSV header")
local run_id = out:match("run id: +(%S+)")
local by = {}
for i = 2, #rows do
  local r = {}
  for j, name in ipairs(rows[1]) do r[name] = rows[i][j] end
  H.eq(#rows[i], 8, "every row has every column (row " .. i .. ")")
  H.eq(r.run_id, run_id, "run id in every row")
  by[r.serial] = r
end
-- considered: 0A... (tricky), 0B..., FFFF0001 (unmatched); skipped: 0E000001. The revoked and
-- the DigiCert ones are not listed by the query. Serials are in their normalised form.
H.eq(#rows - 1, 4, "one row per considered or skipped certificate:\n" .. text)
H.eq(by["FFFF0001"].action, "unmatched", "unmatched row")
H.eq(by["FFFF0001"].keyfactor_id, "6", "unmatched row names the Keyfactor id")
H.eq(by["E000001"].action, "skipped", "skipped row")
H.eq(by["E000001"].cn, "skip.acme.test", "skipped row names its CN")
local a, b = by["A112233"], by["B445566"]
assert(a and b, "both matched certificates have a row:\n" .. text)
H.eq(a.cn, TRICKY_CN, "a CN with a comma, quotes and a line break reads back whole")
H.eq(a.sectigo_id, "5001", "Sectigo id")
H.eq(a.keyfactor_id, "1", "Keyfactor id")
-- exactly one of the two writes was refused (whichever came first)
local failed, updated = a.action == "failed" and a or b, a.action == "failed" and b or a
H.eq(failed.action, "failed", "a failed row")
H.eq(updated.action, "updated", "an updated row")
has(failed.error, "Keyfactor PUT /Certificates/Metadata -> HTTP 400: Simulated refusal, with a comma", "error text")
local changes = assert(json.decode(updated.changes), "changes column is JSON: " .. tostring(updated.changes))
local cc
for _, c in ipairs(changes) do if c.field == "CostCenter" then cc = c end end
assert(cc, "CostCenter among the changes: " .. updated.changes)
H.eq(cc.to, "keyfactor", "the side written")
if updated == a then
  H.eq(cc.old, "old", "old value")
  H.eq(cc.new, TRICKY_CC, "a new value with a comma, quotes and a line break reads back whole")
else
  H.eq(cc.old, json.null, "no old value is null")
  H.eq(cc.new, "CC-2", "new value")
end

-- the metrics file
local metrics = assert(H.read(prom), "metricsFile written")
assert(not H.read(prom .. ".tmp"), "no metrics .tmp left behind")
has(metrics, "# HELP metasync_last_run_exit_code ", "HELP line")
has(metrics, "# TYPE metasync_last_run_exit_code gauge", "TYPE line")
has(metrics, 'metasync_last_run_exit_code{direction="sctokf"} 2\n', "exit code")
has(metrics, 'metasync_last_run_certificates{direction="sctokf",outcome="considered"} 3\n', "considered")
has(metrics, 'metasync_last_run_certificates{direction="sctokf",outcome="skipped"} 1\n', "skipped")
has(metrics, 'metasync_last_run_certificates{direction="sctokf",outcome="failed"} 1\n', "failed")
has(metrics, 'metasync_last_run_certificates{direction="sctokf",outcome="updated"} 1\n', "updated")
assert(metrics:find('metasync_last_run_duration_seconds{direction="sctokf"} [%d.]+\n'), metrics)
for line in metrics:gmatch("[^\n]+") do
  assert(line:match("^# HELP metasync_[%w_]+ ") or line:match("^# TYPE metasync_[%w_]+ gauge$")
    or line:match('^metasync_[%w_]+{direction="%w+"[^}]*} [%d.]+$'), "exposition format: " .. line)
end

-- 2. The second run, as JSON lines: what is left is written, the rest unchanged.
local jsonl = home .. "/report.jsonl"
rc, out, err = H.run(dir, "sctokf", "--scripts " .. H.sh_quote(scripts) .. " --report " .. H.sh_quote(jsonl))
H.eq(rc, 0, "second run: " .. out .. err)
local n, actions = 0, {}
for line in assert(H.read(jsonl)):gmatch("[^\n]+") do
  local r = assert(json.decode(line), "a JSON line: " .. line)
  n = n + 1
  actions[r.serial] = r.action
  assert(json.is_array(r.changes), "changes is a list")
  if r.serial == "A112233" then H.eq(r.cn, TRICKY_CN, "CN in JSON") end
end
H.eq(n, 4, "four JSON lines")
H.eq(actions[failed.serial], "updated", "the refused one is written now")
H.eq(actions[updated.serial], "unchanged", "the other is unchanged")
-- a kftosc run adds its samples and keeps sctokf's
rc = H.run(dir, "kftosc")
metrics = H.read(prom)
has(metrics, 'metasync_last_run_exit_code{direction="sctokf"} 0\n', "sctokf's samples kept")
has(metrics, 'metasync_last_run_exit_code{direction="kftosc"} ' .. rc .. "\n", "kftosc's added")

-- 3. A report file that cannot be written stops the run before any request.
H.clear_stats()
rc, out, err = H.run(dir, "sctokf", "--report " .. H.sh_quote(home .. "/no/such/dir/r.csv"))
H.eq(rc, 1, "unwritable report: exit code")
has(err, "--report " .. home .. "/no/such/dir/r.csv: cannot write", "unwritable report: message")
H.eq(H.stats().total or 0, 0, "no request made")

-- 4. A refused login at pre-flight says so and names the keys; the metrics say exit 1.
rc, out, err = H.run(dir, "sctokf", "", "METASYNC_SECTIGO_PASSWORD=nope")
H.eq(rc, 1, "bad password: exit code")
has(err, "Sectigo refused the credentials (HTTP 401): check sectigoLogin, sectigoPassword and sectigoCustomerUri (or sectigoOAuth)", "auth message")
has(err, "METASYNC_SECTIGO_PASSWORD is set", "the variable that replaced the password is named")
has(err, "Sectigo GET /api/customField/v2 -> HTTP 401", "the API's words")
assert(not err:find("cannot reach", 1, true), err)
has(H.read(prom), 'metasync_last_run_exit_code{direction="sctokf"} 1\n', "a fatal run is in the metrics")
rc, out, err = H.run(dir, "sctokf", "", "METASYNC_KEYFACTOR_PASSWORD=nope")
H.eq(rc, 1, "bad Keyfactor password: exit code")
has(err, "Keyfactor refused the credentials (HTTP 401): check keyfactorLogin/keyfactorPassword (or keyfactorOAuth)", "Keyfactor auth message")
print("ok")
