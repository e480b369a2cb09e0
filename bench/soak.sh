#!/usr/bin/env bash
# Benchmark (not a test): the fault soak at scale. Runs part 4 of tests/integration/test_soak.lua
# against a fresh metasync-sim: sctokf then kftosc over a generated world without faults (the
# reference state), then the same world again with the fault mix on every endpoint (10% 5xx
# including 500 and Sectigo's -2 body, 5% 429 half of them with an HTTP-date Retry-After, 1%
# resets, 1% truncated bodies, 1% malformed JSON), at default settings. Prints each run's exit
# code, wall time, requests, faults and retry WARN lines, and fails unless both faulty runs exit 0
# and both APIs end exactly as after the fault-free runs. See bench/README.md.
set -euo pipefail

prog=${0##*/}
usage() {
  cat <<EOF
usage: $prog [-n CERTS] [--seed S] [--build DIR]

  -n CERTS     Sectigo certificates in the generated world (default 10000)
  --seed S     the world's seed (default 11); the faults are drawn per request from the
               simulator's seed, so a given CERTS and S always see the same faults
  --build DIR  build directory holding metasync and tests/sim/metasync-sim (default build/)
EOF
}
root=$(cd "$(dirname "$0")/.." && pwd)
certs=10000 seed=11 build=$root/build
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n) [ $# -ge 2 ] || { usage >&2; exit 64; }; certs=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || { usage >&2; exit 64; }; seed=$2; shift 2 ;;
    --build) [ $# -ge 2 ] || { usage >&2; exit 64; }; build=$2; shift 2 ;;
    *) echo "$prog: unknown option '$1'" >&2; usage >&2; exit 64 ;;
  esac
done
case $certs in ''|*[!0-9]*) echo "$prog: -n: not a number: '$certs'" >&2; exit 64 ;; esac
case $seed in ''|*[!0-9]*) echo "$prog: --seed: not a number: '$seed'" >&2; exit 64 ;; esac
build=$(cd "$build" && pwd) || exit 1
ms=$build/metasync sim=$build/tests/sim/metasync-sim
[ -x "$ms" ] && [ -x "$sim" ] || { echo "$prog: build first: $ms, $sim" >&2; exit 1; }

echo "metasync fault soak: $certs certificates (seed $seed), default settings"
echo "  build: $build"
start=$(date +%s.%N)
rc=0
(cd "$root/tests/integration" &&
  METASYNC_SOAK_ONLY=1 METASYNC_SOAK_CERTS=$certs METASYNC_SOAK_SEED=$seed \
    "$root/tests/with-sim.sh" "$sim" --certs 0 -- "$ms" run test_soak.lua "$ms") || rc=$?
end=$(date +%s.%N)
awk -v a="$start" -v b="$end" 'BEGIN { printf "total wall time: %.1f s\n", b - a }'
if [ "$rc" != 0 ]; then echo "$prog: FAILED (exit $rc)"; exit 3; fi
