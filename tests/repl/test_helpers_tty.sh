#!/bin/sh
# The REPL's helpers on a real terminal (a tmux pane) against a slow simulator: the banner names
# help(), completion of a helper, of a field name inside a string and of a config key, a table
# fitted to the pane, the status line of a long listing, Ctrl-C stopping it cleanly (no status
# line left, the next line runs), and no secret anywhere on the screen.
# usage: test_helpers_tty.sh /path/to/metasync   (exit 77 = skipped: no tmux or no simulator)
set -u
MS=${1:?usage: test_helpers_tty.sh METASYNC}
case "$MS" in /*) ;; *) MS="$(pwd)/$MS" ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sim="$(dirname "$MS")/tests/sim/metasync-sim"
command -v tmux >/dev/null 2>&1 || { echo "tmux not installed: skipped"; exit 77; }
[ -x "$sim" ] || { echo "no simulator at $sim: skipped"; exit 77; }
if [ -z "${METASYNC_SIM_SECTIGO:-}" ]; then
    exec "$root/tests/with-sim.sh" "$sim" --certs 2000 --seed 7 -- "$0" "$@"
fi

tmp=$(mktemp -d) || exit 1
sock="$tmp/tmux.sock"
T() { tmux -S "$sock" "$@"; }
trap 'T kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0

# The stock config, pointed at the simulator.
mkdir -p "$tmp/config"
cp "$root/config/fields.json" "$root/config/bannedcharacters.json" "$tmp/config/"
sed -e "s#\"sectigoAPIUrl\": *\"[^\"]*\"#\"sectigoAPIUrl\": \"$METASYNC_SIM_SECTIGO\"#" \
    -e "s#\"keyfactorAPIUrl\": *\"[^\"]*\"#\"keyfactorAPIUrl\": \"$METASYNC_SIM_KEYFACTOR\"#" \
    "$root/config/config.json" >"$tmp/config/config.json"
chmod 600 "$tmp/config/config.json"

WIDTH=90
screen() { T capture-pane -p -t t; }
history_() { T capture-pane -p -S - -t t; }
# wait_for TEXT [SECONDS]: poll the screen (default 10 s)
wait_for() {
    i=0 n=$(( ${2:-10} * 10 ))
    while [ $i -lt $n ]; do
        screen | grep -qF -- "$1" && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}
typeln() { for l in "$@"; do T send-keys -t t -l "$l"; T send-keys -t t Enter; done; }
expect() {
    if wait_for "$2" "${3:-10}"; then echo "ok $1"; else
        echo "FAIL $1: screen lacks '$2'"; screen; fails=$((fails + 1)); fi
}

# COLUMNS is not exported: the table is fitted to what the terminal says
T -f /dev/null new-session -d -s t -x $WIDTH -y 50 \
    "cd '$tmp'; unset COLUMNS; HOME='$tmp' TERM=xterm '$MS' -c '$tmp/config' repl; echo \"EXIT=\$?\"; sleep 60"
expect banner 'help() for help'
expect clients_line "clients: sectigo ($METASYNC_SIM_SECTIGO)"

T send-keys -t t -l 'missi'; T send-keys -t t Tab
expect complete_helper 'metasync> missing'
T send-keys -t t -l '("CostC'; T send-keys -t t Tab
expect complete_field 'metasync> missing("CostCenter'
T send-keys -t t C-u
T send-keys -t t -l 'config.issuerDN'; T send-keys -t t Tab
expect complete_config_key 'metasync> config.issuerDNLookupTerm'
typeln ''
sleep 0.3
if screen | grep -qx 'Sectigo'; then echo "ok config_key_runs"; else echo "FAIL config_key_runs"; screen; fails=$((fails + 1)); fi

typeln 'help()'
expect help_lists 'missing(field [, side])'
if screen | sed -n '/metasync> help()/,$p' | awk 'length($0) > 80' | grep -q .; then echo "FAIL help_fits: wider than 80"; screen; fails=$((fails + 1))
else echo "ok help_fits"; fi

T send-keys -t t C-l
typeln 'show({{a = "x", b = string.rep("y", 200)}})'
expect show_runs '(1 row)'
long=$(screen | sed 's/…/./g' | awk -v w=$WIDTH 'length($0) > w' | head -1) # awk counts bytes
if [ -n "$long" ]; then echo "FAIL show_fits: a line is wider than $WIDTH"; screen; fails=$((fails + 1))
elif screen | grep -q 'yyyy…$'; then echo "ok show_fits"
else echo "FAIL show_fits: no cut value"; screen; fails=$((fails + 1)); fi

# A long listing: every answer 40 ms late, one details read per matched pair.
curl -s -X POST -H 'Content-Type: application/json' -d '{"global":{"latency_ms":40}}' \
    "$METASYNC_SIM_SECTIGO/__sim/faults" >/dev/null
T send-keys -t t C-l
typeln 'show(missing("CostCenter"))'
expect status_line 'Keyfactor certificates listed' 20
T send-keys -t t C-c
expect ctrl_c_stops 'interrupted'
sleep 0.5
if screen | grep -q 'certificates listed'; then
    echo "FAIL status_line_erased"; screen; fails=$((fails + 1))
else echo "ok status_line_erased"; fi
typeln 'print("after" .. "stop")'
expect alive_after_stop 'afterstop'
curl -s -X DELETE "$METASYNC_SIM_SECTIGO/__sim/faults" >/dev/null

# the same question again runs to the end (nothing left over from the one stopped)
T send-keys -t t C-l
typeln 'n = 0 for _ in missing("CostCenter", "keyfactor") do n = n + 1 end print("rows=" .. tostring(n > 0))'
expect rerun 'rows=true' 20

typeln 'sectigo' 'config'
expect clients_print 'sectigoPassword = "***"'
if history_ | grep -qF 'sim-password'; then echo "FAIL no_secret: shown"; fails=$((fails + 1)); else echo "ok no_secret"; fi

T send-keys -t t C-d
expect ctrl_d_exits 'EXIT=0'

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all ok"
