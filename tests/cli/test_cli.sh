#!/bin/sh
# The command-line contract: usage errors, help, completion, versions, the commands run from
# lib/ (check, apply), script errors, search order, safe paths.
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

# A usage error is the reason and a pointer to the help, two lines on stderr, not the usage.
usage_error() { # usage_error NAME REASON: the last run was a usage error saying REASON
  check "$1 exits 64" rc 64
  check "$1 says why" has err "$2"
  check "$1 points to --help" has err "^see 'metasync --help'\$"
  check "$1 is two lines" lines err 2
  check "$1 prints no usage" sh -c "! grep -q 'usage: metasync' '$t/err'"
}
run frobnicate;              usage_error "unknown command" "^metasync: unknown command 'frobnicate'\$"
run --frob sctokf;           usage_error "unknown option" "unknown option '--frob'"
run -j zero repl;            usage_error "bad -j" "--concurrency expects a number"
run --log-level loud repl;   usage_error "bad log level" "unknown log level 'loud'"
run;                         usage_error "no command" "no command given"
run sctokf extra;            usage_error "an argument to sctokf" "unexpected argument 'extra'"
run --help;                  check "--help exits 0" rc 0
                             check "--help on stdout" has out "kftosc"
                             check "--help lists check" has out "^  check "
                             check "--help lists apply" has out "^  apply PLAN "
                             check "--help lists help" has out "^  help \[COMMAND\] "
                             check "--help lists completion" has out "^  completion SHELL "
# Every option the parser takes is in the help (the completion lists them from the parser).
for opt in $("$ms" completion bash | sed -n "s/^  local options='\(.*\)'$/\1/p"); do
  check "--help documents $opt" grep -q -- "$opt[ ,]" "$t/out"
done
run --version;               check "--version exits 0" rc 0
for w in "metasync " "Lua 5.4" "libcurl " "PCRE2 " "lua-cjson " "sqlite "; do
  check "--version names $w" has out "$w"
done
# The commit it was built from (git rev-parse --short HEAD when configured; "unknown" outside git).
check "--version names the commit" grep -Eq '^metasync [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{4,40}|unknown)\)$' "$t/out"

# Help for each command, two ways: `metasync help CMD` and `metasync CMD --help` (or -h), on
# stdout with exit 0, the same text, with examples.
for c in sctokf kftosc sync report revert run repl check apply help completion; do
  run help "$c";             check "help $c exits 0" rc 0
                             check "help $c is $c's usage" has out "^usage: metasync .*$c"
                             check "help $c has examples" has out "^examples:"
                             check "help $c on stdout only" [ ! -s "$t/err" ]
  cp "$t/out" "$t/help"
  run "$c" --help;           check "$c --help exits 0" rc 0
                             check "$c --help is help $c" cmp -s "$t/out" "$t/help"
  run "$c" -h;               check "$c -h is help $c" cmp -s "$t/out" "$t/help"
done
run help;                    check "help alone exits 0" rc 0
                             check "help alone is the general help" has out "^usage: metasync \[options\] <command>"
run help SYNC;               check "help takes a command in any case" has out "^usage: metasync \[options\] sync"
run help frobnicate;         usage_error "help for an unknown command" "no help for 'frobnicate'"
run help sync revert;        usage_error "help with two commands" "help takes one command"
# run: --help in place of the script is run's help (it used to look for a file named --help);
# after the script, it is the script's own argument.
run run --help;              check "run --help is not a script" has out "^usage: metasync \[options\] run SCRIPT"
printf 'print("script got", ...)\n' >"$t/echo.lua"
run run "$t/echo.lua" --help; check "run SCRIPT --help goes to the script" has out "script got	--help"
run -c /nonexistent sync --help; check "--help wins over running the command" has out "^usage: metasync \[options\] sync"
                             check "--help runs nothing" [ ! -s "$t/err" ]

# check and apply: their usage errors here; what they do with the stock lib/ below and in
# tests/integration/test_check.lua.
run check extra;             usage_error "check with an argument" "unexpected argument 'extra'"
run apply;                   usage_error "apply without a plan" "apply needs a plan file"
run apply a.json b.json;     usage_error "apply with two plans" "unexpected argument 'b.json'"

# completion: a script for bash and zsh, made from the commands and options themselves.
run completion;              usage_error "completion without a shell" "completion needs a shell"
run completion fish;         usage_error "completion for another shell" "unknown shell 'fish'"
run completion zsh;          check "completion zsh exits 0" rc 0
                             check "completion zsh is a compdef" has out "^#compdef metasync"
                             check "completion zsh has the commands" has out "'check:check the configuration"
                             check "completion zsh completes --format" has out "(csv jsonl)"
if command -v zsh >/dev/null 2>&1; then
  check "completion zsh parses" zsh -n "$t/out"
fi
run completion bash;         check "completion bash exits 0" rc 0
                             check "completion bash parses" bash -n "$t/out"
cp "$t/out" "$t/completion.bash"
# complete WORDS...: what the bash completion offers for the last word (empty for a new word).
complete_words() {
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _metasync; printf "%s\n" "${COMPREPLY[@]}"' \
    sh "$t/completion.bash" "$@" >"$t/out" 2>"$t/err"
}
complete_words metasync "";             check "bash completes the commands" has out "^check$"
                                        check "bash completes all commands" [ "$(wc -l <"$t/out")" -eq 11 ]
complete_words metasync re;             check "bash completes a prefix" [ "$(sort "$t/out" | tr '\n' ' ')" = "repl report revert " ]
complete_words metasync --format "";    check "bash completes --format values" [ "$(tr '\n' ' ' <"$t/out")" = "csv jsonl " ]
complete_words metasync --log-level d;  check "bash completes --log-level values" [ "$(cat "$t/out")" = "debug" ]
complete_words metasync sync --dr;      check "bash completes options after the command" [ "$(cat "$t/out")" = "--dry-run" ]
complete_words metasync -c /tmp sy;     check "bash skips an option's argument" [ "$(cat "$t/out")" = "sync" ]
complete_words metasync help che;       check "bash completes help's command" [ "$(cat "$t/out")" = "check" ]
complete_words metasync completion z;   check "bash completes completion's shell" [ "$(cat "$t/out")" = "zsh" ]
complete_words metasync report l;       check "bash completes a run id" [ "$(cat "$t/out")" = "last" ]
complete_words metasync --vers;         check "bash completes --version" [ "$(cat "$t/out")" = "--version" ]
                                        check "bash completion is quiet" [ ! -s "$t/err" ]

# check and apply run their Lua from the stock lib/ (found beside the executable) with their
# arguments: a copy of the binary beside a stand-in lib/ shows exactly what each is handed.
mkdir -p "$t/fake/share/metasync/lib/metasync" "$t/fake/share/metasync/scripts"
cp "$ms" "$t/fake/metasync"
lib=$t/fake/share/metasync/lib/metasync
printf 'local o = require "metasync.options"\nprint("applycmd", select("#", ...), table.concat({...}, " "), o.dry_run, o.command)\n' >"$lib/applycmd.lua"
printf 'local o = require "metasync.options"\nprint("checkcmd", select("#", ...), table.concat({...}, " "), o.config_dir)\nreturn 1\n' >"$lib/check.lua"
fake() { "$t/fake/metasync" "$@" >"$t/out" 2>"$t/err"; echo $? >"$t/rc"; }
fake apply plan.json --dry-run; check "apply hands the plan to applycmd.lua" has out "^applycmd	2	apply plan.json	true	apply$"
fake --dry-run apply plan.json; check "apply --dry-run before the command" has out "^applycmd	2	apply plan.json	true	apply$"
fake apply plan.json;           check "apply without --dry-run" has out "^applycmd	2	apply plan.json	false	apply$"
fake -c cfgdir check;           check "check runs check.lua" has out "^checkcmd	1	check	cfgdir$"
                                check "check's exit code is check.lua's" rc 1
fake check -c cfgdir;           check "check takes options after it" has out "^checkcmd	1	check	cfgdir$"
rm "$lib/applycmd.lua"
fake apply plan.json;           check "a missing applycmd.lua exits 1" rc 1
                                check "a missing applycmd.lua is named" has err "lib/metasync/applycmd.lua"

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
