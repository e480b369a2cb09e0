#!/bin/sh
# REPL on a terminal (driven through tmux): banner, completion, Ctrl-C interrupting a running
# chunk and cancelling a half-typed line, history file, Ctrl-D leaving with status 0.
# usage: test_repl_tty.sh /path/to/metasync   (exit 77 = skipped: no tmux)
set -u
MS=${1:?usage: test_repl_tty.sh METASYNC}
command -v tmux >/dev/null 2>&1 || { echo "tmux not installed: skipped"; exit 77; }
tmp=$(mktemp -d) || exit 1
# The server's socket lives in the test's own directory (-S, not -L): tmux leaves its socket
# file behind when the server exits, which under -L piled up in /tmp/tmux-UID/.
sock="$tmp/tmux.sock"
T() { tmux -S "$sock" "$@"; }
trap 'T kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0

screen() { T capture-pane -p -t t; }
# wait_for TEXT: poll the screen for up to 5 s
wait_for() {
    i=0
    while [ $i -lt 50 ]; do
        screen | grep -qF -- "$1" && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}
# type TEXT...: each argument literally, followed by Enter
typeln() { for l in "$@"; do T send-keys -t t -l "$l"; T send-keys -t t Enter; done; }
expect() {
    if wait_for "$2"; then echo "ok $1"; else
        echo "FAIL $1: screen lacks '$2'"; screen; fails=$((fails + 1)); fi
}

T -f /dev/null new-session -d -s t -x 120 -y 40 \
    "HOME='$tmp' TERM=xterm '$MS' repl; echo \"EXIT=\$?\"; sleep 60"
expect banner 'REPL (Lua 5.4'
expect prompt 'metasync>'

T send-keys -t t -l 'string.fo'; T send-keys -t t Tab
expect complete_field 'metasync> string.format'
typeln '("[%d]", 7)'
expect complete_field_runs '[7]'

typeln 'answer_value = "abc"'
sleep 0.3
T send-keys -t t -l 'answer_v'; T send-keys -t t Tab
expect complete_global 'metasync> answer_value'
T send-keys -t t -l ':up'; T send-keys -t t Tab
expect complete_method 'answer_value:upper'
typeln '()'
expect method_runs 'ABC'

typeln 'while true do end'
sleep 0.5
T send-keys -t t C-c
expect ctrl_c_interrupts 'interrupted'
typeln 'print("still" .. "here")'
expect alive_after_interrupt 'stillhere'

# Interrupting a wait (no Lua running: the loop is polling) must not poison the next line.
typeln 'require("metasync.task").sleep(30)'
sleep 0.5
T send-keys -t t C-c
sleep 0.3
typeln 'print("after" .. "sleep")'
expect alive_after_interrupted_sleep 'aftersleep'

T send-keys -t t -l 'print("half typed'
sleep 0.3
T send-keys -t t C-c
sleep 0.3
typeln 'print(6 * 7)'
expect ctrl_c_cancels_line '42'
if screen | grep -qF 'half typed6'; then
    echo "FAIL ctrl_c_cancels_line: cancelled text leaked into the next line"; fails=$((fails + 1))
fi

typeln 'for i = 1, 2 do'
expect continuation_prompt '      >>'
typeln 'print("loop" .. i)' 'end'
expect multiline 'loop2'

T send-keys -t t C-d
expect ctrl_d_exits 'EXIT=0'
if grep -qF 'answer_value' "$tmp/.metasync_history" 2>/dev/null; then echo "ok history_written"
else echo "FAIL history_written"; fails=$((fails + 1)); fi

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all ok"
