-- Which certificates: sslTypeIds limits the Sectigo listing to those profiles, and
-- syncRevokedAndExpiredCerts=true brings revoked certificates in on both sides.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

H.reset(H.world())
local rc, out, err = H.run(H.config_dir({ sslTypeIds = json.array { 1018 } }), "sctokf")
H.eq(rc, 0, "sslTypeIds run: " .. err)
local st = H.state()
H.eq(H.kf_cert(st, 1).Metadata.CostCenter, "CC-1", "profile 1018 synced")
H.eq(H.kf_cert(st, 2).Metadata.CostCenter, nil, "profile 1019 not listed, so untouched")
assert(out:find("unmatched: +2"), out)

H.reset(H.world())
rc, out, err = H.run(H.config_dir({ syncRevokedAndExpiredCerts = "true" }), "sctokf")
H.eq(rc, 0, "revoked run: " .. err)
st = H.state()
H.eq(H.kf_cert(st, 3).Metadata.CostCenter, "CC-3", "revoked certificate synced when asked")
H.eq(next(H.kf_cert(st, 4).Metadata or {}), nil, "DigiCert collision still untouched")
-- keyfactorAddedSince: only certificates imported into Keyfactor since that date are considered.
local w = H.world()
for _, c in ipairs(w.keyfactor.certificates) do
  c.ImportDate = (c.Id == 1) and "2020-03-01T00:00:00Z" or "2025-06-01T00:00:00Z"
end
H.reset(w)
rc, out, err = H.run(H.config_dir({ keyfactorAddedSince = "2025-01-01" }), "sctokf")
H.eq(rc, 0, "keyfactorAddedSince run: " .. err)
st = H.state()
H.eq(H.kf_cert(st, 1).Metadata.CostCenter, "old", "imported before the date: untouched")
H.eq(H.kf_cert(st, 2).Metadata.CostCenter, "CC-2", "imported after the date: synced")
print("ok")
