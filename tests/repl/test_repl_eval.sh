#!/bin/sh
# The REPL without a server: `repl -e CHUNK` and its exit status, help, json.null, show/csv/jsonl
# over lists and iterators (streamed), and the same globals under `metasync run`, made only when
# used, so a script without a configuration runs as before.
# usage: test_repl_eval.sh /path/to/metasync
set -u
MS=${1:?usage: test_repl_eval.sh METASYNC}
case "$MS" in /*) ;; *) MS="$(pwd)/$MS" ;; esac
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1 # no ./config here: nothing to load
fails=0
fail() { echo "FAIL $1"; shift; for f in "$@"; do head -c 4000 "$f"; done; fails=$((fails + 1)); }

# ev NAME EXIT CHUNK: metasync repl -e CHUNK must exit with EXIT; output in $tmp/out, $tmp/err
ev() {
    name=$1 want=$2; shift 2
    "$MS" repl -e "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne "$want" ]; then fail "$name: exit code $rc, want $want" "$tmp/out" "$tmp/err"; return 1; fi
}
# has NAME FILE TEXT / lacks NAME FILE TEXT
has() { grep -qF -- "$3" "$tmp/$2" || { fail "$1: $2 lacks '$3'" "$tmp/out" "$tmp/err"; return 1; }; }
lacks() { ! grep -qF -- "$3" "$tmp/$2" || { fail "$1: $2 has '$3'" "$tmp/out" "$tmp/err"; return 1; }; }
same() { printf '%s\n' "$2" >"$tmp/want"; cmp -s "$tmp/want" "$tmp/out" || { fail "$1: stdout differs" "$tmp/want" "$tmp/out" "$tmp/err"; return 1; }; }
quiet() { [ ! -s "$tmp/err" ] || { fail "$1: unexpected stderr" "$tmp/err"; return 1; }; }

# -e: one chunk, values printed, the exit status says whether it ran
ev e_expression 0 '1 + 1' && same e_expression '2' && quiet e_expression && echo "ok e_expression"
ev e_statements 0 'for i = 1, 2 do print("n" .. i) end' && same e_statements "$(printf 'n1\nn2')" && echo "ok e_statements"
ev e_dash_chunk 0 '-1' && same e_dash_chunk '-1' && echo "ok e_dash_chunk"
ev e_error 1 'error("boom")' && has e_error err 'boom' && echo "ok e_error"
ev e_syntax_error 1 'x = = 1' && has e_syntax_error err "unexpected symbol near '='" && echo "ok e_syntax_error"
ev e_after_options 0 '"x"' --log-level warn && same e_after_options 'x' && echo "ok e_after_options"
"$MS" repl -e >"$tmp/out" 2>"$tmp/err"; rc=$?
if [ $rc -eq 64 ] && has e_missing err '-e needs a Lua chunk'; then echo "ok e_missing"; elif [ $rc -ne 64 ]; then fail "e_missing: exit $rc" "$tmp/err"; fi
"$MS" repl -e 1 -e 2 >"$tmp/out" 2>"$tmp/err"; rc=$?
if [ $rc -eq 64 ] && has e_twice err '-e given twice'; then echo "ok e_twice"; elif [ $rc -ne 64 ]; then fail "e_twice: exit $rc" "$tmp/err"; fi
# over a pipe a failed chunk fails the session too, and the lines after it still run
printf 'error("first")\nprint("second")\n' | "$MS" repl >"$tmp/out" 2>"$tmp/err"; rc=$?
if [ $rc -eq 1 ] && same pipe_error 'second'; then echo "ok pipe_error"; elif [ $rc -ne 1 ]; then fail "pipe_error: exit $rc" "$tmp/err"; fi

# JSON null reads as null, wherever it is printed
ev null 0 'json.null, {a = json.null}, json.decode("[null]")' && same null 'null	{ a = null }	{ null }' && echo "ok null"
ev null_print 0 'print(json.null, 1)' && same null_print 'null	1' && echo "ok null_print"

# help: the list (called or not), one entry with its example, by name or by value
ev help_list 0 'help()' && for w in 'clients' 'sectigo' 'keyfactor' 'config' 'matched()' 'side(serial' 'missing(field' \
    'find(serial or CN)' 'show(rows' 'csv(rows' 'jsonl(rows' 'modules' 'json' 'serial.normalise'; do
    has help_list out "$w" || break
done && echo "ok help_list"
ev help_bare 0 'help' && has help_bare out 'missing(field' && echo "ok help_bare"
ev help_one 0 'help("missing")' && has help_one out 'example:' && has help_one out 'show(missing("CostCenter", "keyfactor"))' &&
    lacks help_one out 'find(serial or CN)' && echo "ok help_one"
ev help_value 0 'help(side)' && has help_value out 'side("0A:11:22:33")' && echo "ok help_value"
ev help_unknown 1 'help("nope")' && has help_unknown err "no help for 'nope'" && echo "ok help_unknown"

# no configuration: the clients say why when used, and nothing else suffers
ev no_config 1 'sectigo' && has no_config err 'no configuration: ' && has no_config err 'config.json' && echo "ok no_config"
ev no_config_other 0 'serial.normalise("0a:11")' && same no_config_other 'A11' && quiet no_config_other && echo "ok no_config_other"

# show: aligned, fitted to COLUMNS with an ellipsis, columns from the rows or given, a count
COLUMNS=40 "$MS" repl -e 'show({{name = "a", value = string.rep("v", 60)}, {name = "bbb", value = "w"}})' >"$tmp/out" 2>"$tmp/err"
cat >"$tmp/want" <<'EOF'
name  value
----  ----------------------------------
a     vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv…
bbb   w
(2 rows)
EOF
if cmp -s "$tmp/want" "$tmp/out"; then echo "ok show_fit"; else fail "show_fit" "$tmp/want" "$tmp/out" "$tmp/err"; fi
ev show_columns 0 'show({{a = 1, b = "x\ny", c = true}}, {"c", "b"})' &&
    same show_columns "$(printf 'c     b\n----  ----\ntrue  x\\ny\n(1 row)')" && echo "ok show_columns"
ev show_list_prints 0 'require("metasync.table_out").list({{k = "v"}}, {"k"})' &&
    same show_list_prints "$(printf 'k\n-\nv\n(1 row)')" && echo "ok show_list_prints"
# an iterator of 100000 rows is shown without being held: the heap stays small while it streams
ev show_streams 0 'local n, peak = 0, 0
show(function()
  n = n + 1
  if n % 1000 == 0 then collectgarbage() peak = math.max(peak, collectgarbage("count")) end
  if n <= 100000 then return {n = n, text = "row " .. n} end
end)
io.stderr:write(string.format("peak %d KB\n", math.floor(peak)))' &&
    has show_streams out '(100000 rows)' && has show_streams out '99999  row 99999' &&
    if [ "$(sed -n 's/^peak \([0-9]*\) KB$/\1/p' "$tmp/err")" -lt 4096 ]; then echo "ok show_streams"
    else fail "show_streams: heap grew" "$tmp/err"; fi

# jsonl: one object per row, keys in column order, nil as null; to stdout nothing is returned
ev jsonl 0 'jsonl({{a = 1, b = "x"}, {a = 2}}, nil, {"b", "a"})' &&
    same jsonl "$(printf '{"b":"x","a":1}\n{"b":null,"a":2}')" && echo "ok jsonl"
ev jsonl_file 0 "jsonl({{a = 1}}, '$tmp/x.jsonl')" && same jsonl_file "1	$tmp/x.jsonl" &&
    [ "$(cat "$tmp/x.jsonl")" = '{"a":1}' ] && echo "ok jsonl_file"

# csv: RFC 4180, read back by a parser of the test's own; under `metasync run`, no configuration
mkdir -p "$tmp/csv"
if "$MS" run "$here/csv_check.lua" roundtrip "$tmp/csv" >"$tmp/out" 2>"$tmp/err" && has csv_roundtrip out 'ok csv roundtrip'; then
    echo "ok csv_roundtrip"; else fail "csv_roundtrip" "$tmp/out" "$tmp/err"; fi

# metasync run: the same globals, made on first use; a client without a configuration says why
cat >"$tmp/s.lua" <<'EOF'
print(type(show), type(matched), type(json), getmetatable(_G) ~= nil)
print(rawget(_G, "sectigo") == nil)
local ok, err = pcall(function() return sectigo end)
print(ok, err)
EOF
if "$MS" run "$tmp/s.lua" >"$tmp/out" 2>"$tmp/err"; then
    has run_globals out 'function	function	table	true' && has run_globals out 'true' &&
    has run_globals out 'false	no configuration: ' && quiet run_globals && echo "ok run_globals"
else fail "run_globals: exit code" "$tmp/out" "$tmp/err"; fi

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all ok"
