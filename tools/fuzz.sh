#!/bin/sh
# Usage: tools/fuzz.sh TARGET|all SECONDS [libFuzzer options...]
# Builds the libFuzzer targets if needed (clang, -DMETASYNC_FUZZ=ON, in FUZZ_BUILD_DIR, default
# build-fz) and runs TARGET (json, config, names, dates, query, serial, response, rows; "all" runs each
# in turn) for SECONDS, starting from the seeds in tests/fuzz/corpus/TARGET/ (never written to:
# what the fuzzer finds goes to BUILD/fuzz/corpus/TARGET/). A crash or a violated property leaves
# its input in BUILD/fuzz/artifacts/TARGET/ and makes this script exit 1. Each run's log is
# BUILD/fuzz/TARGET.log; the last lines say how many inputs ran.
# Options after SECONDS go to libFuzzer (e.g. -runs=50000, -jobs=2, -seed=1).
# FUZZ_STRICT=1 also stops on the findings already reported (tests/fuzz/README.md).
# FUZZ_FAST=1 builds without ASan/UBSan (in build-fz-fast unless FUZZ_BUILD_DIR is set) for long
# campaigns, then replays the corpus the run grew through the sanitized build (build-fz).
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
target=$1
seconds=$2
shift 2
fast=${FUZZ_FAST:-0}
if [ "$fast" = 1 ]; then dir=${FUZZ_BUILD_DIR:-build-fz-fast}; else dir=${FUZZ_BUILD_DIR:-build-fz}; fi
sanitize=ON
[ "$fast" = 1 ] && sanitize=OFF
all="json config names dates query serial response rows"
[ "$target" = all ] && targets=$all || targets=$target
for t in $targets; do
  case " $all " in *" $t "*) ;; *) echo "fuzz.sh: unknown target '$t' (one of: $all)" >&2; exit 64 ;; esac
done

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (apt-get install clang)" >&2; exit 1; }
configure() { # DIR SANITIZE
  if ! grep -q '^METASYNC_FUZZ:BOOL=ON' "$1/CMakeCache.txt" 2>/dev/null; then
    # The simulator is not needed to fuzz, so its libraries are not either.
    CC=clang cmake -S . -B "$1" -DMETASYNC_FUZZ=ON -DMETASYNC_FUZZ_SANITIZE="$2" \
      -DMETASYNC_BUILD_SIM=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
}
configure "$dir" "$sanitize"
# The libFuzzer options, word by word (they hold no spaces).
opts="$*"
builds=""
for t in $targets; do builds="$builds --target fuzz_$t"; done
# shellcheck disable=SC2086
cmake --build "$dir" -j"$(nproc)" $builds >/dev/null
if [ "$fast" = 1 ]; then
  configure build-fz ON
  # shellcheck disable=SC2086
  cmake --build build-fz -j"$(nproc)" $builds >/dev/null
fi

status=0
for t in $targets; do
  work=$dir/fuzz/corpus/$t art=$dir/fuzz/artifacts/$t log=$dir/fuzz/$t.log
  # The targets' scratch files (fuzz_config writes three files per input) go to a RAM file
  # system when there is one: on a disk the writes made fuzz_config 2.3 times slower.
  tmp=""
  [ -d /dev/shm ] && [ -w /dev/shm ] && tmp=$(mktemp -d /dev/shm/metasync-fuzz.XXXXXX 2>/dev/null) || tmp=""
  [ -n "$tmp" ] || { tmp=$PWD/$dir/fuzz/tmp/$t; mkdir -p "$tmp"; }
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$work" "$art" "tests/fuzz/corpus/$t"
  # Lua's garbage collector frees an input's memory during later inputs, so libFuzzer's
  # per-input leak check (which reruns every input whose mallocs and frees do not balance under
  # LeakSanitizer) would cost most of the time and could never be clean; the C decoder alone
  # (fuzz_json) keeps it. Leaks of the whole engine are valgrind's job (tools/valgrind.sh).
  leaks=0
  [ "$t" = json ] && leaks=1
  dict=""
  [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
  echo "== fuzz_$t for $seconds s (log: $log)"
  # shellcheck disable=SC2086
  if TMPDIR=$tmp "$dir/tests/fuzz_$t" -max_total_time="$seconds" -timeout=30 \
      -detect_leaks=$leaks -print_final_stats=1 -artifact_prefix="$PWD/$art/" $dict $opts \
      "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" | tr '\n' ' '
    echo
    if [ "$fast" = 1 ]; then
      # Every input the campaign kept, once more under ASan and UBSan.
      echo "== replaying $(ls "$work" | wc -l) inputs through build-fz/tests/fuzz_$t (ASan+UBSan)"
      if ! TMPDIR=$tmp build-fz/tests/fuzz_$t -runs=0 -timeout=30 -detect_leaks=$leaks \
          -artifact_prefix="$PWD/$art/" "$work" >"$log.replay" 2>&1; then
        status=1
        echo "fuzz.sh: the sanitized replay of fuzz_$t found a problem:" >&2
        grep -E 'PROPERTY VIOLATED|^fuzz \(|ERROR: |SUMMARY:|Test unit written' "$log.replay" | head -n 8 >&2
      fi
    fi
  else
    status=1
    echo "fuzz.sh: fuzz_$t found a problem:" >&2
    grep -E 'PROPERTY VIOLATED|^fuzz \(|ERROR: |SUMMARY:|Test unit written' "$log" | head -n 8 >&2
  fi
  rm -rf "$tmp"
done
exit $status
