#!/bin/sh
# The command-line contract: usage errors, versions, script errors, search order, safe paths.
# usage: test_cli.sh METASYNC_BINARY
set -u
ms=$1
fails=0; passes=0
t=$(mktemp -d "${TMPDIR:-/tmp}/metasync-cli.XXXXXX")
trap 'rm -rf "$t"' EXIT
check() { # check NAME CONDITION...
  name=$1; shift
  if "$@"; then passes=$((passes + 1)); else echo "FAIL: $name" >&2; fails=$((fails + 1)); fi
}
run() { "$ms" "$@" >"$t/out" 2>"$t/err"; echo $? >"$t/rc"; }
rc() { [ "$(cat "$t/rc")" = "$1" ]; }
has() { grep -q -- "$2" "$t/$1"; }
lines() { [ "$(wc -l <"$t/$1")" -eq "$2" ]; }

run frobnicate;              check "unknown command exits 64" rc 64
                             check "unknown command prints usage on stderr" has err "usage: metasync"
run --frob sctokf;           check "unknown option exits 64" rc 64
run -j zero repl;            check "bad -j exits 64" rc 64
run --log-level loud repl;   check "bad log level exits 64" rc 64
run;                         check "no command exits 64" rc 64
run --help;                  check "--help exits 0" rc 0
                             check "--help on stdout" has out "kftosc"
run --version;               check "--version exits 0" rc 0
for w in "metasync " "Lua 5.4" "libcurl " "PCRE2 " "lua-cjson " "sqlite "; do
  check "--version names $w" has out "$w"
done

# The journal commands: argument errors are usage errors; no state yet is one clear line.
run revert;                  check "revert without a run exits 64" rc 64
                             check "revert says what it needs" has err "revert needs a run id"
run report a b;              check "report with two runs exits 64" rc 64
run report --format xml;     check "report --format xml exits 64" rc 64
mkdir -p "$t/home/config"
printf '{"Config":{"sectigoLogin":"a","sectigoPassword":"b","sectigoCustomerUri":"c","sectigoAPIUrl":"http://127.0.0.1:9","keyfactorAPIUrl":"http://127.0.0.1:9","keyfactorLogin":"d","keyfactorPassword":"e","importAllCustomFields":true}}' >"$t/home/config/config.json"
printf '{"ManualFields":[],"CustomFields":[]}' >"$t/home/config/fields.json"
(cd "$t" && "$ms" report -c "$t/home/config" >"$t/out" 2>"$t/err"; echo $? >"$t/rc")
                             check "report before any run exits 1" rc 1
                             check "report before any run names the state file" has err "no state file at $t/home/config/../state/metasync.db\|no state file at $t/home/state/metasync.db"
                             check "report before any run is one line" lines err 1
[ ! -e "$t/state" ] && [ ! -e "$t/home/state" ];  check "report creates no state file" [ $? -eq 0 ]

# A script error: one clear line and exit 1; the traceback only with --verbose.
printf 'local function f() error("kaput") end\nf()\n' >"$t/bad.lua"
run run "$t/bad.lua";        check "script error exits 1" rc 1
                             check "script error is one line" lines err 1
                             check "script error names the message" has err "kaput"
run -v run "$t/bad.lua";     check "--verbose shows the traceback" has err "stack traceback"
printf 'return 2\n' >"$t/two.lua"
run run "$t/two.lua";        check "a script's integer return is the exit code" rc 2
printf 'print(#arg, arg[1], arg[2], ...)\n' >"$t/args.lua"
run run "$t/args.lua" a b;   check "run passes arguments" has out "2	a	b	a	b"
printf 'x = = 1\n' >"$t/syntax.lua"
run run "$t/syntax.lua";     check "a syntax error exits 1" rc 1

# Search order for sctokf: --scripts DIR, then <config>/scripts, then stock. Case-insensitive mode.
mkdir -p "$t/cfg/scripts" "$t/site"
printf 'print("from-config") return 0\n' >"$t/cfg/scripts/sctokf.lua"
printf 'print("from-site") return 0\n' >"$t/site/sctokf.lua"
run -c "$t/cfg" SCtoKF;                  check "config dir script wins over stock" has out "from-config"
run -c "$t/cfg" --scripts "$t/site" sctokf; check "--scripts wins over config" has out "from-site"
run -c "$t/cfg" sctokf --scripts "$t/site"; check "options after the command" has out "from-site"
# Options reach the script.
printf 'local o = require "metasync.options" print(o.command, o.dry_run, o.concurrency)\n' >"$t/cfg/scripts/kftosc.lua"
run -c "$t/cfg" --dry-run -j 3 KFTOSC;   check "options table" has out "kftosc	true	3"

# package.path: no relative entries, no C modules, stock lib/ reachable.
cd "$t" || exit 1
printf 'error("stray module loaded")\n' >"$t/stray.lua"
printf 'local ok = pcall(require, "stray") assert(not ok, "stray loaded")\nassert(package.cpath == "")\nassert(not package.path:find("%%./"))\nprint("paths-ok")\n' >"$t/paths.lua"
run run "$t/paths.lua";      check "relative path entries removed" has out "paths-ok"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
