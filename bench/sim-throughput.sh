#!/bin/sh
# Benchmark: requests/s that metasync-sim serves for GET /api/ssl/v1/{id} on loopback with zero
# latency (target: at least 5,000/s on a 2-core machine). Prints the figure; it is not a test.
# usage: bench/sim-throughput.sh [BUILD_DIR] [SECONDS]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-10}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
sim=$build/tests/sim/metasync-sim
[ -x "$sim" ] || { echo "build first: $sim missing" >&2; exit 1; }
out=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
mkfifo "$out/ready"
"$sim" --certs 1000 --seed 1 --sectigo-port 0 --keyfactor-port 0 >"$out/ready" &
pid=$!
read -r line <"$out/ready"
base=$(printf '%s' "$line" | sed -n 's/.*"sectigo":"\([^"]*\)".*/\1/p')
# Rotate over certificate ids so the figure is not one cached entry.
ids=$(curl -s -H 'login: sim-admin' -H 'password: sim-password' -H 'customerUri: sim-customer' \
  "$base/api/ssl/v1?size=200" | grep -o '"sslId":[0-9]*' | cut -d: -f2 | paste -sd, -)
[ -n "$ids" ] || { echo "could not list certificates" >&2; exit 1; }
cat >"$out/ids.lua" <<LUA
local ids, n = {$ids}, 0
request = function()
  n = n % #ids + 1
  return wrk.format("GET", "/api/ssl/v1/" .. ids[n])
end
LUA
echo "metasync-sim: GET /api/ssl/v1/{id}, 2 threads, 64 connections, ${secs}s"
wrk -t2 -c64 -d"${secs}s" -s "$out/ids.lua" \
  -H 'login: sim-admin' -H 'password: sim-password' -H 'customerUri: sim-customer' "$base" |
  tee "$out/wrk.txt"
rps=$(sed -n 's/^Requests\/sec: *//p' "$out/wrk.txt")
non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *//p' "$out/wrk.txt")
echo "RESULT requests_per_second=$rps non_2xx=${non2xx:-0} (target >= 5000)"
