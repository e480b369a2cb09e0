#!/bin/sh
# Benchmark (not a test): sctokf over 1000 certificates at 50 ms simulated latency per request,
# at default settings and at --concurrency 1, from a fresh world each time. Prints both wall
# times and the speed-up. Usage: bench/sync-bench.sh [BUILD_DIR]   (default: build)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
sim=$build/tests/sim/metasync-sim
ms=$build/metasync
[ -x "$sim" ] && [ -x "$ms" ] || { echo "build first: $sim and $ms not found" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/metasync-bench.XXXXXX")
trap 'kill $simpid 2>/dev/null; wait $simpid 2>/dev/null; rm -rf "$work"' EXIT INT TERM
mkfifo "$work/ready"
"$sim" --sectigo-port 0 --keyfactor-port 0 --certs 1000 --seed 11 --latency-ms 50 >"$work/ready" 2>"$work/sim.err" &
simpid=$!
exec 3<"$work/ready"
IFS= read -r line <&3
cat <&3 >/dev/null &
sc=$(printf '%s' "$line" | sed -n 's/.*"sectigo":"\([^"]*\)".*/\1/p')
kf=$(printf '%s' "$line" | sed -n 's/.*"keyfactor":"\([^"]*\)".*/\1/p')
mkdir -p "$work/config"
cp "$root/config/fields.json" "$root/config/bannedcharacters.json" "$work/config/"
sed -e "s#http://127.0.0.1:8081#$sc#" -e "s#http://127.0.0.1:8082/KeyfactorAPI#$kf#" \
  "$root/config/config.json" >"$work/config/config.json"

now() { date +%s.%N; }
run() { # run LABEL [extra args]: fresh world, then one timed sctokf
  label=$1; shift
  curl -sf -X POST "$sc/__sim/reset" -d '{}' >/dev/null
  t0=$(now)
  (cd "$work" && "$ms" -c "$work/config" "$@" sctokf >"$work/$label.out" 2>&1) || {
    echo "$label run failed:" >&2; cat "$work/$label.out" >&2; exit 1; }
  t1=$(now)
  echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}'
}
echo "sctokf, 1000 certificates, 50 ms latency per request"
fast=$(run default)
echo "  default settings:  ${fast} s"
grep -E "matched|updated" "$work/default.out" | sed 's/^/    /'
slow=$(run serial --concurrency 1)
echo "  --concurrency 1:   ${slow} s"
echo "$fast $slow" | awk '{printf "  speed-up:          %.1fx\n", $2 / $1}'
