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
H.eq(H.stats().total, 0, "requests made with a bad config")

-- a failed Sectigo list page: exit 1, no writes (pages of 2 over 4 issued certificates)
dir = H.config_dir()
H.faults { scripts = { { endpoint = "sectigo.list", method = "GET",
  responses = { { pass = true }, { status = 500, body = '{"code":-1,"description":"Unknown error."}' } } } } }
H.clear_stats()
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 1, "failed list page exit code")
assert(err:find("HTTP 500: -1 Unknown error.", 1, true), err)
H.eq(H.stats().writes_by_endpoint["keyfactor.metadata"], nil, "certificate writes after a failed page")
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

-- no secret in any output or log, even at trace level
H.reset(H.world())
dir = H.config_dir()
rc, out, err = H.run(dir, "sctokf", "--log-level trace -v")
H.eq(rc, 0, "trace run")
local all = out .. err .. (H.read(dir .. "/logs/metasync.log") or "") .. (H.read(dir .. "/logs/metasync-errors.log") or "")
assert(#all > 1000, "trace output present")
assert(not all:find("sim-password", 1, true), "password leaked")
assert(not all:find(require("metasync.keyfactor").base64("DOMAIN\\sim-admin:sim-password"), 1, true), "Authorization leaked")
print("ok")
