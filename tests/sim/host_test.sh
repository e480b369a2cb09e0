#!/bin/bash
# Tests of metasync-sim's C host (not the simulated APIs): ready line, request table, 413,
# non-blocking delays, faults, Lua errors, malformed input, exit codes, clean SIGTERM.
# Usage: host_test.sh METASYNC_SIM TESTSERVER_LUA
set -u
sim=$1
testserver=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sim-host-test.XXXXXX") || exit 1
pid=""
drain=""
failures=0
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$drain" ] && kill "$drain" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
check() { # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}

# launch SIM_ARGS...: runs the simulator, waits for its ready line, sets $pid and $ready.
# The ready line is read through a FIFO, as tests/with-sim.sh does: the read blocks until this
# simulator writes its line (or exits), so it can neither see a previous simulator's line in a
# file not yet truncated nor give up early on a loaded machine (polling a file for it failed
# 11 of 20 runs under load). Whatever else the simulator prints is drained into
# $tmp/out after the ready line, so stdout can still be checked, and it never blocks on a pipe.
launch() {
  rm -f "$tmp/ready" && mkfifo "$tmp/ready" || exit 1
  "$sim" "$@" >"$tmp/ready" 2>"$tmp/err" &
  pid=$!
  exec 3<"$tmp/ready"
  ready=""
  # 60 s: far beyond any start-up, even under ASan on a busy machine; only a hang ends here.
  IFS= read -r -t 60 ready <&3
  printf '%s\n' "$ready" >"$tmp/out"
  cat <&3 >>"$tmp/out" &
  drain=$!
  exec 3<&-
}
# start HANDLER [args...]: launch with a Lua handler.
start() { launch --handler "$@"; }
stop() { # stop: SIGTERM, returns the exit status
  kill -TERM "$pid"
  wait "$pid"
  local rc=$?
  pid=""
  # The drain ends with the simulator (end of file on the FIFO).
  wait "$drain" 2>/dev/null
  drain=""
  if grep -q 'ERROR: [A-Za-z]*Sanitizer\|runtime error' "$tmp/err"; then
    fail "sanitizer report: $(cat "$tmp/err")"
  fi
  return $rc
}
# raw_status PORT TARGET [HEADER]: the status of a GET sent by hand (curl cannot read
# configuration lines this long).
raw_status() {
  exec 4<>"/dev/tcp/127.0.0.1/$1" || return
  printf 'GET %s HTTP/1.1\r\nHost: x\r\n%s%sConnection: close\r\n\r\n' "$2" "${3:-}" "${3:+$'\r\n'}" >&4
  timeout 5 head -c 12 <&4 | cut -c10-12
  exec 4<&-
}
url_of() { printf '%s' "$ready" | sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

# A handler exercising the host's error paths and response options.
cat >"$tmp/handler.lua" <<'EOF'
local sim = require("sim")
local M = {}
function M.init(args)
  if args[1] == "--fail" then error("bad option --fail", 0) end
  if args[1] == "--help" then print("usage: test handler"); return nil end
  return { host = "127.0.0.1", sectigo_port = 0, keyfactor_port = 0 }
end
function M.handle(req)
  local p = req.path:gsub("^/KeyfactorAPI", "")
  if p == "/raise" then error("kaput \"quoted\"") end
  if p == "/notable" then return 42 end
  if p == "/badstatus" then return { status = 7 } end
  if p == "/inject" then return { headers = { ["X-A"] = "a\r\nX-Evil: 1" } } end
  if p == "/list" then
    return { headers = { ["X-Total-Count"] = 3, ["Content-Type"] = "text/plain" }, body = "abc" }
  end
  if p == "/date" then return { body = sim.http_date(784111777) } end
  if p == "/req" then
    local a = {}
    for _, kv in ipairs(req.arg_list) do a[#a + 1] = kv[1] .. "=" .. kv[2] end
    return { body = table.concat({ req.api, req.method, req.path, req.query, req.args.b or "-",
      table.concat(a, "&"), req.headers["x-multi"] or "-", #req.body,
      req.remote:match("^127%.0%.0%.1:%d+$") and "remote-ok" or req.remote }, "|") }
  end
  return { status = 404, body = "{}" }
end
return M
EOF

# --- exit codes without a server ---
"$sim" --handler >/dev/null 2>"$tmp/err"
check "--handler without a file exits 64" 64 $?
"$sim" --handler "$tmp/handler.lua" --fail >/dev/null 2>"$tmp/err"
check "an init error exits 64" 64 $?
check "the init error is reported" "metasync-sim: bad option --fail" "$(cat "$tmp/err")"
out=$("$sim" --handler "$tmp/handler.lua" --help 2>&1)
check "help (init returns nil) exits 0" "0 usage: test handler" "$? $out"
"$sim" --handler "$tmp/does-not-exist.lua" >/dev/null 2>&1
rc=$?
[ "$rc" -ne 0 ] && pass "a missing handler file fails ($rc)" || fail "a missing handler file exits 0"

out=$("$sim" --help)
check "--help exits 0" 0 $?
printf '%s\n' "$out" | grep -q '^  --handler FILE ' && pass "--help lists --handler" || fail "--help lacks --handler"
printf '%s\n' "$out" | grep -qF '{"sectigo":"http://H:P","keyfactor":"http://H:Q/KeyfactorAPI"}' &&
  pass "--help states the ready line" || fail "--help lacks the ready line"

# TLS options are checked before anything starts (tests/http/tls_test.sh serves over TLS).
out=$("$sim" --handler "$testserver" --tls-cert "$tmp/x.pem" 2>&1)
check "--tls-cert without --tls-key" "64 metasync-sim: TLS needs both --tls-cert and --tls-key" "$? $out"
out=$("$sim" --handler "$testserver" --tls-cert "$tmp/x.pem" --tls-key "$tmp/x.key" 2>&1)
check "a missing certificate file" \
  "66 metasync-sim: --tls-cert $tmp/x.pem: cannot read: No such file or directory" "$? $out"
printf 'not a certificate\n' >"$tmp/x.pem"
out=$("$sim" --handler "$testserver" --tls-cert "$tmp/x.pem" --tls-key "$tmp/x.pem" 2>&1)
check "a file that is not PEM" "66 metasync-sim: --tls-cert $tmp/x.pem: not a PEM file" "$? $out"
out=$("$sim" --handler "$testserver" --tls-cert 2>&1)
check "--tls-cert without a value" "64 metasync-sim: --tls-cert needs a file" "$? $out"

# --- --data refuses what is not a world, with one line naming the problem ---
data_err() { # data_err DESCRIPTION EXPECTED_STDERR FILE
  "$sim" --data "$3" --sectigo-port 0 --keyfactor-port 0 >/dev/null 2>"$tmp/err" &
  local p=$! rc
  for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill "$p" 2>/dev/null && fail "$1: the simulator started"
  wait "$p"
  rc=$?
  check "$1" "64 $2" "$rc $(cat "$tmp/err")"
}
printf '[]' >"$tmp/w.json"
data_err "--data []" "metasync-sim: --data $tmp/w.json: world: must be a JSON object" "$tmp/w.json"
printf '{"bogus":1}' >"$tmp/w.json"
data_err "--data unknown key" \
  "metasync-sim: --data $tmp/w.json: world: unknown key 'bogus' (expected keyfactor, sectigo, settings)" "$tmp/w.json"
printf '{"sectigo":{"certs":[]}}' >"$tmp/w.json"
data_err "--data unknown nested key" \
  "metasync-sim: --data $tmp/w.json: sectigo: unknown key 'certs' (expected certificates, customFields, types)" "$tmp/w.json"
data_err "--data a directory" "metasync-sim: --data $tmp: is a directory" "$tmp"
data_err "--data a missing file" \
  "metasync-sim: --data: cannot read $tmp/nope.json: No such file or directory" "$tmp/nope.json"
: >"$tmp/w.json"
data_err "--data an empty file" "metasync-sim: --data $tmp/w.json: file is empty" "$tmp/w.json"

# --- the host's own handler: request table, errors, headers ---
start "$tmp/handler.lua"
if ! printf '%s' "$ready" | grep -Eq '^\{"sectigo":"http://127\.0\.0\.1:[0-9]+","keyfactor":"http://127\.0\.0\.1:[0-9]+/KeyfactorAPI"\}$'; then
  fail "ready line format: [$ready] $(cat "$tmp/err")"
  exit 1
fi
pass "ready line with both APIs"
S=$(url_of sectigo)
K=$(url_of keyfactor)
check "exactly one line on stdout" 1 "$(wc -l <"$tmp/out")"

body=$(curl -s -X PUT -H 'X-Multi: 1' -H 'X-Multi: 2' --data-binary 'hello' "$S/req?b=%20x&a=1&b=2&flag")
check "request table" "sectigo|PUT|/req|b=%20x&a=1&b=2&flag|2|b= x&a=1&b=2&flag=|1, 2|5|remote-ok" "$body"
body=$(curl -s "$K/req")
check "keyfactor daemon tags its requests" "keyfactor|GET|/KeyfactorAPI/req||-||-|0|remote-ok" "$body"
check "sim.http_date" "Sun, 06 Nov 1994 08:49:37 GMT" "$(curl -s "$S/date")"

code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$S/raise")
check "a Lua error answers 500" 500 "$code"
grep -q '"error":".*kaput \\"quoted\\""}$' "$tmp/body" && pass "the error body is JSON with the message" ||
  fail "error body: $(cat "$tmp/body")"
grep -q 'kaput' "$tmp/err" && pass "the error is logged" || fail "the error is not logged"
check "a non-table response answers 500" 500 "$(curl -s -o /dev/null -w '%{http_code}' "$S/notable")"
check "an invalid status answers 500" 500 "$(curl -s -o /dev/null -w '%{http_code}' "$S/badstatus")"
curl -s -D "$tmp/hdr" -o /dev/null "$S/inject"
grep -qi '^X-Evil' "$tmp/hdr" && fail "header injection went through" || pass "CRLF in a header value is refused"

curl -s -I "$S/list" >"$tmp/hdr"
grep -q '^X-Total-Count: 3' "$tmp/hdr" && pass "HEAD keeps Lua headers" || fail "HEAD headers: $(cat "$tmp/hdr")"
grep -q '^Content-Length: 3' "$tmp/hdr" && pass "HEAD announces the body length" || fail "HEAD length"
check "Lua's Content-Type wins" "text/plain" \
  "$(curl -s -o /dev/null -w '%{content_type}' "$S/list")"
check "default Content-Type" "application/json;charset=UTF-8" \
  "$(curl -s -o /dev/null -w '%{content_type}' "$S/date")"

# malformed input: the server must survive all of it
# Headers and the request line share MHD's per-connection memory (256 KiB).
check "huge header answers 431" 431 "$(raw_status "${S##*:}" /req "X-Big: $(head -c 400000 /dev/zero | tr '\0' a)")"
printf 'url = "%s/req?q=%s"\n' "$S" "$(head -c 65536 /dev/zero | tr '\0' q)" >"$tmp/cfg"
check "a 64 KiB query reaches Lua" 65539 "$(curl -s -K "$tmp/cfg" | cut -d'|' -f4 | wc -c)"
long=$(head -c 30000 /dev/zero | tr '\0' z)
curl -s -o /dev/null "$S/$long?$long=$long" || true
curl -s -o /dev/null "$S/a%00b%ff%?%zz=%00&&&==&%" || true
exec 3<>"/dev/tcp/127.0.0.1/${S##*:}" && { printf 'GARBAGE \x01\x02\r\n\r\n' >&3; cat <&3 >/dev/null; exec 3<&-; }
exec 3<>"/dev/tcp/127.0.0.1/${S##*:}" && { printf 'POST /req HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\nabc' >&3; timeout 5 cat <&3 >/dev/null; exec 3<&-; }
exec 3<>"/dev/tcp/127.0.0.1/${S##*:}" && { printf 'POST /req HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n' >&3; timeout 5 cat <&3 >/dev/null; exec 3<&-; }
check "still serving after malformed requests" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$S/date")"
stop
check "SIGTERM exits 0" 0 $?

# --- the test server: delays, 413, faults ---
start "$testserver" --sectigo-port 0 --keyfactor-port 0
printf '%s' "$ready" | grep -Eq '^\{"sectigo":"http://127\.0\.0\.1:[0-9]+"\}$' &&
  pass "ready line with one API" || fail "ready line: [$ready] $(cat "$tmp/err")"
S=$(url_of sectigo)

head -c $((9 << 20)) /dev/zero >"$tmp/9m"
head -c $((8 << 20)) /dev/zero >"$tmp/8m"
check "9 MiB body answers 413" 413 "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$tmp/9m" "$S/echo")"
check "9 MiB chunked body answers 413" 413 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/9m" "$S/echo")"
check "the test server's 413 is plain JSON" '{"error":"request body larger than 8 MiB"}' \
  "$(curl -s --data-binary @"$tmp/9m" "$S/echo")"
check "8 MiB body is accepted" 200 "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$tmp/8m" "$S/echo")"

curl -s "$S/__test/reset" >/dev/null
args=()
for i in $(seq 256); do args+=(-o /dev/null "$S/delay?ms=100&id=$i"); done
t0=$(date +%s%N)
codes=$(curl -s -Z --parallel-max 256 --parallel-immediate -w '%{http_code}\n' "${args[@]}" 2>/dev/null | sort | uniq -c | tr -s ' ')
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
check "256 delayed requests all answer 200" " 256 200" "$codes"
[ "$ms" -lt 1500 ] && pass "256 x 100 ms served concurrently in $ms ms" ||
  fail "256 x 100 ms took $ms ms (delays block each other?)"
max=$(curl -s "$S/__test/stats" | sed -n 's/.*"max_inflight":\([0-9]*\).*/\1/p')
[ "${max:-0}" -ge 200 ] && pass "max_inflight $max" || fail "max_inflight [$max] < 200"

# Clients that give up mid-request (FIN right behind a partial request) stop counting.
for _ in 1 2 3; do
  exec 3<>"/dev/tcp/127.0.0.1/${S##*:}" && { printf 'GET /x HTTP/1.1\r\nHost: a\r\n' >&3; exec 3<&-; }
  exec 3<>"/dev/tcp/127.0.0.1/${S##*:}" && { printf 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nab' >&3; exec 3<&-; }
done
sleep 0.5
check "aborted requests leave nothing in flight" 1 \
  "$(curl -s "$S/__test/stats" | sed -n 's/.*"inflight":\([0-9]*\).*/\1/p')"

curl -s -o "$tmp/body" "$S/reset-conn?after=100&bytes=1000"
rc=$?
check "reset: curl sees a connection reset (56)" 56 "$rc"
check "reset: after the promised bytes" 100 "$(wc -c <"$tmp/body")"
curl -s -o "$tmp/body" "$S/truncate?after=300&bytes=1000"
rc=$?
check "truncate: curl sees a short body (18)" 18 "$rc"
check "truncate: after the promised bytes" 300 "$(wc -c <"$tmp/body")"
check "still serving after faults" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$S/echo")"

# SIGTERM while connections are parked in delays
curl -s -o /dev/null "$S/delay?ms=5000" &
cpid=$!
sleep 0.3
t0=$(date +%s%N)
stop
rc=$?
t1=$(date +%s%N)
check "SIGTERM with a parked request exits 0" 0 "$rc"
[ $(((t1 - t0) / 1000000)) -lt 3000 ] && pass "and does not wait for the delay" || fail "shutdown waited"
wait "$cpid" 2>/dev/null

# --- the simulator proper: errors the host answers itself come in the vendor's shape ---
launch --certs 20 --sectigo-port 0 --keyfactor-port 0
S=$(url_of sectigo)
K=$(url_of keyfactor)
sc=(-H 'login: sim-admin' -H 'password: sim-password' -H 'customerUri: sim-customer')
kf=(-u sim-admin:sim-password -H 'x-keyfactor-requested-with: APIClient')
sc_kv='("code":-[0-9]+|"description":"[^"]+")'
kf_kv='("ErrorCode":"0x[0-9A-F]+"|"Message":"[^"]+")'
sc_shape="^\\{$sc_kv,$sc_kv\\}\$"
kf_shape="^\\{$kf_kv,$kf_kv\\}\$"
shape() { # shape DESCRIPTION STATUS REGEX...: checks $code and that $tmp/body matches each
  local want=$2 ok=1 re
  shift 2
  for re in "$@"; do grep -Eq "$re" "$tmp/body" || ok=0; done
  if [ "$code" = "$want" ] && [ "$ok" = 1 ]; then pass "$1"; else
    fail "$1: got $code $(head -c 300 "$tmp/body")"; fi
}
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "${sc[@]}" -X PUT --data-binary @"$tmp/9m" "$S/api/ssl/v1")
shape "Sectigo 413 in Sectigo's error shape" 413 "$sc_shape"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "${kf[@]}" -X PUT -H 'Transfer-Encoding: chunked' \
  --data-binary @"$tmp/9m" "$K/Certificates/Metadata")
shape "Keyfactor 413 (chunked) in Keyfactor's error shape" 413 "$kf_shape"
printf 'url = "%s/api/ssl/v1?commonName=%s"\n' "$S" "$(head -c 100000 /dev/zero | tr '\0' c)" >"$tmp/cfg"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "${sc[@]}" -K "$tmp/cfg")
shape "a 100k-character commonName reaches the endpoint: 400" 400 "$sc_shape" '"code":-1601' 'commonName'
printf 'url = "%s/Certificates?QueryString=IssuedCN%%20-eq%%20%s"\n' "$K" "$(head -c 100000 /dev/zero | tr '\0' c)" >"$tmp/cfg"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "${kf[@]}" -K "$tmp/cfg")
shape "a 100k-character Keyfactor query reaches the endpoint: 400" 400 "$kf_shape"
# Beyond the connection memory MHD answers 414 itself, with a body it does not let us change.
check "a 300 KB URL answers 414" 414 \
  "$(raw_status "${S##*:}" "/api/ssl/v1?commonName=$(head -c 300000 /dev/zero | tr '\0' c)")"
check "still serving" 200 "$(curl -s -o /dev/null -w '%{http_code}' "${sc[@]}" "$S/api/ssl/v1?size=1")"
stop
check "the simulator exits 0 on SIGTERM" 0 $?

[ "$failures" -eq 0 ] && echo "all host tests passed" || echo "$failures host test(s) failed"
[ "$failures" -eq 0 ]
