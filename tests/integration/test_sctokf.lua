-- sctokf parity: custom fields, manual fields (dot paths, "1234" not "1234.0", booleans),
-- missing Keyfactor fields created first and existing ones updated only where they differ,
-- status/revoked filtering, the issuer DN term (a DigiCert serial collision is untouched),
-- absent source values never wipe, the summary, and a second run making zero writes.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")

H.reset(H.world())
local dir = H.config_dir()
local rc, out, err = H.run(dir, "sctokf")
io.stderr:write(out, err)
H.eq(rc, 0, "exit code (stderr: " .. err .. ")")
local st = H.state()

-- custom fields: Sectigo's value goes to the Keyfactor field
local c1 = H.kf_cert(st, 1)
H.eq(c1.Metadata.CostCenter, "CC-1", "CostCenter of cert 1")
H.eq(c1.Metadata.Environment, "Production", "Environment of cert 1")
H.eq(c1.Metadata.BudgetCode, "42", "BudgetCode of cert 1")
H.eq(c1.Metadata.RenewalDate, "2025-07-23", "RenewalDate of cert 1")
-- manual fields: dot paths, integers without ".0", booleans as true/false
H.eq(c1.Metadata.SectigoID, "5001", "SectigoID")
H.eq(c1.Metadata.SectigoCertTypeID, "1018", "SectigoCertTypeID")
H.eq(c1.Metadata.SectigoStatus, "Issued", "SectigoStatus")
assert(c1.Metadata.SectigoRenewed == "false" or c1.Metadata.SectigoRenewed == "False", tostring(c1.Metadata.SectigoRenewed))
-- an absent source value never wipes: 5002 has no Environment in Sectigo
local c2 = H.kf_cert(st, 2)
H.eq(c2.Metadata.CostCenter, "CC-2", "CostCenter of cert 2")
H.eq(c2.Metadata.Environment, "Staging", "Environment of cert 2 kept")
-- revoked certificate untouched when syncRevokedAndExpiredCerts is false
H.eq(next(H.kf_cert(st, 3).Metadata or {}), nil, "revoked cert 3 metadata")
-- DigiCert certificate with a colliding serial is never touched
H.eq(next(H.kf_cert(st, 4).Metadata or {}), nil, "DigiCert cert 4 metadata")
-- missing fields created with their types; existing ones updated only where they differ
H.eq(H.kf_field(st, "SectigoID").DataType, 2, "SectigoID type")
H.eq(H.kf_field(st, "RenewalDate").DataType, 3, "RenewalDate type")
H.eq(H.kf_field(st, "SectigoRenewed").DataType, 4, "SectigoRenewed type")
H.eq(H.kf_field(st, "CostCenter").Description, "Cost center charged", "CostCenter description updated")
H.eq(H.kf_field(st, "CostCenter").Id, 1, "CostCenter kept its id")
local stats = H.stats()
local fw = stats.writes_by_endpoint["keyfactor.metadatafields"]
H.eq(fw, 6 + 1, "field writes: 6 created + 1 updated (Environment unchanged)")
-- Sectigo untouched by sctokf
H.eq(stats.writes_by_endpoint["sectigo.update"], nil, "Sectigo writes")
H.eq(H.sc_cert(st, 5001).comments, "keep me", "comments")
-- summary on stdout
assert(out:find("considered: +3"), out .. err)
assert(out:find("matched: +2"), out)
assert(out:find("updated: +2"), out)
assert(out:find("unmatched: +1"), out) -- FFFF0001 has no Sectigo twin; the revoked one is not listed
assert(out:find("failed: +0"), out)
assert(out:find("fields created: +6"), out)
assert(out:find("fields updated: +1"), out)
assert(out:find("duration:"), out)
local logtext = H.read(H.main_log(dir))
assert(logtext and logtext:find("unmatched serial FFFF0001"), "unmatched serial in the log")
assert(logtext:find("| INFO  | "), "old tool's line format")

-- second run over an unchanged world: zero writes
H.clear_stats()
rc, out = H.run(dir, "sctokf")
H.eq(rc, 0, "second run exit code")
H.eq(H.writes(H.stats()), 0, "writes on the second run")
assert(out:find("updated: +0"), out)
assert(out:find("unchanged: +2"), out)
print("ok")
