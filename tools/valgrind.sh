#!/bin/sh
# Usage: tools/valgrind.sh [BUILD_DIR]   (default build-vg: a plain build, configured here if
# needed; not a sanitizer build, which valgrind cannot run). Also `ctest -L valgrind` in a build
# configured with -DMETASYNC_VALGRIND=ON.
# Runs the Lua unit suites (tests/lua/test_*.lua) and two end-to-end tests (integration
# test_sctokf and test_sync: both one-way directions' code, the two-way decisions and the SQLite
# state) under valgrind memcheck, and fails unless every process is clean: no memory error, no
# definite leak. In the end-to-end tests every metasync the test starts runs under valgrind
# too (a wrapper stands in for the binary); the simulator is a fixture and runs as it is.
# Logs: BUILD_DIR/valgrind/*.log (one per process, empty when clean).
# No suppression file: the engine's libraries (libcurl, GnuTLS, PCRE2, SQLite, lua-cjson) give
# memcheck nothing to report in these runs, so nothing needs hiding. Still-reachable memory
# (libcurl's and GnuTLS's one-time global state, kept until exit by design) is not an error.
set -u
cd "$(dirname "$0")/.."
root=$PWD
dir=${1:-build-vg}
case $dir in /*) ;; *) dir=$root/$dir ;; esac
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
fi
cmake --build "$dir" -j"$(nproc)" --target metasync metasync-sim >/dev/null || exit 1
bin=$dir/metasync
sim=$dir/tests/sim/metasync-sim
logs=$dir/valgrind
rm -rf "$logs"
mkdir -p "$logs"

# 99 marks a memcheck finding, told apart from a test's own failure.
vg="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite"
vg="$vg --errors-for-leak-kinds=definite --num-callers=30 -q"
# The end-to-end tests start metasync by the path they are given: this wrapper.
cat >"$logs/metasync" <<EOF
#!/bin/sh
exec $vg --log-file="$logs/child.%p.log" "$bin" "\$@"
EOF
chmod +x "$logs/metasync"

failed=0
# run NAME DIR COMMAND...: one test, its valgrind log in $logs/NAME.log
run() {
  name=$1 wd=$2
  shift 2
  t0=$(date +%s)
  (cd "$wd" && "$@") >"$logs/$name.out" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    echo "ok   $name ($(($(date +%s) - t0)) s)"
  else
    failed=$((failed + 1))
    [ $rc -eq 99 ] && why="memcheck errors" || why="exit $rc"
    echo "FAIL $name: $why (see $logs/$name.log, $logs/$name.out)"
  fi
}

for src in tests/lua/test_*.lua; do
  name=$(basename "$src" .lua)
  # shellcheck disable=SC2086
  run "lua.$name" tests/lua $vg --log-file="$logs/lua.$name.log" "$bin" run "$root/$src"
done
for name in test_sctokf test_sync; do
  # shellcheck disable=SC2086
  run "integration.$name" tests/integration "$root/tests/with-sim.sh" "$sim" --certs 0 -- \
    $vg --log-file="$logs/integration.$name.log" "$bin" run "$root/tests/integration/$name.lua" "$logs/metasync"
done

# A child's findings make the test fail through its exit code only when the test checks it:
# the logs are the final word.
dirty=$(find "$logs" -name '*.log' -size +0 | sort)
if [ -n "$dirty" ]; then
  echo "valgrind reported:"
  for f in $dirty; do echo "== $f"; head -n 40 "$f"; done
  failed=$((failed + 1))
fi
if [ $failed -eq 0 ]; then
  echo "valgrind: all clean (0 errors, 0 definite leaks)"
else
  echo "valgrind: $failed problem(s)"
fi
[ $failed -eq 0 ]
