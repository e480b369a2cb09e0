#!/bin/sh
# `cmake --install` gives a working tree: bin/metasync finds its stock lib/ and scripts/ under
# share/metasync; the simulator sits in libexec/metasync (off PATH) and finds its Lua endpoints
# under share/metasync/sim; the manual pages, shell completions, example configuration and
# systemd units are where man, bash, zsh and an administrator look for them.
# usage: install_test.sh BUILD_DIR
set -u
build=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
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

# The simulator: never on PATH beside the production binary, still runnable for rehearsals.
p=$t/prefix
check "no simulator in bin/" test ! -e "$p/bin/metasync-sim"
sim=$p/libexec/metasync/metasync-sim
if [ -f "$build/tests/sim/metasync-sim" ]; then
  check "simulator in libexec/metasync/" test -x "$sim"
  check "simulator's Lua installed" test -f "$p/share/metasync/sim/sim.lua"
fi

# Manual pages, found by man(1) in the prefix's share/man.
for page in man1/metasync.1 man7/metasync-scripts.7 man1/metasync-sim.1; do
  [ "$page" = man1/metasync-sim.1 ] && [ ! -x "$sim" ] && continue
  check "$page installed (gzipped)" gzip -t "$p/share/man/$page.gz"
done
if command -v man >/dev/null 2>&1; then
  check "man -w metasync" [ "$(MANPATH=$p/share/man man -w metasync 2>/dev/null)" = "$p/share/man/man1/metasync.1.gz" ]
  check "man -w 7 metasync-scripts" [ "$(MANPATH=$p/share/man man -w 7 metasync-scripts 2>/dev/null)" = "$p/share/man/man7/metasync-scripts.7.gz" ]
  out=$(MANPATH=$p/share/man MANWIDTH=80 man metasync 2>&1)
  check "man metasync renders its commands" sh -c "printf '%s' \"\$1\" | grep -q '^       check  *Checks the configuration'" sh "$out"
fi

# Shell completions: what the installed binary prints, where bash-completion and zsh look.
"$ms" completion bash >"$t/bash" && "$ms" completion zsh >"$t/zsh"
check "bash completion installed" cmp -s "$t/bash" "$p/share/bash-completion/completions/metasync"
check "zsh completion installed" cmp -s "$t/zsh" "$p/share/zsh/site-functions/_metasync"

# The example configuration: the repository's config/ with placeholders for every secret,
# login and address; the documented rehearsal (metasync-sim(1)) fills them in and runs check.
ex=$p/share/doc/metasync/examples
for f in config.json fields.json bannedcharacters.json; do check "example $f installed" test -f "$ex/config/$f"; done
check "example config holds no simulator credential" sh -c "! grep -q 'sim-' '$ex/config/config.json'"
check "example config has placeholders" grep -q '"sectigoPassword": "CHANGE-ME"' "$ex/config/config.json"
check "example config keeps the repository's settings" grep -q '"sectigoPageSize": 25' "$ex/config/config.json"
check "example fields.json is the repository's" cmp -s "$ex/config/fields.json" "$src/config/fields.json"
if [ -x "$sim" ]; then
  mkdir -p "$t/rehearsal/config" && cp "$ex"/config/*.json "$t/rehearsal/config/"
  cat >"$t/rehearsal/run.sh" <<'EOF2'
set -eu
cd "$1"
sed -i -e "s#https://cert-manager.com#$METASYNC_SIM_SECTIGO#" \
  -e "s#https://keyfactor.example.com/KeyfactorAPI#$METASYNC_SIM_KEYFACTOR#" \
  -e 's#"DOMAIN\\\\CHANGE-ME"#"DOMAIN\\\\sim-admin"#' -e 's#"sectigoLogin": "CHANGE-ME"#"sectigoLogin": "sim-admin"#' \
  -e 's#"sectigoCustomerUri": "CHANGE-ME"#"sectigoCustomerUri": "sim-customer"#' -e 's#"CHANGE-ME"#"sim-password"#g' \
  config/config.json
chmod 600 config/config.json
"$2" -c config check
EOF2
  "$src/tests/with-sim.sh" "$sim" --certs 20 -- sh "$t/rehearsal/run.sh" "$t/rehearsal" "$ms" >"$t/out" 2>&1
  check "rehearsal: the installed binaries, the example config, check passes" [ $? -eq 0 ]
  check "rehearsal: check reached Keyfactor" grep -q "^ok    Keyfactor: product version" "$t/out"
  [ $fails -eq 0 ] || cat "$t/out" >&2
fi

# systemd units: a service with its own user, secrets from an EnvironmentFile, state and logs
# directories made by systemd; a timer for it. systemd-analyze checks every directive.
sd=$ex/systemd
for f in metasync-sync.service metasync-sync.timer metasync.env README; do check "systemd $f installed" test -f "$sd/$f"; done
for d in "User=metasync" "EnvironmentFile=/etc/metasync/metasync.env" "StateDirectory=metasync" "LogsDirectory=metasync" \
         "ExecStart=/usr/bin/metasync -c /etc/metasync sync"; do
  check "service has $d" grep -q "^$d" "$sd/metasync-sync.service"
done
check "timer starts the service's name" grep -q "^OnCalendar=" "$sd/metasync-sync.timer"
check "env file names the secrets" grep -q "^METASYNC_SECTIGO_PASSWORD=" "$sd/metasync.env"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify wants ExecStart= to exist: the installed binary stands in for /usr/bin/metasync.
  mkdir -p "$t/units"
  sed "s#/usr/bin/metasync#$ms#" "$sd/metasync-sync.service" >"$t/units/metasync-sync.service"
  cp "$sd/metasync-sync.timer" "$t/units/"
  systemd-analyze --man=no verify "$t/units/metasync-sync.service" "$t/units/metasync-sync.timer" >"$t/out" 2>&1
  check "systemd-analyze verify passes" [ $? -eq 0 ]
  check "systemd-analyze has nothing to say" [ ! -s "$t/out" ]
  [ -s "$t/out" ] && cat "$t/out" >&2
fi
check "README installed" test -f "$p/share/doc/metasync/README.md"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
