-- Exit codes and failure handling: config errors (exit 1, no request), a failed Sectigo list
-- page aborts the run (no partial index, nothing written), a failed certificate update gives
-- exit 2 with the vendor's text, transient 503s are retried, and no secret reaches any output.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")

H.reset(H.world())

-- config errors: one line naming file and key, exit 1, no request at all
local dir = H.config_dir()
H.write(dir .. "/config.json", '{\n  "Config": {\n    "sectigoLogin": "x",,\n  }\n}')
H.clear_stats()
local rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 1, "malformed JSON exit code")
assert(err:find("config.json: malformed JSON: line 3 column", 1, true), err)
dir = H.config_dir({ keyfactorAPIUrl = require("metasync.json").null })
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 1, "missing keyfactorAPIUrl exit code")
assert(err:find("config.json: key 'keyfactorAPIUrl': expected a URL", 1, true), err)
local fields = H.fields()
fields.CustomFields[1].keyfactorDataType = 9
rc, out, err = H.run(H.config_dir(nil, fields), "sctokf")
H.eq(rc, 1, "bad keyfactorDataType exit code")
assert(err:find("key 'CustomFields[1].keyfactorDataType': expected an integer 1..7", 1, true), err)
-- a log directory that cannot be created is a configuration error too (never a silent run
-- without logs): one line naming the key, exit 1
local blocker = H.tmpdir() .. "/file"
H.write(blocker, "not a directory")
rc, out, err = H.run(H.config_dir({ logDirectory = blocker .. "/logs" }), "sctokf")
H.eq(rc, 1, "unwritable logDirectory exit code")
assert(err:find("key 'logDirectory'", 1, true), err)
H.eq(H.stats().total, 0, "requests made with a bad config")

-- a failed Sectigo list page: exit 1, no writes (pages of 2 over 4 issued certificates); a 500
-- is retried by default, so retries are off here to see the failure itself
dir = H.config_dir({ maxRetries = 0 })
H.faults { scripts = { { endpoint = "sectigo.list", method = "GET",
  responses = { { pass = true }, { status = 500, body = '{"code":-1,"description":"Unknown error."}' } } } } }
H.clear_stats()
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 1, "failed list page exit code")
assert(err:find("HTTP 500: -1 Unknown error.", 1, true), err)
-- zero writes of any kind: no field definition (keyfactor.metadatafields) either
local function no_writes(what)
  local st = H.stats()
  H.eq(H.writes(st), 0, what .. ": writes")
  for ep, n in pairs(st.writes_by_endpoint or {}) do
    error(string.format("%s: %d write(s) to %s", what, n, ep))
  end
end
no_writes("failed Sectigo list page")
H.call("DELETE", H.sectigo .. "/__sim/faults")

-- the same for a failed Keyfactor query page (pages of 2 over 5 Sectigo-issued certificates)
H.reset(H.world())
H.faults { scripts = { { endpoint = "keyfactor.certificates", method = "GET",
  responses = { { pass = true }, { status = 500, body = '{"ErrorCode":"0xA0110001","Message":"Simulated outage"}' } } } } }
-- In a dry run nothing was written when the page fails: exit 1, as any failure before a write.
rc, out, err = H.run(dir, "sctokf", "--dry-run")
H.eq(rc, 1, "failed Keyfactor page exit code (dry run)")
assert(err:find("Simulated outage", 1, true), err)
no_writes("failed Keyfactor query page")
-- In a real run the field definitions were already written when page 2 fails: the run ends
-- with exit 2, and the summary says it is incomplete and names the page.
H.call("DELETE", H.sectigo .. "/__sim/faults")
H.reset(H.world())
H.faults { scripts = { { endpoint = "keyfactor.certificates", method = "GET",
  responses = { { pass = true }, { status = 500, body = '{"ErrorCode":"0xA0110001","Message":"Simulated outage"}' } } } } }
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 2, "failed Keyfactor page after writes began: exit code")
assert(out:find("INCOMPLETE: listing Keyfactor certificates failed: Keyfactor /Certificates: page 2: ", 1, true), out)
assert(out:find("Simulated outage", 1, true), out)
assert(H.writes(H.stats()) > 0, "the definitions were written before the page failed")
H.call("DELETE", H.sectigo .. "/__sim/faults")

-- a field definition Keyfactor refuses once writes have begun: not "fatal before any write"
-- (exit 2, not 1); that field's values are skipped, every other field still syncs.
H.reset(H.world())
H.faults { scripts = { { endpoint = "keyfactor.metadatafields", method = "POST",
  responses = { { status = 400, body = '{"ErrorCode":"0xA0110007","Message":"Simulated field refusal"}' } } } } }
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 2, "failed field definition exit code: " .. err)
assert(out:find("fields failed: +1"), out)
assert(out:find("RenewalDate: cannot create Keyfactor field: Keyfactor POST /MetadataFields -> HTTP 400: Simulated field refusal", 1, true), out)
local st = H.state()
H.eq(H.kf_field(st, "RenewalDate"), nil, "refused field not created")
assert(H.kf_field(st, "BudgetCode"), "BudgetCode created")
assert(H.kf_field(st, "SectigoID"), "SectigoID created")
H.eq(H.kf_field(st, "CostCenter").Description, "Cost center charged", "CostCenter definition updated")
local k1 = H.kf_cert(st, 1)
H.eq(k1.Metadata.CostCenter, "CC-1", "CostCenter synced")
H.eq(k1.Metadata.BudgetCode, "42", "BudgetCode synced")
H.eq(k1.Metadata.SectigoID, "5001", "SectigoID synced")
H.eq(k1.Metadata.RenewalDate, nil, "RenewalDate skipped")
H.call("DELETE", H.sectigo .. "/__sim/faults")

-- a failed certificate update: the others are applied, exit 2, reason in the summary
H.reset(H.world())
H.faults { scripts = { { endpoint = "keyfactor.metadata", method = "PUT",
  responses = { { status = 400, body = '{"ErrorCode":"0xA0110007","Message":"Simulated refusal"}' } } } } }
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 2, "partial failure exit code")
assert(out:find("failed: +1"), out)
assert(out:find("Keyfactor PUT /Certificates/Metadata -> HTTP 400: Simulated refusal", 1, true), out)
assert(out:find("updated: +1"), out)
H.call("DELETE", H.sectigo .. "/__sim/faults")
-- the next run completes the job
rc, out = H.run(dir, "sctokf")
H.eq(rc, 0, "rerun exit code")
assert(out:find("updated: +1"), out)

-- transient 503s are retried and the run succeeds
H.reset(H.world())
H.faults { scripts = { { endpoint = "sectigo.details", method = "GET",
  responses = { { status = 503, retry_after = 0 }, { status = 503 } } } } }
rc, out, err = H.run(H.config_dir({ maxRetries = 3 }), "sctokf")
H.eq(rc, 0, "retried run: " .. err)
H.call("DELETE", H.sectigo .. "/__sim/faults")

-- An unexpected error after the first write (a site hook that raises once the field
-- definitions are written): exit 2, never 1, with a summary naming what stopped the run, and
-- the run's record in the state closed with that exit code.
H.reset(H.world())
dir = H.config_dir()
assert(os.execute("mkdir -p " .. H.sh_quote(dir .. "/scripts")))
H.write(dir .. "/scripts/sctokf.lua", [[
local policy = require("metasync.stock").load("sctokf")
function policy.keyfactor_query() error("site hook broke") end
return policy:run()
]])
H.clear_stats()
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 2, "error after writes: exit code (" .. err .. ")")
assert(H.writes(H.stats()) > 0, "the field definitions were written first")
assert(out:find("INCOMPLETE: stopped: ", 1, true) and out:find("site hook broke", 1, true), out)
local st = assert(require("metasync.db").open(H.home(dir) .. "/state/metasync.db", { readonly = true }))
local last = st:row("SELECT finished, exit_code FROM runs ORDER BY seq DESC LIMIT 1")
assert(last and last.finished and last.exit_code == 2, "run record closed: " .. tostring(last and last.finished))
st:close()

-- no secret in any output or log, even at trace level
H.reset(H.world())
dir = H.config_dir()
rc, out, err = H.run(dir, "sctokf", "--log-level trace -v")
H.eq(rc, 0, "trace run")
local all = out .. err .. (H.read(H.main_log(dir)) or "") .. (H.read(H.errors_log(dir)) or "")
assert(#all > 1000, "trace output present")
assert(not all:find("sim-password", 1, true), "password leaked")
assert(not all:find(require("metasync.keyfactor").base64("DOMAIN\\sim-admin:sim-password"), 1, true), "Authorization leaked")
print("ok")
