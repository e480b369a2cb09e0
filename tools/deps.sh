#!/bin/sh
# Install what metasync needs to build and test, from Debian's packages (needs root when
# something is missing; does nothing when everything is there).
set -eu
DEPS="build-essential cmake pkg-config liblua5.4-dev lua-cjson-dev libpcre2-dev
      libcurl4-openssl-dev libedit-dev libsqlite3-dev libmicrohttpd-dev libgnutls28-dev curl tmux openssl"
missing=""
for p in $DEPS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing
