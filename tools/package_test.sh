#!/bin/sh
# Build the .deb (tools/package.sh), check what it holds and what it depends on, unpack it into
# a temporary root (dpkg -x: nothing is installed on this machine) and use it from there:
# metasync --version with its stock lib/ found relative to the binary, the stock policy, the
# simulator from libexec/ with the example configuration (the documented rehearsal), and
# man -w for each page with MANPATH in the root.
# usage: tools/package_test.sh          (BUILD_DIR as for tools/package.sh)
set -u
cd "$(dirname "$0")/.."
src=$(pwd)
t=$(mktemp -d "${TMPDIR:-/tmp}/metasync-package.XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0; passes=0
check() { name=$1; shift; if "$@"; then passes=$((passes + 1)); else echo "FAIL: $name" >&2; fails=$((fails + 1)); fi; }

tools/package.sh "$t/out" >"$t/package.log" 2>&1 || { cat "$t/package.log" >&2; echo "package_test: tools/package.sh failed" >&2; exit 1; }
set -- "$t"/out/metasync_*.deb
check "one .deb" [ $# -eq 1 ] && [ -f "$1" ]
deb=$1

# What it holds: paths as dpkg-deb -c lists them (./usr/...).
dpkg-deb -c "$deb" | awk '{print $NF}' >"$t/list"
holds() { grep -qx -- "$1" "$t/list"; }
for f in ./usr/bin/metasync ./usr/libexec/metasync/metasync-sim \
         ./usr/share/metasync/lib/metasync/config.lua ./usr/share/metasync/lib/metasync/check.lua \
         ./usr/share/metasync/scripts/sctokf.lua ./usr/share/metasync/sim/sim.lua \
         ./usr/share/man/man7/metasync-scripts.7.gz ./usr/share/man/man1/metasync-sim.1.gz \
         ./usr/share/bash-completion/completions/metasync ./usr/share/zsh/vendor-completions/_metasync \
         ./usr/share/doc/metasync/examples/config/config.json \
         ./usr/share/doc/metasync/examples/systemd/metasync-sync.service \
         ./usr/share/doc/metasync/examples/systemd/metasync-sync.timer; do
  check "the .deb holds $f" holds "$f"
done
check "the .deb holds metasync(1)" grep -q '^\./usr/share/man/man1/metasync\.1' "$t/list"
check "no simulator in /usr/bin" sh -c "! grep -q '^\./usr/bin/metasync-sim' '$t/list'"
check "nothing outside /usr" sh -c "! grep -v '^\./usr/' '$t/list' | grep -qv '^\./\$'"
check "no build-tree symlinks" sh -c "! dpkg-deb -c '$deb' | grep -q '^l'"

# What it depends on: every library the binaries link, by its Debian package.
dpkg-deb -f "$deb" Depends >"$t/depends"
for p in liblua5.4-0 libcurl4 libpcre2-8-0 libedit2 libsqlite3-0 libmicrohttpd12 libgnutls30; do
  check "Depends names $p" grep -Eq "(^|, )$p( |,|$)" "$t/depends"
done
dpkg -x "$deb" "$t/root"
# Each library a binary loads directly (NEEDED), by the package that ships the file ldd resolves
# it to here (a search by name alone could find the 32-bit copy).
for bin in "$t/root/usr/bin/metasync" "$t/root/usr/libexec/metasync/metasync-sim"; do
  command -v objdump >/dev/null 2>&1 || break
  for so in $(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}'); do
    path=$(ldd "$bin" | awk -v so="$so" '$1 == so {print $3}')
    pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null)
    pkg=$(printf '%s' "$pkg" | head -n 1 | sed 's/[:,].*//')
    check "Depends covers $so (${pkg:-no package})" sh -c '[ -n "$1" ] && grep -Eq "(^|, )$1( |,|\$)" "$2"' sh "$pkg" "$t/depends"
  done
done

# Without dpkg-shlibdeps, the hand-written list (the same packages, without versions).
METASYNC_DEB_SHLIBDEPS=OFF tools/package.sh "$t/fallback" >"$t/package.log" 2>&1
check "a package with the hand-written Depends" [ $? -eq 0 ]
check "hand-written Depends" [ "$(dpkg-deb -f "$t"/fallback/metasync_*.deb Depends)" = \
  "libc6, liblua5.4-0, libcurl4, libpcre2-8-0, libedit2, libsqlite3-0, libmicrohttpd12, libgnutls30" ]

# From the unpacked root: the version with its commit, the stock directory found beside the
# binary (../share/metasync), not the /usr/share/metasync it was built for.
ms=$t/root/usr/bin/metasync
"$ms" --version >"$t/out.txt" 2>&1
check "metasync --version runs" [ $? -eq 0 ]
check "--version names the commit" grep -Eq '^metasync [0-9.]+ \(commit ([0-9a-f]+|unknown)\)$' "$t/out.txt"
printf 'print(require("metasync.options").stock_dir)\n' >"$t/where.lua"
check "stock directory in the unpacked root" [ "$("$ms" run "$t/where.lua")" = "$t/root/usr/share/metasync" ]
"$ms" -c "$t/none" sctokf >/dev/null 2>"$t/err"
check "the stock sctokf runs (stops on the missing config)" grep -q "$t/none/config.json" "$t/err"
"$ms" completion bash | cmp -s - "$t/root/usr/share/bash-completion/completions/metasync"
check "bash completion is the binary's" [ $? -eq 0 ]

# The rehearsal of metasync-sim(1): the packaged simulator, the example configuration filled in
# with the simulator's addresses and credentials, metasync check.
mkdir -p "$t/rehearsal/config"
cp "$t"/root/usr/share/doc/metasync/examples/config/*.json "$t/rehearsal/config/"
cat >"$t/rehearsal/run.sh" <<'EOF'
set -eu
cd "$1"
sed -i -e "s#https://cert-manager.com#$METASYNC_SIM_SECTIGO#" \
  -e "s#https://keyfactor.example.com/KeyfactorAPI#$METASYNC_SIM_KEYFACTOR#" \
  -e 's#"DOMAIN\\\\CHANGE-ME"#"DOMAIN\\\\sim-admin"#' -e 's#"sectigoLogin": "CHANGE-ME"#"sectigoLogin": "sim-admin"#' \
  -e 's#"sectigoCustomerUri": "CHANGE-ME"#"sectigoCustomerUri": "sim-customer"#' -e 's#"CHANGE-ME"#"sim-password"#g' \
  config/config.json
chmod 600 config/config.json
"$2" -c config check
EOF
tests/with-sim.sh "$t/root/usr/libexec/metasync/metasync-sim" --certs 20 -- \
  sh "$t/rehearsal/run.sh" "$t/rehearsal" "$ms" >"$t/out.txt" 2>&1
check "rehearsal from the package: check passes against the packaged simulator" [ $? -eq 0 ]
check "rehearsal: Keyfactor answered" grep -q "^ok    Keyfactor: product version" "$t/out.txt"

# The manual pages, as man finds them with MANPATH in the root.
if ! command -v man >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq man-db >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq man-db >/dev/null; }
  fi
fi
if command -v man >/dev/null 2>&1; then
  m=$t/root/usr/share/man
  check "man -w metasync" [ "$(MANPATH=$m man -w metasync 2>&1)" = "$m/man1/metasync.1.gz" ]
  check "man -w metasync-sim" [ "$(MANPATH=$m man -w metasync-sim 2>&1)" = "$m/man1/metasync-sim.1.gz" ]
  check "man -w 7 metasync-scripts" [ "$(MANPATH=$m man -w 7 metasync-scripts 2>&1)" = "$m/man7/metasync-scripts.7.gz" ]
else
  echo "FAIL: man is not installed (apt-get install man-db)" >&2; fails=$((fails + 1))
fi

[ "$fails" -eq 0 ] || { echo "--- last output:" >&2; cat "$t/out.txt" >&2; }
echo "$passes passed, $fails failed ($(basename "$deb"))"
[ "$fails" -eq 0 ]
