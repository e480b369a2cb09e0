#!/bin/sh
# The progress line on a real terminal (a tmux pane): a run against a slow simulator shows one
# status line (phase, counters, rate, ETA) on stderr while it works, and erases it before the
# summary. The pane is read after each chunk the run prints (tmux pipe-pane into a FIFO), not
# on a timer; a generous deadline only bounds a run that hangs.
# usage: test_progress_tty.sh /path/to/metasync   (exit 77 = skipped: no tmux or no simulator)
set -u
MS=${1:?usage: test_progress_tty.sh METASYNC}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sim="$(dirname "$MS")/tests/sim/metasync-sim"
command -v tmux >/dev/null 2>&1 || { echo "tmux not installed: skipped"; exit 77; }
[ -x "$sim" ] || { echo "no simulator at $sim: skipped"; exit 77; }
# Under the simulator: 300 certificates, every answer 50 ms late, so the run takes seconds.
if [ -z "${METASYNC_SIM_SECTIGO:-}" ]; then
    exec "$root/tests/with-sim.sh" "$sim" --certs 300 --seed 7 --latency-ms 50 -- "$0" "$@"
fi
case "$MS" in /*) ;; *) MS="$(pwd)/$MS" ;; esac

tmp=$(mktemp -d) || exit 1
sock="$tmp/tmux.sock"
T() { tmux -S "$sock" "$@"; }
trap 'exec 3<&- 2>/dev/null; T kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0

# The stock config, pointed at the simulator.
mkdir -p "$tmp/config"
cp "$root/config/fields.json" "$root/config/bannedcharacters.json" "$tmp/config/"
sed -e "s#\"sectigoAPIUrl\": *\"[^\"]*\"#\"sectigoAPIUrl\": \"$METASYNC_SIM_SECTIGO\"#" \
    -e "s#\"keyfactorAPIUrl\": *\"[^\"]*\"#\"keyfactorAPIUrl\": \"$METASYNC_SIM_KEYFACTOR\"#" \
    "$root/config/config.json" >"$tmp/config/config.json"
chmod 600 "$tmp/config/config.json"

mkfifo "$tmp/go" "$tmp/out" || exit 1
# The pane waits for "go" so that pipe-pane is in place before the run prints anything.
T -f /dev/null new-session -d -s t -x 160 -y 40 \
    "cat '$tmp/go' >/dev/null; cd '$tmp' && TERM=xterm '$MS' -c '$tmp/config' sctokf; echo \"EXIT=\$?\"; sleep 60"
T pipe-pane -t t -O "cat >'$tmp/out'"
exec 3<"$tmp/out"
echo go >"$tmp/go"

screen() { T capture-pane -p -t t; }
# until TEST: reads what the run prints, one chunk at a time, checking the screen after each
# (and after 2 s without output, for the last chunk). Gives up after 45 s.
until_screen() {
    deadline=$(( $(date +%s) + 45 ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        timeout 2 dd bs=65536 count=1 <&3 >/dev/null 2>&1
        screen >"$tmp/screen"
        if "$@" <"$tmp/screen"; then return 0; fi
    done
    return 1
}
status_line() { grep -Eq 'syncing: [1-9][0-9]* listed, [0-9]+(/[0-9]+)? matched, [0-9]+ written, [0-9]+ failed, [0-9-]+/s, ETA '; }
finished() { grep -q 'EXIT='; }

if until_screen status_line; then
    echo "ok status_line_appears"
    grep -E 'listed' "$tmp/screen"
else
    echo "FAIL status_line_appears"; screen; fails=$((fails + 1))
fi
if until_screen finished; then echo "ok run_ends"; else echo "FAIL run_ends"; screen; fails=$((fails + 1)); fi
screen >"$tmp/screen"
if grep -q 'ETA' "$tmp/screen"; then
    echo "FAIL status_line_erased: the line is still on the screen"; cat "$tmp/screen"; fails=$((fails + 1))
else
    echo "ok status_line_erased"
fi
if grep -q 'metasync sctokf summary' "$tmp/screen" && grep -q 'EXIT=0' "$tmp/screen"; then
    echo "ok summary"
else
    echo "FAIL summary"; cat "$tmp/screen"; fails=$((fails + 1))
fi

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all ok"
