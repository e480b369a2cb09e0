#!/usr/bin/env bash
# Benchmark (not a test): metasync at scale against metasync-sim with a simulated per-request
# latency. Runs a list of commands (default: sctokf twice, then kftosc twice: a first run, then the
# no-op run over the world the first one wrote, for each direction) over one world that is reset
# once at the start only, and reports for each run the wall time against the floor that the
# latency and the in-flight cap impose, the requests per endpoint, metasync's CPU and peak RSS and
# the simulator's CPU. Ends with one table line per run. See bench/README.md and --help.
set -euo pipefail

prog=${0##*/}
usage() {
  cat <<EOF
usage: $prog [options]

Runs metasync against a fresh metasync-sim world (reset once at the start only) and measures
each run. Options:
  -n CERTS            Sectigo certificates in the generated world (default 100000)
  -l LATENCY_MS       simulated latency per request, ms (default 50)
  -j CONCURRENCY      requests in flight per API: sectigoConcurrency and
                      keyfactorConcurrency in config.json (default 64)
  -b BULK             sectigoBulkReads in config.json: off, auto or on (default off)
  --sectigo-page N    sectigoPageSize (default 200; the simulator caps a page at 200)
  --keyfactor-page N  keyfactorPageSize (default 500)
  --seed S            the simulator's --seed (default 1)
  --build DIR         build directory holding metasync and tests/sim/metasync-sim
                      (default: build/ at the project root)
  --runs LIST         commands to run in order, each sctokf, kftosc or sync
                      (default "sctokf sctokf kftosc kftosc")
  --metasync-args A   more arguments for every metasync run, split on spaces
                      (e.g. "--scripts DIR" for a probe or a site policy)
  -k                  keep the work directory (config, logs, outputs) and print its path
  -h, --help          this help

The floor of a run is the larger over the two APIs of
  (requests to that API) x LATENCY_MS / CONCURRENCY,
the requests to an API being the sum over the simulator's endpoints named "sectigo.*" or
"keyfactor.*" (token endpoints included) from GET /__sim/stats, cleared before each run.
CPU and peak RSS of metasync come from GNU time (/usr/bin/time); the simulator's CPU is
utime+stime from /proc/PID/stat before and after the run.

Exit status: 0 when every run exited 0; 3 when any metasync run exited non-zero (each run's
exit code is in the table; 2 means some certificates failed); 1 on a setup error; 64 on a
usage error.
EOF
}
die_usage() { echo "$prog: $*" >&2; echo "try '$prog --help'" >&2; exit 64; }
die() { echo "$prog: $*" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
certs=100000 latency=50 conc=64 bulk=off scpage=200 kfpage=500 seed=1 build="" keep=0 extra=""
runs="sctokf sctokf kftosc kftosc"

while [ $# -gt 0 ]; do
  opt=$1 val=""
  case $opt in
    --*=*) val=${opt#*=}; opt=${opt%%=*}; set -- "$opt" "$val" "${@:2}" ;;
  esac
  case $opt in
    -h|--help) usage; exit 0 ;;
    -k) keep=1; shift; continue ;;
    -n|-l|-j|-b|--sectigo-page|--keyfactor-page|--seed|--build|--runs|--metasync-args)
      [ $# -ge 2 ] || die_usage "$opt needs a value"
      val=$2; shift 2 ;;
    *) die_usage "unknown option '$opt'" ;;
  esac
  case $opt in
    -n) certs=$val ;; -l) latency=$val ;; -j) conc=$val ;; -b) bulk=$val ;;
    --sectigo-page) scpage=$val ;; --keyfactor-page) kfpage=$val ;; --seed) seed=$val ;;
    --build) build=$val ;; --runs) runs=$val ;; --metasync-args) extra=$val ;;
  esac
done

isint() { case $1 in ''|*[!0-9]*) return 1 ;; esac; }
ispos() { isint "$1" && [ "$1" -ge 1 ]; }
isint "$certs" || die_usage "-n: not a number: '$certs'"
isint "$latency" || die_usage "-l: not a number: '$latency'"
ispos "$conc" || die_usage "-j: not a positive number: '$conc'"
ispos "$scpage" || die_usage "--sectigo-page: not a positive number: '$scpage'"
ispos "$kfpage" || die_usage "--keyfactor-page: not a positive number: '$kfpage'"
isint "$seed" || die_usage "--seed: not a number: '$seed'"
case $bulk in off|auto|on) ;; *) die_usage "-b: expected off, auto or on, not '$bulk'" ;; esac
read -ra runlist <<<"$runs"
[ ${#runlist[@]} -gt 0 ] || die_usage "--runs: empty list"
for r in "${runlist[@]}"; do
  case $r in sctokf|kftosc|sync) ;; *) die_usage "--runs: '$r' is not sctokf, kftosc or sync" ;; esac
done

if [ -z "$build" ]; then build=$root/build; fi
[ -d "$build" ] || die "no build directory '$build' (cmake -S . -B build && cmake --build build -j2)"
build=$(cd "$build" && pwd)
ms=$build/metasync
sim=$build/tests/sim/metasync-sim
[ -x "$ms" ] || die "build first: $ms not found"
[ -x "$sim" ] || die "build first: $sim not found"
if ! [ -x /usr/bin/time ] || ! /usr/bin/time -f %e true >/dev/null 2>&1; then
  echo "$prog: needs GNU time as /usr/bin/time: apt-get install time" >&2; exit 1
fi
for c in curl jq awk; do
  command -v "$c" >/dev/null || { echo "$prog: needs $c: apt-get install $c" >&2; exit 1; }
done
for f in config.json fields.json bannedcharacters.json; do
  [ -r "$root/config/$f" ] || die "stock config/$f missing under $root"
done
hz=$(getconf CLK_TCK)

work=$(mktemp -d "${TMPDIR:-/tmp}/metasync-scale.XXXXXX")
simpid="" catpid="" mspid=""
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ -n "$mspid" ] && kill -0 "$mspid" 2>/dev/null; then
    pkill -TERM -P "$mspid" 2>/dev/null   # metasync, the child of GNU time
    kill "$mspid" 2>/dev/null
  fi
  if [ -n "$simpid" ]; then kill "$simpid" 2>/dev/null; wait "$simpid" 2>/dev/null; fi
  if [ -n "$catpid" ]; then kill "$catpid" 2>/dev/null; wait "$catpid" 2>/dev/null; fi
  exec 3<&-
  if [ "$keep" = 1 ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The simulator, on free ports; its one-line ready line comes through a FIFO.
mkfifo "$work/ready"
"$sim" --certs "$certs" --seed "$seed" --latency-ms "$latency" \
  --sectigo-port 0 --keyfactor-port 0 >"$work/ready" 2>"$work/sim.err" &
simpid=$!
exec 3<"$work/ready"
line=""
IFS= read -r line <&3 || true
[ -n "$line" ] || { echo "$prog: metasync-sim did not start:" >&2; cat "$work/sim.err" >&2; exit 1; }
cat <&3 >/dev/null &   # keep draining its stdout
catpid=$!
sc=$(printf '%s' "$line" | jq -r .sectigo)
kf=$(printf '%s' "$line" | jq -r .keyfactor)
ctl=$sc/__sim

# The world is reset once, here; the later runs see what the earlier ones wrote.
curl -sf -X POST "$ctl/reset" >/dev/null || die "POST $ctl/reset failed"
got=$(curl -sf "$ctl/faults" | jq -r '.global.latency_ms // 0')
[ "$got" = "$latency" ] || die "simulator latency is ${got} ms after the reset, expected $latency"

# The config: the stock one pointed at the simulator.
mkdir -p "$work/config" "$work/logs"
cp "$root/config/fields.json" "$root/config/bannedcharacters.json" "$work/config/"
jq --arg sc "$sc" --arg kf "$kf" --arg logs "$work/logs" --arg bulk "$bulk" \
  --argjson scp "$scpage" --argjson kfp "$kfpage" --argjson c "$conc" '
  def set: .sectigoAPIUrl = $sc | .keyfactorAPIUrl = $kf
    | .sectigoPageSize = $scp | .keyfactorPageSize = $kfp
    | .sectigoConcurrency = $c | .keyfactorConcurrency = $c
    | .sectigoBulkReads = $bulk | .logDirectory = $logs;
  if has("Config") then .Config |= set else set end' \
  "$root/config/config.json" >"$work/config/config.json"

now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi; }
simticks() { # utime+stime of the simulator, in clock ticks
  local s f
  s=$(cat "/proc/$simpid/stat")
  read -ra f <<<"${s##*) }"   # fields from 3 (state) on: utime is field 14, stime 15
  echo $((f[11] + f[12]))
}
calc() { awk "BEGIN { $1 }" </dev/null; }

echo "metasync scale benchmark: $certs Sectigo certificates (seed $seed), ${latency} ms latency per request"
echo "  concurrency $conc per API, sectigoBulkReads $bulk, page sizes Sectigo $scpage / Keyfactor $kfpage"
echo "  build: $build"
echo "  simulator: Sectigo $sc, Keyfactor $kf ($(curl -sf "$ctl/stats" >/dev/null && echo ready))"
echo "  floor = max over APIs of requests x ${latency} ms / $conc (token endpoints counted)"

declare -a T_CMD T_RC T_WALL T_FLOOR T_RATIO T_SC T_KF T_CPU T_US T_RSS T_SIM T_MATCH
declare -A seen=()
failed=0 i=0 total=${#runlist[@]}
for cmd in "${runlist[@]}"; do
  i=$((i + 1))
  seen[$cmd]=$((${seen[$cmd]:-0} + 1))
  case ${seen[$cmd]} in 1) nth="1st" ;; 2) nth="2nd" ;; 3) nth="3rd" ;; *) nth="${seen[$cmd]}th" ;; esac
  out=$work/run$i.$cmd.out err=$work/run$i.$cmd.err tf=$work/run$i.$cmd.time

  curl -sf -X DELETE "$ctl/stats" >/dev/null || die "DELETE $ctl/stats failed"
  s0=$(simticks)
  t0=$(now)
  (cd "$work" && exec /usr/bin/time -o "$tf" -f '%U %S %M' "$ms" -c "$work/config" $extra "$cmd" \
    >"$out" 2>"$err") &
  mspid=$!
  rc=0
  wait "$mspid" || rc=$?
  mspid=""
  t1=$(now)
  s1=$(simticks)
  stats=$(curl -sf "$ctl/stats") || die "GET $ctl/stats failed"

  read -r cu cs rsskb < <(tail -n 1 "$tf" 2>/dev/null || true) || true
  case ${cu:-} in ''|*[!0-9.]*) cu="" cs="" rsskb="" ;; esac
  matched=$(sed -n 's/^ *matched: *\([0-9][0-9]*\).*/\1/p' "$out" | head -n 1)
  nsc=$(jq '[.requests | to_entries[] | select(.key | startswith("sectigo.")) | .value[]] | add // 0' <<<"$stats")
  nkf=$(jq '[.requests | to_entries[] | select(.key | startswith("keyfactor.")) | .value[]] | add // 0' <<<"$stats")
  wall=$(calc "printf \"%.2f\", $t1 - $t0")
  floor=$(calc "a = $nsc * $latency / 1000 / $conc; b = $nkf * $latency / 1000 / $conc; printf \"%.2f\", (a > b ? a : b)")
  ratio=$(calc "f = ($nsc > $nkf ? $nsc : $nkf) * $latency / 1000 / $conc; if (f > 0) printf \"%.2f\", ($t1 - $t0) / f; else printf \"-\"")
  simcpu=$(calc "printf \"%.2f\", ($s1 - $s0) / $hz")
  if [ -n "$cu" ]; then
    cpu=$(calc "printf \"%.2f\", $cu + $cs")
    rss=$(calc "printf \"%.1f\", $rsskb / 1024")
    if [ -n "$matched" ] && [ "$matched" -gt 0 ]; then
      us=$(calc "printf \"%.1f\", ($cu + $cs) * 1e6 / $matched")
    else us="-"; fi
  else cpu="-" rss="-" us="-"; fi

  case $rc in
    0) rcs="0" ;;
    2) rcs="2 (some certificates failed)" ;;
    1) rcs="1 (fatal error before any write)" ;;
    *) rcs="$rc" ;;
  esac
  [ "$rc" = 0 ] || failed=1

  echo
  echo "== run $i/$total: $cmd ($nth $cmd)"
  echo "  metasync exit:     $rcs"
  echo "  wall:              $wall s"
  echo "  floor:             $floor s   (Sectigo $nsc, Keyfactor $nkf requests x ${latency} ms / $conc)"
  echo "  wall / floor:      $ratio"
  echo "  requests:          $(jq -r .total <<<"$stats") in all; simulator max in flight $(jq -r '.max_inflight // "-"' <<<"$stats") (both APIs)"
  jq -r '.requests | to_entries | sort_by(.key)[] | .key as $k
         | .value | to_entries | sort_by(.key)[] | "\($k) \(.key) \(.value)"' <<<"$stats" |
    while read -r ep meth n; do printf '    %-26s %-6s %9s\n' "$ep" "$meth" "$n"; done
  if [ -n "$cu" ]; then
    echo "  metasync CPU:      $cpu s (user $cu + sys $cs), $us µs per matched certificate (matched: ${matched:-?})"
    echo "  metasync peak RSS: $rss MiB"
  else
    echo "  metasync CPU:      - (no GNU time figures: $(tr '\n' ' ' <"$tf" 2>/dev/null))"
  fi
  echo "  simulator CPU:     $simcpu s (utime+stime)"
  if [ "$rc" != 0 ]; then
    echo "  last lines of metasync's output:"
    tail -n 8 "$out" "$err" 2>/dev/null | sed 's/^/    | /'
  fi

  T_CMD+=("$cmd") T_RC+=("$rc") T_WALL+=("$wall") T_FLOOR+=("$floor") T_RATIO+=("$ratio")
  T_SC+=("$nsc") T_KF+=("$nkf") T_CPU+=("$cpu") T_US+=("$us") T_RSS+=("$rss") T_SIM+=("$simcpu")
  T_MATCH+=("${matched:--}")
done

echo
echo "summary: n=$certs l=${latency}ms j=$conc bulk=$bulk pages=$scpage/$kfpage seed=$seed"
fmt='%-3s %-6s %4s %8s %8s %6s %9s %9s %8s %8s %8s %8s %8s\n'
# shellcheck disable=SC2059
printf "$fmt" run cmd exit wall_s floor_s ratio sc_req kf_req cpu_s us/cert rss_MiB simcpu_s matched
for ((k = 0; k < ${#T_CMD[@]}; k++)); do
  # shellcheck disable=SC2059
  printf "$fmt" "$((k + 1))" "${T_CMD[k]}" "${T_RC[k]}" "${T_WALL[k]}" "${T_FLOOR[k]}" \
    "${T_RATIO[k]}" "${T_SC[k]}" "${T_KF[k]}" "${T_CPU[k]}" "${T_US[k]}" "${T_RSS[k]}" \
    "${T_SIM[k]}" "${T_MATCH[k]}"
done
if [ "$failed" = 1 ]; then
  echo "some runs exited non-zero (exit column; 2 = some certificates failed)"
  exit 3
fi
