#!/bin/sh
# The REPL shows no secret: evaluating `sectigo`, `keyfactor` or `config` prints the password
# fields, the Authorization value and the OAuth client secrets as "***" (fields whose key names a
# credential), and any registered secret (log.add_secret) is masked wherever the shell shows it:
# results, nested strings, __tostring text, print(), error messages. Over a pipe, with a
# configuration of its own; the clients are only printed, never used, so no server is needed.
# usage: test_repl_secrets.sh /path/to/metasync
set -u
MS=${1:?usage: test_repl_secrets.sh METASYNC}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0

SC_PASS='Sc-Pass-7781'
KF_PASS='Kf-Pass-9912'
KF_BASIC=$(printf '%s' 'DOMAIN\kf-user:Kf-Pass-9912' | base64)
SC_CLIENT='Sc-Client-Secret-55'
KF_CLIENT='Kf-Client-Secret-66'
REG='Zq-Registered-123'

# config DIR EXTRA_JSON: a configuration directory (127.0.0.1:9 answers nothing: never used)
config() {
    mkdir -p "$1"
    cat >"$1/config.json" <<EOF
{ "Config": {
  "sectigoLogin": "sc-user", "sectigoPassword": "$SC_PASS", "sectigoCustomerUri": "cust",
  "sectigoAPIUrl": "http://127.0.0.1:9", "keyfactorAPIUrl": "http://127.0.0.1:9/KeyfactorAPI",
  "keyfactorLogin": "DOMAIN\\\\kf-user", "keyfactorPassword": "$KF_PASS"$2 } }
EOF
    echo '{ "ManualFields": [], "CustomFields": [] }' >"$1/fields.json"
}
config "$tmp/basic" ''
config "$tmp/oauth" ',
  "sectigoOAuth": { "tokenUrl": "http://127.0.0.1:9/oauth/token", "clientId": "sc-client",
                    "clientSecret": "'"$SC_CLIENT"'" },
  "keyfactorOAuth": { "tokenUrl": "http://127.0.0.1:9/oauth/token", "clientId": "kf-client",
                      "clientSecret": "'"$KF_CLIENT"'" }'

# run NAME CONFIG INPUT [EXIT]: the session's stdout in $tmp/out, stderr in $tmp/err; the exit
# status must be EXIT (default 0: a chunk that fails makes it 1)
run() {
    printf '%s\n' "$3" | "$MS" -c "$2" repl >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne "${4:-0}" ]; then echo "FAIL $1: exit code $rc"; cat "$tmp/err"; fails=$((fails + 1)); return 1; fi
    rc=0
}
# no_secret NAME: neither output holds any secret of either configuration
no_secret() {
    for s in "$SC_PASS" "$KF_PASS" "$KF_BASIC" "$SC_CLIENT" "$KF_CLIENT" "$REG"; do
        if grep -qF -- "$s" "$tmp/out" "$tmp/err"; then
            echo "FAIL $1: '$s' shown"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1)); return 1
        fi
    done
}
# shows NAME FILE TEXT: the output has TEXT (what proves the value was printed, masked)
shows() {
    if ! grep -qF -- "$3" "$tmp/$2"; then
        echo "FAIL $1: $2 lacks '$3'"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1)); return 1
    fi
}
quiet() {
    if [ -s "$tmp/err" ]; then echo "FAIL $1: unexpected stderr"; cat "$tmp/err"; fails=$((fails + 1)); return 1; fi
}

# Basic auth: the Sectigo password header, Keyfactor's Authorization, both passwords in config.
if run basic_clients "$tmp/basic" "$(printf 'sectigo\nkeyfactor\nconfig')"; then
    no_secret basic_clients && quiet basic_clients &&
    shows basic_clients out 'password = "***"' && shows basic_clients out 'Authorization = "***"' &&
    shows basic_clients out 'sectigoPassword = "***"' && shows basic_clients out 'keyfactorPassword = "***"' &&
    shows basic_clients out 'login = "sc-user"' && echo "ok basic_clients"
fi

# OAuth: the client secrets in config (nested), printed whole or by the block.
if run oauth_clients "$tmp/oauth" "$(printf 'sectigo\nkeyfactor\nconfig\nconfig.keyfactorOAuth')"; then
    no_secret oauth_clients && quiet oauth_clients && shows oauth_clients out 'clientSecret = "***"' &&
    shows oauth_clients out 'tokenUrl = "http://127.0.0.1:9/oauth/token"' && echo "ok oauth_clients"
fi

# Keys that name a credential, whatever the case and the value; a table under one is walked; a
# long secret does not change the layout (its length would show).
run secret_keys "$tmp/basic" '{ Password = 12345678, client_secret = "cs", ACCESS_TOKEN = "t", apiKey = "k", tokenUrl = "u", token = { a = 1 }, secret_on = true }
{ password = "a-very-long-password-that-would-not-fit-on-one-line-if-its-length-counted-xxxxxxxxxx" }' &&
cat >"$tmp/want" <<'EOF'
{
  ACCESS_TOKEN = "***",
  Password = "***",
  apiKey = "***",
  client_secret = "***",
  secret_on = true,
  token = { a = 1 },
  tokenUrl = "u"
}
{ password = "***" }
EOF
if [ $rc -eq 0 ]; then
    if cmp -s "$tmp/want" "$tmp/out"; then quiet secret_keys && echo "ok secret_keys"
    else echo "FAIL secret_keys: stdout differs"; diff "$tmp/want" "$tmp/out"; fails=$((fails + 1)); fi
fi

# A registered value, wherever the shell would show it.
if run registered "$tmp/basic" "log.add_secret('$REG')
'$REG'
{ note = 'login failed for password $REG' }
setmetatable({}, { __tostring = function() return 'tok $REG' end })
print('said', '$REG')
error('echo $REG')
local '$REG'" 1; then
    no_secret registered &&
    shows registered out '***' && shows registered out '{ note = "login failed for password ***" }' &&
    shows registered out 'tok ***' && shows registered out 'said	***' &&
    shows registered err 'echo ***' && shows registered err "<name> expected near ''***''" &&
    echo "ok registered"
fi

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all ok"
