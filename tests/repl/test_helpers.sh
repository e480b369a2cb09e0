#!/bin/sh
# The REPL's helpers against the simulator, over a pipe and with -e: matched, side, missing,
# find, values, mapping, show, csv (read back by an RFC 4180 parser), jsonl; the same helpers in
# `metasync run`; a site policy's include hook; and no secret in any output.
# usage: test_helpers.sh /path/to/metasync   (exit 77 = skipped: no simulator)
set -u
MS=${1:?usage: test_helpers.sh METASYNC}
case "$MS" in /*) ;; *) MS="$(pwd)/$MS" ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sim="$(dirname "$MS")/tests/sim/metasync-sim"
[ -x "$sim" ] || { echo "no simulator at $sim: skipped"; exit 77; }
if [ -z "${METASYNC_SIM_SECTIGO:-}" ]; then exec "$root/tests/with-sim.sh" "$sim" -- "$0" "$@"; fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cfg="$tmp/home/config"
"$MS" run "$here/sim_world.lua" "$MS" "$cfg" || { echo "FAIL world"; exit 1; }
cd "$tmp" || exit 1
export COLUMNS=200 # the tables' layout does not depend on where the test runs
fails=0
: >"$tmp/all" # every output, searched for secrets at the end
fail() { echo "FAIL $1"; shift; for f in "$@"; do head -c 4000 "$f"; done; fails=$((fails + 1)); }

# ev NAME EXIT CHUNK: metasync -c CONFIG repl -e CHUNK, its exit status must be EXIT
ev() {
    name=$1 want=$2; shift 2
    "$MS" -c "$cfg" repl -e "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    cat "$tmp/out" "$tmp/err" >>"$tmp/all"
    if [ $rc -ne "$want" ]; then fail "$name: exit code $rc, want $want" "$tmp/out" "$tmp/err"; return 1; fi
}
# line NAME FILE REGEX: a line of FILE matches the extended regex (columns: two or more spaces)
line() { grep -Eq -- "$3" "$tmp/$2" || { fail "$1: $2 has no line matching '$3'" "$tmp/out" "$tmp/err"; return 1; }; }
noline() { ! grep -Eq -- "$3" "$tmp/$2" || { fail "$1: $2 has a line matching '$3'" "$tmp/out" "$tmp/err"; return 1; }; }
quiet() { [ ! -s "$tmp/err" ] || { fail "$1: unexpected stderr" "$tmp/err"; return 1; }; }
S='  +'

ev mapping 0 'mapping()' && line mapping out "^CostCenter${S}Cost Center${S}custom${S}String${S}TEXT_SINGLE_LINE$" &&
    line mapping out "^SectigoCertTypeID${S}certType.id${S}manual${S}Integer$" && line mapping out '^\(8 rows\)$' &&
    quiet mapping && echo "ok mapping"

# matched: the pairs a run would read (revoked and other-issuer certificates are not among them)
ev matched 0 'show(matched())' && line matched out "^A112233${S}1${S}5001${S}www.acme.test$" &&
    line matched out "^B445566${S}2${S}5002${S}api.acme.test$" && line matched out '^\(2 rows\)$' &&
    quiet matched && echo "ok matched"
ev matched_certificate 0 'for p in matched() do print(p.serial, p.keyfactor.IssuedCN, type(p.keyfactor.Metadata)) end' &&
    line matched_certificate out '^A112233	www.acme.test	table$' && echo "ok matched_certificate"

# side: both sides' values, in step by meaning (a Keyfactor date read back as 7/23/2025 12:00:00 AM)
ev side 0 'side("0a:11:22:33")' && line side out "^CostCenter${S}CC-1${S}old${S}false$" &&
    line side out "^RenewalDate${S}2025-07-23${S}7/23/2025 12:00:00 AM${S}true$" &&
    line side out "^BudgetCode${S}42${S}42${S}true$" && line side out "^SectigoID${S}5001${S}false$" &&
    quiet side && echo "ok side"
# a value missing on one side is an empty cell (this crashed with "bad argument #1 to 'tostring'")
ev side_missing_value 0 'side("0B445566")' && line side_missing_value out "^CostCenter${S}CC-2, \"the big one\"${S}false$" &&
    line side_missing_value out "^Environment${S}Staging${S}false$" && echo "ok side_missing_value"
ev side_one_side 0 'side("FFFF0001")' && line side_one_side err 'serial FFFF0001: not in Sectigo' &&
    line side_one_side out "^CostCenter${S}true$" && echo "ok side_one_side"
ev side_left_out 0 'side("0DAABBCC")' && line side_left_out err 'Keyfactor Id 4: the policy leaves it out' && echo "ok side_left_out"
ev side_neither 1 'side("ABCDEF")' && line side_neither err 'serial ABCDEF: on neither side' && echo "ok side_neither"

# missing: Keyfactor alone, both sides over the matched pairs, Sectigo alone
ev missing_kf 0 'show(missing("CostCenter", "keyfactor"))' && line missing_kf out "^B445566${S}2${S}api.acme.test$" &&
    line missing_kf out "^FFFF0001${S}6${S}stray.acme.test$" && noline missing_kf out '^A112233' &&
    line missing_kf out '^\(2 rows\)$' && quiet missing_kf && echo "ok missing_kf"
ev missing_both 0 'show(missing("cost center"))' &&
    line missing_both out "^B445566${S}2${S}5002${S}api.acme.test${S}keyfactor${S}CC-2, \"the big one\"$" &&
    line missing_both out '^\(1 row\)$' && echo "ok missing_both"
ev missing_sc 0 'show(missing("Notes", "sectigo"))' && line missing_sc out "^B445566${S}5002${S}api.acme.test${S}Issued$" &&
    line missing_sc out "^DAABBCC${S}5004${S}dup.acme.test${S}Issued$" && noline missing_sc out '^A112233' && echo "ok missing_sc"
ev missing_unknown 1 'missing("NoSuchField")' && line missing_unknown err "'NoSuchField' is not a mapped field" && echo "ok missing_unknown"

# find: either side, by serial (any form) or common name, and whether a run looks at it
ev find_cn 0 'find("WWW.acme.test")' && line find_cn out "^sectigo${S}5001${S}A112233${S}www.acme.test${S}Issued${S}01/01/2099${S}true$" &&
    line find_cn out "^keyfactor${S}1${S}A112233${S}www.acme.test${S}Active${S}2099-01-01T00:00:00Z${S}true$" && echo "ok find_cn"
ev find_serial 0 'find("0D:AA:BB:CC")' && line find_serial out "^keyfactor${S}4${S}DAABBCC${S}dup.digicert.test${S}Active${S}.*${S}false$" &&
    line find_serial out "^sectigo${S}5004${S}DAABBCC" && echo "ok find_serial"

# values + csv: every Sectigo custom field as CSV, read back by a parser of the test's own
ev values_csv 0 "csv(values(\"sectigo\"), '$tmp/sc.csv')" && line values_csv out "^3	$tmp/sc.csv$" &&
    if "$MS" run "$here/csv_check.lua" sectigo "$tmp/sc.csv" >"$tmp/out" 2>"$tmp/err"; then echo "ok values_csv"
    else fail "values_csv: read back" "$tmp/out" "$tmp/err"; fi
ev values_stdout 0 'csv(values())' && line values_stdout out '^serial,sectigo_id,cn,status,Cost Center,' &&
    noline values_stdout out '^3$' && echo "ok values_stdout"
ev values_kf 0 'show(values("keyfactor"))' && line values_kf out "^A112233${S}1${S}www.acme.test${S}old${S}7/23/2025 12:00:00 AM${S}42$" &&
    echo "ok values_kf"
ev jsonl 0 "jsonl(matched(), '$tmp/m.jsonl')" &&
    if grep -qxF '{"serial":"A112233","keyfactor_id":1,"sectigo_id":5001,"cn":"www.acme.test"}' "$tmp/m.jsonl"; then echo "ok jsonl"
    else fail "jsonl" "$tmp/m.jsonl"; fi

# over a pipe: a session of questions, the definitions and index fetched once
printf '%s\n' 'show(missing("CostCenter", "keyfactor"))' 'x = side("0A112233")' 'print(#x, x[1].field, x[1].keyfactor)' \
    'n = 0 for _ in matched() do n = n + 1 end print("pairs", n)' | "$MS" -c "$cfg" repl >"$tmp/out" 2>"$tmp/err"
rc=$?; cat "$tmp/out" "$tmp/err" >>"$tmp/all"
if [ $rc -eq 0 ] && line pipe out '^8	CostCenter	old$' && line pipe out '^pairs	2$' && quiet pipe; then echo "ok pipe"
elif [ $rc -ne 0 ]; then fail "pipe: exit $rc" "$tmp/err"; fi

# metasync run: the same helpers, from the configuration, made on first use
cat >"$tmp/q.lua" <<'EOF'
for p in matched() do print("pair", p.serial, p.sectigo_id) end
for _, r in ipairs(side("0A:11:22:33")) do if r.field == "CostCenter" then print("side", r.sectigo, r.keyfactor, r.in_step) end end
EOF
"$MS" -c "$cfg" run "$tmp/q.lua" >"$tmp/out" 2>"$tmp/err"; rc=$?; cat "$tmp/out" "$tmp/err" >>"$tmp/all"
if [ $rc -eq 0 ] && line run out '^pair	A112233	5001$' && line run out '^side	CC-1	old	false$'; then echo "ok run"
elif [ $rc -ne 0 ]; then fail "run: exit $rc" "$tmp/out" "$tmp/err"; fi

# the site's policy decides, as in a run: its include hook leaves www.acme.test out (and its
# `return policy:run()` does not start a run)
mkdir -p "$cfg/scripts"
cat >"$cfg/scripts/sctokf.lua" <<'EOF'
local policy = require("metasync.stock").load("sctokf")
local stock_include = policy.include
function policy.include(cert, ctx)
  if cert.IssuedCN == "www.acme.test" then return false end
  return stock_include(cert, ctx)
end
return policy:run()
EOF
ev site_policy 0 'show(matched())' && noline site_policy out '^A112233' && line site_policy out "^B445566${S}2${S}5002" &&
    noline site_policy out 'summary' && echo "ok site_policy"
rm -r "$cfg/scripts"

# the clients and the configuration print without their secrets, as does everything above
printf '%s\n' 'sectigo' 'keyfactor' 'config' 'print(config.sectigoPassword)' 'show({config})' 'csv({config})' \
    | "$MS" -c "$cfg" repl >"$tmp/out" 2>"$tmp/err"
cat "$tmp/out" "$tmp/err" >>"$tmp/all"
basic=$(printf '%s' 'DOMAIN\sim-admin:sim-password' | base64)
if grep -qF -e 'sim-password' -e "$basic" "$tmp/all"; then
    fail "no_secret: a secret was shown" "$tmp/all"
elif ! grep -qF 'sectigoPassword = "***"' "$tmp/all"; then
    fail "no_secret: the configuration was not printed" "$tmp/out"
else echo "ok no_secret"; fi

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all ok"
