#!/bin/sh
# Install the dependencies if needed, build metasync and metasync-sim, run every CTest suite.
# BUILD_DIR (default build) and CMAKE_FLAGS may be set.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh
dir=${BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$dir" ${CMAKE_FLAGS:-} >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j2 --timeout 300
