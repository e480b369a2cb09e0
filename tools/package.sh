#!/bin/sh
# Build metasync's Debian package into OUTDIR: a build configured for /usr, then `cpack -G DEB`
# (dist/package.cmake). The package holds what `cmake --install` installs: bin/metasync,
# share/metasync/{lib,scripts,sim}, libexec/metasync/metasync-sim, the manual pages, shell
# completions and share/doc/metasync (examples included). Its Depends come from
# dpkg-shlibdeps when dpkg-dev is there, else from the list in dist/package.cmake.
# usage: tools/package.sh OUTDIR
#   BUILD_DIR               the build directory (default build-pkg)
#   METASYNC_DEB_SHLIBDEPS  OFF: the hand-written Depends even where dpkg-shlibdeps is there
set -eu
[ $# -eq 1 ] || { echo "usage: tools/package.sh OUTDIR" >&2; exit 64; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
tools/deps.sh
build=${BUILD_DIR:-build-pkg}
# A package is built without sanitizers or fuzzing instrumentation, whatever a reused build
# directory was configured with, and for /usr: the binary's fallback stock directory is then
# /usr/share/metasync. zsh on Debian reads packaged completions from vendor-completions.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DMETASYNC_SANITIZE=OFF -DMETASYNC_FUZZ=OFF -DMETASYNC_BUILD_SIM=ON \
  -DMETASYNC_ZSH_COMPLETION_DIR=share/zsh/vendor-completions \
  -DMETASYNC_DEB_SHLIBDEPS="${METASYNC_DEB_SHLIBDEPS:-ON}" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
if ! command -v dpkg-shlibdeps >/dev/null 2>&1; then
  echo "tools/package.sh: dpkg-shlibdeps (dpkg-dev) is not installed: Depends are the list in dist/package.cmake" >&2
fi
# cpack writes its own scratch tree under the build directory and the .deb into OUTDIR.
(cd "$build" && cpack -G DEB -B "$out/_cpack" >/dev/null)
mv "$out"/_cpack/*.deb "$out"/
rm -rf "$out/_cpack"
ls "$out"/metasync_*.deb
