#!/bin/sh
# Usage: with-sim.sh SIM_BINARY [sim options...] -- COMMAND [args...]
# Starts the simulator on free loopback ports, exports its URLs, runs COMMAND, stops the simulator.
#   METASYNC_SIM_SECTIGO   e.g. http://127.0.0.1:40001
#   METASYNC_SIM_KEYFACTOR e.g. http://127.0.0.1:40002/KeyfactorAPI
# The exit status is COMMAND's.
set -u
sim=$1; shift
simargs=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do simargs="$simargs $(printf '%s' "$1" | sed "s/'/'\\\\''/g; s/^/'/; s/\$/'/")"; shift; done
[ $# -gt 0 ] && shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/metasync-sim.XXXXXX") || exit 1
fifo=$dir/ready
mkfifo "$fifo" || exit 1
eval "exec \"\$sim\" --sectigo-port 0 --keyfactor-port 0 $simargs" >"$fifo" 2>"$dir/sim.err" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null
  # A simulator that does not stop within 5 s is killed: a test never hangs on it.
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
exec 3<"$fifo"
if ! IFS= read -r line <&3; then
  echo "with-sim.sh: simulator did not start:" >&2; cat "$dir/sim.err" >&2; exit 1
fi
METASYNC_SIM_SECTIGO=$(printf '%s' "$line" | sed -n 's/.*"sectigo":"\([^"]*\)".*/\1/p')
METASYNC_SIM_KEYFACTOR=$(printf '%s' "$line" | sed -n 's/.*"keyfactor":"\([^"]*\)".*/\1/p')
export METASYNC_SIM_SECTIGO METASYNC_SIM_KEYFACTOR
# Keep draining the simulator's stdout so it never blocks on a full pipe.
cat <&3 >/dev/null 2>&1 &
"$@"
rc=$?
exit $rc
