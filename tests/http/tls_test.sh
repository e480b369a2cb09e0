#!/bin/sh
# metasync.http against metasync-sim over TLS (tests/http/test_tls.lua), with certificates made
# on the spot by the openssl command line: a CA, a server certificate for IP 127.0.0.1, a client
# certificate from the same CA, and one from another CA. Two servers: one demanding a client
# certificate (--tls-client-ca), one not.
# Usage: tls_test.sh SOURCE_DIR METASYNC_SIM METASYNC
set -u
abs() { (cd "$(dirname "$1")" && printf '%s/%s' "$(pwd)" "$(basename "$1")"); }
src=$(cd "$1" && pwd) sim=$(abs "$2") metasync=$(abs "$3")
command -v openssl >/dev/null 2>&1 || { echo "tls_test.sh: the openssl command is needed" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/metasync-tls.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT INT TERM
cd "$dir" || exit 1

ssl() { # runs openssl quietly; shows its output only when it fails
  if ! openssl "$@" >ssl.log 2>&1; then echo "tls_test.sh: openssl $1 failed:" >&2; cat ssl.log >&2; exit 1; fi
}
ca() { # ca NAME: a self-signed CA
  ssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=metasync test $1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$1.key" -out "$1.pem"
}
leaf() { # leaf NAME CA EXTENSIONS: a key and a certificate signed by CA
  ssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=metasync test $1" -keyout "$1.key" -out "$1.csr"
  printf 'basicConstraints=CA:FALSE\n%s\n' "$3" >"$1.ext"
  ssl x509 -req -sha256 -days 2 -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
    -extfile "$1.ext" -out "$1.pem"
}
ca ca
ca other-ca
leaf server ca "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client ca "extendedKeyUsage=clientAuth"
leaf other-client other-ca "extendedKeyUsage=clientAuth"

rc=0
"$src/tests/with-sim.sh" "$sim" --handler "$src/tests/http/testserver.lua" \
  --tls-cert server.pem --tls-key server.key --tls-client-ca ca.pem \
  -- "$metasync" run "$src/tests/http/test_tls.lua" "$dir" mutual || rc=1
"$src/tests/with-sim.sh" "$sim" --handler "$src/tests/http/testserver.lua" \
  --tls-cert server.pem --tls-key server.key \
  -- "$metasync" run "$src/tests/http/test_tls.lua" "$dir" server || rc=1
exit $rc
