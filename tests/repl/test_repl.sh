#!/bin/sh
# REPL over a pipe: no prompt or banner, expression results printed, tables pretty-printed,
# multi-line input, errors reported on stderr without ending the session.
# usage: test_repl.sh /path/to/metasync
set -u
MS=${1:?usage: test_repl.sh METASYNC}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0

# check NAME INPUT EXPECTED_STDOUT [EXPECTED_STDERR_SUBSTRING]: exit status 0, or 1 when a
# stderr substring is expected (an error off a terminal fails the session; the rest still runs)
check() {
    printf '%s\n' "$2" | "$MS" repl >"$tmp/out" 2>"$tmp/err"
    rc=$?
    want_rc=0; [ $# -ge 4 ] && want_rc=1
    if [ -n "$3" ]; then printf '%s\n' "$3" >"$tmp/want"; else : >"$tmp/want"; fi
    if [ $rc -ne $want_rc ]; then
        echo "FAIL $1: exit code $rc"; cat "$tmp/err"; fails=$((fails + 1)); return
    fi
    if ! cmp -s "$tmp/out" "$tmp/want"; then
        echo "FAIL $1: stdout differs"; diff "$tmp/want" "$tmp/out"; cat "$tmp/err"
        fails=$((fails + 1)); return
    fi
    if [ $# -ge 4 ]; then
        if ! grep -qF -- "$4" "$tmp/err"; then
            echo "FAIL $1: stderr lacks '$4'"; cat "$tmp/err"; fails=$((fails + 1)); return
        fi
    elif [ -s "$tmp/err" ]; then
        echo "FAIL $1: unexpected stderr"; cat "$tmp/err"; fails=$((fails + 1)); return
    fi
    echo "ok $1"
}

check print 'print(2+2)' '4'
check expression '1+1' '2'
check multiple_values 'nil, "s", 1.5, true' 'nil	s	1.5	true'
check statement_prints_nothing 'x = 5' ''
check globals_persist "$(printf 'x = 5\nx * 2')" '10'
check empty_and_comment "$(printf '\n-- just a comment\n')" ''

check table_pretty 't = {3, 1, 2, name = "a\"b", ["key with space"] = true, [10] = false,
  nested = {deep = {deeper = {1}}, list = {"x", "y"}}}
t' '{
  3,
  1,
  2,
  [10] = false,
  ["key with space"] = true,
  name = "a\"b",
  nested = {
    deep = {
      deeper = { 1 }
    },
    list = { "x", "y" }
  }
}'
check table_empty '{}' '{}'
check table_cycle "$(printf 'c = {}\nc.self = c\nc')" '{
  self = <cycle>
}'
check table_depth_limit "$(printf 'd = {}\nlocal t = d for i = 1, 20 do t.n = {} t = t.n end\nd')" \
'{
  n = {
    n = {
      n = {
        n = {
          n = {
            n = {
              n = {
                n = {...}
              }
            }
          }
        }
      }
    }
  }
}'
check table_tostring 'setmetatable({}, {__tostring = function() return "custom!" end})' 'custom!'

check multiline_function 'function double(x)
  local y = x * 2
  return y
end
double(21)' '42'
check multiline_expression '{
  a = 1,
}' '{ a = 1 }'
check multiline_operator "$(printf '1 +\n2')" '3'

check error_continues "$(printf 'error("boom")\nprint("after")')" 'after' 'boom'
check error_has_traceback 'error("boom")' '' 'stack traceback'
check syntax_error_continues "$(printf 'x = = 1\nprint("next")')" 'next' "unexpected symbol near '='"
check runtime_error_object "$(printf 'error({})\nprint(1)')" '1' 'table'
check bad_tostring "$(printf 'setmetatable({}, {__tostring = function() error("tse") end})\nprint(2)')" \
'
2' 'tse'

check json_integer 'print(math.type(require("metasync.json").decode("[5]")[1]))' 'integer'

# end of input in the middle of a chunk just ends the session
check eof_mid_chunk "$(printf 'print(1)\nfunction f(')" '1'

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all ok"
