#!/bin/sh
# The demo: build, start metasync-sim with generated data, run sctokf, kftosc and a two-way sync
# against it with a copy of config/, show the summaries, stop the simulator. Nothing in the
# repository is changed; the runs' logs are kept in ${TMPDIR:-/tmp}/metasync-demo-logs/.
# usage: tools/demo.sh [CERTS]
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
certs=${1:-500}
tools/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
ms=$root/build/metasync
sim=$root/build/tests/sim/metasync-sim

work=$(mktemp -d "${TMPDIR:-/tmp}/metasync-demo.XXXXXX")
pid=""
logs=${TMPDIR:-/tmp}/metasync-demo-logs
# The logs outlive the demo, so they can be opened afterwards; the rest goes.
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null
  if [ -d "$work/logs" ]; then rm -rf "$logs"; cp -r "$work/logs" "$logs"; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkfifo "$work/ready"
"$sim" --certs "$certs" --seed 42 --sectigo-port 0 --keyfactor-port 0 >"$work/ready" 2>"$work/sim.log" &
pid=$!
read -r line <"$work/ready"
sectigo=$(printf '%s' "$line" | sed -n 's/.*"sectigo":"\([^"]*\)".*/\1/p')
keyfactor=$(printf '%s' "$line" | sed -n 's/.*"keyfactor":"\([^"]*\)".*/\1/p')
echo "metasync-sim: $certs Sectigo certificates; Sectigo at $sectigo, Keyfactor at $keyfactor"

# The stock example config, pointed at this simulator's ports.
mkdir -p "$work/config"
cp config/*.json "$work/config/"
sed -i "s#http://127.0.0.1:8081#$sectigo#; s#http://127.0.0.1:8082/KeyfactorAPI#$keyfactor#" \
  "$work/config/config.json"
chmod 600 "$work/config/config.json" # it holds passwords
cd "$work"

step() { printf '\n== %s\n$ %s\n' "$1" "$2"; }
step "1. what sctokf would do (dry run, first lines of the plan)" "metasync --dry-run sctokf"
"$ms" -c config --dry-run sctokf >plan.txt || true
head -n 12 plan.txt
echo "   ... ($(wc -l <plan.txt) lines in all)"
step "2. Sectigo -> Keyfactor" "metasync sctokf"
"$ms" -c config sctokf
step "3. Keyfactor -> Sectigo" "metasync kftosc"
"$ms" -c config kftosc
step "4. again: an unchanged world needs no writes" "metasync sctokf"
"$ms" -c config sctokf
# An edit on each side, then the two-way sync against the baseline the runs above recorded.
curl -s -X PUT -H 'Content-Type: application/json' -H 'x-keyfactor-requested-with: APIClient' \
  -u 'DOMAIN\sim-admin:sim-password' -d '{"Id": 1, "Metadata": {"CostCenter": "CC-EDITED-IN-KEYFACTOR"}}' \
  "$keyfactor/Certificates/Metadata" >/dev/null || true
step "5. two-way: Keyfactor's edit goes to Sectigo, nothing else moves" "metasync sync"
"$ms" -c config sync || true
step "6. what that run wrote (the journal)" "metasync report last"
"$ms" -c config report last || true
printf '\nLogs of the runs (old tool format), kept after the demo: %s\n' "$logs/MetadataSync.log, $logs/MetadataSync-Errors.log"
tail -n 3 logs/MetadataSync.log
