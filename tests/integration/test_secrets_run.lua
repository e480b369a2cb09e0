-- No secret reaches any output of a run. The servers answer 401 with bodies that echo what the
-- request carried: the password in free text ("login failed for password ..."), the Basic
-- credential with and without its header name, the OAuth client secret, the bearer token. Those
-- bodies reach the summary's failure reasons (stdout), fatal messages (stderr), the log files and
-- the REPL; every one of them must show "***" where the secret was. The secrets are the
-- simulator's own (its password, its client secret) plus a token the test hands out itself, so
-- it knows what to look for.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

local PW = "sim-password" -- both APIs' password in the simulator
local BASIC = require("metasync.keyfactor").base64("DOMAIN\\sim-admin:" .. PW)
local CS = "sim-secret" -- the simulator's OAuth client secret
local TOKEN = "tok-Echoed-7f3a9c2e41d8" -- handed out by a scripted token response below
local SECRETS = { PW, BASIC, CS, TOKEN }

-- clean(what, text...): no secret in any of the texts, nor a token the simulator issued
-- ("sim." and 48 hex digits)
local function clean(what, ...)
  for i = 1, select("#", ...) do
    local text = select(i, ...)
    for _, s in ipairs(SECRETS) do
      if text:find(s, 1, true) then
        error(string.format("%s: '%s' shown (output %d):\n%s", what, s, i, text), 2)
      end
    end
    local tok = text:match("sim%.%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x")
    if tok then error(string.format("%s: issued token %s shown (output %d)", what, tok, i), 2) end
  end
end
-- has(what, text, part): the echo did reach this output (masked), so the check above meant something
local function has(what, text, part)
  if not text:find(part, 1, true) then error(string.format("%s: no '%s' in:\n%s", what, part, text), 2) end
end

local function faults(scripts)
  H.call("DELETE", H.sectigo .. "/__sim/faults")
  if scripts then H.faults { scripts = scripts } end
end

-- Each API's error shape, quoting the request's credentials (well under the 300 characters of a
-- failure reason).
local SC_ECHO = { code = -16, description = "login failed for password " .. PW
  .. "; headers login=sim-admin password=" .. PW .. " customerUri=sim-customer; Authorization: Basic " .. BASIC }
local KF_ECHO = { ErrorCode = "0xA0110001", Message = "Authentication failed for DOMAIN\\sim-admin with password "
  .. PW .. " (credential " .. BASIC .. ")" }
local function oauth_config()
  local kf_root = H.keyfactor:match("^(https?://[^/]+)")
  return H.config_dir({
    sectigoOAuth = { tokenUrl = H.sectigo .. "/oauth/token", clientId = "sim-client", clientSecret = CS },
    keyfactorOAuth = { tokenUrl = kf_root .. "/oauth/token", clientId = "sim-client", clientSecret = CS,
      scopesCsv = "", audience = "" },
  })
end

-- 1. sctokf at trace level, everything on stderr too: one certificate's details GET and the
-- other's metadata PUT answered 401 with echoes. The run completes with both failures in the
-- summary.
H.reset(H.world())
faults {
  { endpoint = "sectigo.details", method = "GET", responses = { { status = 401, body = SC_ECHO } } },
  { endpoint = "keyfactor.metadata", method = "PUT", responses = { { status = 401, body = KF_ECHO } } },
}
local dir = H.config_dir()
local rc, out, err, logs = H.run(dir, "sctokf", "-v --log-level trace")
H.eq(rc, 2, "sctokf with 401s: exit code\n" .. out .. err)
has("sctokf summary", out, "login failed for password ***")
has("sctokf summary", out, "with password ***")
has("sctokf errors log", H.read(H.errors_log(dir)) or "", "login failed for password ***")
clean("sctokf", out, err, logs)
-- what the run journaled, as `metasync report` prints it
rc, out, err = H.run(dir, "report")
H.eq(rc, 0, "report exit code: " .. err)
clean("report", out, err)

-- 2. kftosc: the Sectigo update answered 401 with the echo.
H.reset(H.world())
faults { { endpoint = "sectigo.update", method = "PUT", responses = { { status = 401, body = SC_ECHO } } } }
dir = H.config_dir()
rc, out, err, logs = H.run(dir, "kftosc", "-v")
H.eq(rc, 2, "kftosc with a 401: exit code\n" .. out .. err)
has("kftosc summary", out, "login failed for password ***")
clean("kftosc", out, err, logs)

-- 3. Pre-flight: a 401 from either API stops the run (exit 1) with the API's words on stderr.
H.reset(H.world())
faults { { endpoint = "sectigo.customfields", method = "GET", responses = { { status = 401, body = SC_ECHO } } } }
dir = H.config_dir()
rc, out, err, logs = H.run(dir, "sctokf")
H.eq(rc, 1, "Sectigo pre-flight 401: exit code")
has("Sectigo pre-flight stderr", err, "login failed for password ***")
clean("Sectigo pre-flight", out, err, logs)
faults { { endpoint = "keyfactor.metadatafields", method = "GET", responses = { { status = 401, body = KF_ECHO } } } }
rc, out, err, logs = H.run(dir, "sctokf")
H.eq(rc, 1, "Keyfactor pre-flight 401: exit code")
has("Keyfactor pre-flight stderr", err, "with password ***")
clean("Keyfactor pre-flight", out, err, logs)

-- 4. OAuth: the token endpoint refuses the client, quoting the secret it was sent.
H.reset(H.world())
faults { { endpoint = "sectigo.token", method = "POST", responses = { { status = 401,
  body = { error = "invalid_client", error_description = "client_secret " .. CS .. " is not valid for sim-client" } } } } }
dir = oauth_config()
rc, out, err, logs = H.run(dir, "sctokf", "-v")
H.eq(rc, 1, "token refused: exit code")
has("token refused stderr", err, "client_secret *** is not valid")
clean("token refused", out, err, logs)

-- 5. OAuth: a token is issued (ours, so we know it), then every request with it is refused
-- with a body quoting it; the client fetches a fresh one once and gives up on the second 401.
local function token_then_echo()
  local issued = { status = 200, body = { access_token = TOKEN, expires_in = 3600, token_type = "Bearer" } }
  local refused = { status = 401, body = { code = -16, description = "bearer " .. TOKEN
    .. " unknown (Authorization: Bearer " .. TOKEN .. ")" } }
  faults {
    { endpoint = "sectigo.token", method = "POST", responses = { issued, issued } },
    { endpoint = "sectigo.customfields", method = "GET", responses = { refused, refused } },
  }
end
H.reset(H.world())
token_then_echo()
dir = oauth_config()
rc, out, err, logs = H.run(dir, "sctokf", "-v --log-level trace")
H.eq(rc, 1, "token refused by the API: exit code")
has("token echoed stderr", err, "bearer *** unknown")
clean("token echoed", out, err, logs)

-- 6. The REPL: the clients, the configuration, their secrets one by one, and a failing call
-- whose message quotes them, as a result, through print and as an error.
local function repl(d, lines, want)
  local input = d .. "/.stdin"
  H.write(input, table.concat(lines, "\n") .. "\n")
  local rc2, o, e = H.run(d, "repl <" .. H.sh_quote(input))
  -- off a terminal a failed chunk makes the exit status 1
  H.eq(rc2, want or 0, "repl exit code: " .. e)
  return o, e
end
H.reset(H.world())
faults { { endpoint = "sectigo.customfields", method = "GET", responses = { { status = 401, body = SC_ECHO },
  { status = 401, body = SC_ECHO }, { status = 401, body = SC_ECHO } } } }
dir = H.config_dir()
out, err = repl(dir, {
  "sectigo", "keyfactor", "config",
  "sectigo.rest.headers.password", "keyfactor.rest.headers.Authorization",
  "config.sectigoPassword, config.keyfactorPassword",
  "print(config.sectigoPassword, keyfactor.rest.headers.Authorization)",
  "sectigo:custom_fields()",
  "print(select(2, sectigo:custom_fields()))",
  "error(select(2, sectigo:custom_fields()))",
}, 1)
has("repl result", out, "login failed for password ***")
has("repl error", err, "login failed for password ***")
clean("repl", out, err)

H.reset(H.world())
token_then_echo()
dir = oauth_config()
out, err = repl(dir, {
  "config.sectigoOAuth", "config.sectigoOAuth.clientSecret", "config.keyfactorOAuth.clientSecret",
  "sectigo:custom_fields()",
})
has("repl OAuth result", out, "bearer *** unknown")
clean("repl OAuth", out, err)

-- 7. A script's error, as the host reports it on stderr (first line, or all of it with -v).
local script = H.tmpdir() .. "/fails.lua"
H.write(script, 'local log = require("metasync.log")\nlog.add_secret("Run-Err-S3cret")\n'
  .. 'error("login failed for password Run-Err-S3cret\\nsecond line Run-Err-S3cret")\n')
for _, extra in ipairs { "", "-v" } do
  rc, out, err = H.run(dir, "run " .. H.sh_quote(script), extra)
  H.eq(rc, 1, "failing script: exit code")
  has("script error " .. extra, err, "login failed for password ***")
  if (out .. err):find("Run-Err-S3cret", 1, true) then error("script error " .. extra .. ": secret shown:\n" .. err) end
end

-- 8. Help, versions and usage errors know no secret, and show none.
for _, args in ipairs { "--help", "--version", "sctokf --no-such-option", "no-such-command" } do
  rc, out, err = H.run(dir, args)
  clean(args, out, err)
end

faults()
print("ok")
