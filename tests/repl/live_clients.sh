#!/bin/sh
# The REPL's live API clients: with a configuration pointing at the simulator, `sectigo` and
# `keyfactor` are ready-made clients. Run under tests/with-sim.sh.
# usage: live_clients.sh METASYNC SOURCE_DIR
set -eu
ms=$1; src=$2
t=$(mktemp -d "${TMPDIR:-/tmp}/metasync-repl.XXXXXX")
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/config"
cp "$src/config/"*.json "$t/config/"
sed -i "s#http://127.0.0.1:8081#$METASYNC_SIM_SECTIGO#; s#http://127.0.0.1:8082/KeyfactorAPI#$METASYNC_SIM_KEYFACTOR#" \
  "$t/config/config.json"
out=$(printf '%s\n' \
  'n = #sectigo:custom_fields()' \
  'print("fields", n > 0)' \
  'print("kf", type(keyfactor:metadata_fields()))' \
  'print("json", json.encode(json.array{}))' \
  | "$ms" -c "$t/config" repl 2>"$t/err")
echo "$out"
fail=0
echo "$out" | grep -qx 'fields	true' || { echo "FAIL: sectigo client" >&2; fail=1; }
echo "$out" | grep -qx 'kf	table' || { echo "FAIL: keyfactor client" >&2; fail=1; }
echo "$out" | grep -qx 'json	\[\]' || { echo "FAIL: modules as globals" >&2; fail=1; }
if [ -s "$t/err" ]; then echo "unexpected stderr:" >&2; cat "$t/err" >&2; fail=1; fi
[ $fail -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $fail
