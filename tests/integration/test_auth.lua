-- Authentication variants: OAuth2 client credentials on both APIs, secrets from the
-- environment instead of the file, Sectigo serials listed without colons, and a wrong
-- password failing the pre-flight with exit 1 and the vendor's text.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

local kf_root = H.keyfactor:match("^(https?://[^/]+)")
-- OAuth on both sides
local w = H.world()
w.settings.sectigoListSerialFormat = "plain"
H.reset(w)
local dir = H.config_dir({
  sectigoLogin = json.null, sectigoPassword = json.null,
  sectigoOAuth = { tokenUrl = H.sectigo .. "/oauth/token", clientId = "sim-client", clientSecret = "sim-secret" },
  keyfactorLogin = json.null, keyfactorPassword = json.null,
  keyfactorOAuth = { tokenUrl = kf_root .. "/oauth/token", clientId = "sim-client", clientSecret = "from-env",
    scopesCsv = "", audience = "" },
})
local rc, out, err = H.run(dir, "sctokf", "-v", "METASYNC_KEYFACTOR_CLIENT_SECRET=sim-secret")
H.eq(rc, 0, "OAuth run: " .. err)
H.eq(H.kf_cert(H.state(), 1).Metadata.CostCenter, "CC-1", "synced over OAuth (plain serials)")
local all = out .. err .. (H.read(H.main_log(dir)) or "")
assert(not all:find("sim-secret", 1, true), "client secret leaked")
assert(not all:find("Bearer ", 1, true), "token leaked")

-- passwords from the environment only
H.reset(H.world())
dir = H.config_dir({ sectigoPassword = json.null, keyfactorPassword = "wrong" })
rc, out, err = H.run(dir, "sctokf", "", "METASYNC_SECTIGO_PASSWORD=sim-password METASYNC_KEYFACTOR_PASSWORD=sim-password")
H.eq(rc, 0, "env secrets run: " .. err)

-- a wrong password: exit 1 before any write, with the API's own words
H.clear_stats()
rc, out, err = H.run(dir, "sctokf", "", "METASYNC_SECTIGO_PASSWORD=nope")
H.eq(rc, 1, "bad password exit code")
assert(err:find("Sectigo GET /api/customField/v2 -> HTTP 401", 1, true), err)
H.eq(H.writes(H.stats()), 0, "writes with a bad password")
print("ok")
