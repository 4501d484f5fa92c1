#!/usr/bin/env bash
# Benchmark of cairn's web UI on its two heavy pages: a run of 1,000,000 history steps (one
# metric with a one-step spike) charted, and a project of 10,000 runs in the runs table.
# Starts a release `cairn server` (SQLite, temp data dir, a fixed admin API key), then
#   1. bench/ui.py seeds both (raw filestream and GraphQL, W&B's shapes) and times the JSON
#      endpoints the pages read: the chart's series (first request, warm, zoom to 1%) and the
#      runs table (median and max seconds; points, bytes);
#   2. restarts the server on the same data, so the browser's first chart load is cold (the
#      server reads every history line into columns again), and bench/ui-browser.mjs times
#      the pages in headless Chromium: page opened → chart drawn (data-points > 0, data-max
#      is the spike), page opened → table shown ("10000 runs" and rows; rows in the DOM,
#      which is virtualised), in seconds (first = cold, then warm median and max) and in ms
#      from the navigation's start on the page's clock.
# Exits non-zero when a step or a check fails.
#
# Usage: bench/ui.sh [--quick] [--keep] [--cairn-bin PATH] [--steps N] [--runs N] [--repeat N]
#   --quick          --steps 100000 --runs 1000 --repeat 2 (checks the script in ~1 min)
#   --keep           keep the data dir (and the server log) and print where it is
#   --cairn-bin P    use this cairn binary instead of `cargo build --release -p cairn`
#   --steps N        history steps of the long run (default 1000000)
#   --runs N         runs of the big project (default 10000)
#   --repeat N       repetitions of each timing (default 5; the browser's first is the cold one)
#
# Needs: a Rust toolchain; the wandb venv of scripts/python-env (for `requests`); Chromium,
# Node.js and the UI's npm dependencies from scripts/browser-env (installed on first use).
# The server runs on a free 127.0.0.1 port and is stopped at the end, also on failure or Ctrl-C.
set -uo pipefail

cd "$(dirname "$0")/.."

cairn_bin=""
keep=0
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --cairn-bin) cairn_bin="$2"; shift 2 ;;
        --cairn-bin=*) cairn_bin="${1#*=}"; shift ;;
        --quick) pass+=(--steps 100000 --runs 1000 --repeat 2); shift ;;
        --keep) keep=1; shift ;;
        --steps|--runs|--repeat) pass+=("$1" "$2"); shift 2 ;;
        --steps=*|--runs=*|--repeat=*) pass+=("${1%%=*}" "${1#*=}"); shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/ui.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "bench/ui.sh: $*" >&2; exit 1; }

state=$(mktemp -d -t cairn-ui-bench.XXXXXX)
data="$state/data"
log="$state/server.log"
mkdir -p "$data"
server_pid=""

stop_server() {
    [ -n "$server_pid" ] || return 0
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 200); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            echo "bench/ui.sh: the server did not stop within 20 s; killing it" >&2
            kill -KILL "$server_pid" 2>/dev/null
        fi
    fi
    wait "$server_pid" 2>/dev/null
    server_pid=""
}
cleanup() {
    stop_server
    if [ "$keep" = 1 ]; then
        echo "kept the data dir $data (server log $log)" >&2
    else
        rm -rf "$state"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# An on-prem style key (`local-` and 40 of [a-z0-9]), fixed so a kept data dir stays usable.
key="local-$(printf 'cairnuibench%028d' 0)"

# 1. cairn, release build.
if [ -z "$cairn_bin" ]; then
    echo "building cairn (cargo build --release --locked -p cairn)..." >&2
    cargo build --release --locked -p cairn >&2 ||
        die "the release build failed; use --cairn-bin PATH for a built binary"
    target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' \
        2>/dev/null) || target_dir="$PWD/target"
    cairn_bin="$target_dir/release/cairn"
fi
[ -x "$cairn_bin" ] || die "no cairn binary at $cairn_bin"

# 2. The Python venv (requests) and Chromium (with Node.js and playwright-core).
venv=$(bash scripts/python-env) || die "scripts/python-env failed"
chromium=$(bash scripts/browser-env) || die "scripts/browser-env failed"

# 3. The server: a free port each start; ready when it answers HTTP.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
start_server() {
    local port
    port=$(free_port) || die "no free port"
    base="http://127.0.0.1:$port"
    # Only the flags choose the data: CAIRN_* from the caller's environment are dropped.
    env $(env | sed -n 's/^\(CAIRN_[A-Za-z0-9_]*\)=.*/-u \1/p') CAIRN_ADMIN_API_KEY="$key" \
        "$cairn_bin" server --addr "127.0.0.1:$port" --data "$data" \
        </dev/null >>"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 600); do
        kill -0 "$server_pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "the server exited before it listened"; }
        if curl -s -o /dev/null --max-time 2 "$base/api/me"; then
            echo "cairn server at $base (pid $server_pid, data $data)" >&2
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$log" >&2
    die "the server did not listen within 60 s"
}

start_server

# 4. Seeding and the server's timings.
"$venv/bin/python" bench/ui.py --base "$base" --key "$key" "${pass[@]}" ||
    { tail -n 30 "$log" >&2; die "bench/ui.py failed"; }

# 5. A fresh server process on the same data (its caches empty), then the browser.
stop_server
start_server
node bench/ui-browser.mjs --base "$base" --key "$key" --chromium "$chromium" "${pass[@]}"
rc=$?
[ "$rc" = 0 ] || { tail -n 30 "$log" >&2; die "bench/ui-browser.mjs failed (exit $rc)"; }
