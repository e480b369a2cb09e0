#!/bin/sh
# `cmake --install` gives a working tree: bin/metasync finds its stock lib/ and scripts/ under
# share/metasync, and bin/metasync-sim its Lua endpoints under share/metasync/sim.
# usage: install_test.sh BUILD_DIR
set -u
build=$1
t=$(mktemp -d "${TMPDIR:-/tmp}/metasync-install.XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0; passes=0
check() { name=$1; shift; if "$@"; then passes=$((passes + 1)); else echo "FAIL: $name" >&2; fails=$((fails + 1)); fi; }
cmake --install "$build" --prefix "$t/prefix" >/dev/null || { echo "install failed"; exit 1; }
ms=$t/prefix/bin/metasync
check "installed binary" test -x "$ms"
check "stock policy installed" test -f "$t/prefix/share/metasync/scripts/sctokf.lua"
check "no build tree link" test ! -L "$t/prefix/share/metasync/lib"
cd "$t" || exit 1
out=$(echo 'print(math.type(require("metasync.json").decode("[5]")[1]))' | "$ms" repl 2>&1)
check "repl from the install" [ "$out" = "integer" ]
printf 'print(require("metasync.options").stock_dir)\nprint(package.searchpath("metasync.config", package.path))\n' >"$t/where.lua"
out=$("$ms" run "$t/where.lua")
check "stock dir under the prefix" sh -c "echo '$out' | grep -qx '$t/prefix/share/metasync'"
check "lib found under the prefix" sh -c "echo '$out' | grep -q '^$t/prefix/share/metasync/lib/metasync/config.lua$'"
# The stock sctokf runs from the install: without a config it stops on the missing file.
"$ms" -c "$t/none" sctokf >/dev/null 2>"$t/err"; rc=$?
check "stock sctokf runs (config error exit 1)" [ $rc -eq 1 ]
check "stock sctokf names the missing file" grep -q "none/config.json" "$t/err"
if [ -x "$t/prefix/bin/metasync-sim" ]; then
  "$t/prefix/bin/metasync-sim" --help >/dev/null 2>&1
  check "installed simulator finds its Lua" [ $? -eq 0 ]
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
