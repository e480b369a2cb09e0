#!/bin/sh
# Benchmark (not a test): starts metasync-sim with --certs N, runs tests/sim/bench/walk.lua against
# it and prints the simulator's CPU time per phase, its startup time and its memory.
# usage: tests/sim/bench/sim-cpu.sh [BUILD_DIR] [CERTS] ; env BENCH_CONC, BENCH_DETAILS, BENCH_PHASES,
# SIM (another simulator binary to measure, e.g. an older build)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
certs=${2:-100000}
sim=${SIM:-$build/tests/sim/metasync-sim}
ms=$build/metasync
[ -x "$sim" ] && [ -x "$ms" ] || { echo "build first: $sim or $ms missing" >&2; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/sim-cpu.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$out"' EXIT INT TERM
mkfifo "$out/ready"
t0=$(date +%s.%N)
"$sim" --certs "$certs" --seed 1 --sectigo-port 0 --keyfactor-port 0 >"$out/ready" &
pid=$!
exec 3<"$out/ready"
IFS= read -r line <&3
t1=$(date +%s.%N)
cat <&3 >/dev/null &
METASYNC_SIM_SECTIGO=$(printf '%s' "$line" | sed -n 's/.*"sectigo":"\([^"]*\)".*/\1/p')
METASYNC_SIM_KEYFACTOR=$(printf '%s' "$line" | sed -n 's/.*"keyfactor":"\([^"]*\)".*/\1/p')
export METASYNC_SIM_SECTIGO METASYNC_SIM_KEYFACTOR SIM_PID=$pid
echo "metasync-sim --certs $certs: ready after $(echo "$t1 - $t0" | bc) s, RSS $(sed -n 's/VmRSS:\s*//p' /proc/$pid/status)"
"$ms" run "$here/walk.lua"
