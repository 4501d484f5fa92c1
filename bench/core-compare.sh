#!/usr/bin/env bash
# W&B's core against cairn's core, in the same run, under the unmodified Python SDK
# (wandb 0.31): the same scripts run with `wandb/bin/wandb-core` being W&B's binary or
# cairn's (two overlays of the installed package, first on PYTHONPATH), offline and online
# against one fresh `cairn server`. Prints one table row per figure with both numbers and
# cairn / W&B, and writes every raw measurement to target/bench/core-compare.json.
#
#   1. empty run: `wandb.init(); run.finish()`, in-process and spawn → exit (median of N)
#   2. `run.log` per call, p50 / p99 at 10 / 100 / 1000 metrics, with the SDK's own Python
#      floor (run.log building and serializing its record but sending nothing) and, for
#      reference, WANDB_MODE=disabled (no core, but run.log is then a stub)
#   3. end-to-end values/s (init → finish() returned) for S steps × K metrics, with the core
#      process's peak RSS, CPU seconds and CPU per logged value (W&B's `wandb-symon` sidecar
#      shown apart, not counted)
#   4. a large online run: finish() call → return and → process exit
# Every online run is then checked on the server (history lines = steps, state finished).
# Targets: core memory ≤ ½ of W&B's, core CPU per logged value ≤ ½, no user-visible figure
# worse. Exits non-zero when a workload fails (its stderr and the core's log are printed).
#
# Usage: bench/core-compare.sh [--quick] [--keep] [--cairn-bin PATH] [--json FILE]
#   --quick          tiny sizes (same as CORE_BENCH_QUICK=1): checks the script in ~1 min
#   --keep           keep the temp dirs (each run's WANDB_DIR, stderr, core logs) and the
#                    server's data dir and log
#   --cairn-bin P    use this cairn binary instead of `cargo build --release -p cairn`
#   --json FILE      where to write the JSON (default <target dir>/bench/core-compare.json)
# Sizes (environment; defaults, then --quick's):
#   CORE_BENCH_STARTUP_REPS    5      2       empty runs per core and mode
#   CORE_BENCH_LOG_CALLS       1000   100     timed run.log calls (after the warm-up)
#   CORE_BENCH_LOG_WARMUP      100    10
#   CORE_BENCH_LOG_METRICS     10,100,1000
#   CORE_BENCH_TP_STEPS        10000  500     end-to-end run: steps (× CORE_BENCH_TP_METRICS,
#   CORE_BENCH_TP_METRICS      100            default 100)
#   CORE_BENCH_TP_REPS         3      1
#   CORE_BENCH_LARGE_STEPS     20000  2000    the large online run (× CORE_BENCH_LARGE_METRICS)
#   CORE_BENCH_LARGE_METRICS   100
#   CORE_BENCH_MODES           offline,online
#   CORE_BENCH_LARGE_MODES     online         modes of the large run
#   CORE_BENCH_SCENARIOS       startup,log,throughput,large
#   CORE_BENCH_STATS_INTERVAL  15     x_stats_sampling_interval for both cores (s)
#   CORE_BENCH_POLL_MS         50     /proc sampling period of the core
#   CORE_BENCH_TIMEOUT         600    seconds before a workload counts as hung (killed)
#
# Needs: a Rust toolchain; python3 (the wandb venv of scripts/python-env); curl. Takes a few
# minutes on a 2-core VM after the build. The server runs on a free 127.0.0.1 port and is
# stopped at the end, also on failure or Ctrl-C.
set -uo pipefail

cd "$(dirname "$0")/.."

cairn_bin=""
keep=0
json=""
pass=()
[ "${CORE_BENCH_QUICK:-0}" = 1 ] && pass+=(--quick)
while [ $# -gt 0 ]; do
    case "$1" in
        --cairn-bin) cairn_bin="$2"; shift 2 ;;
        --cairn-bin=*) cairn_bin="${1#*=}"; shift ;;
        --json) json="$2"; shift 2 ;;
        --json=*) json="${1#*=}"; shift ;;
        --quick) pass+=(--quick); shift ;;
        --keep) keep=1; pass+=(--keep); shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/core-compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "bench/core-compare.sh: $*" >&2; exit 1; }

venv=$(bash scripts/python-env) || die "scripts/python-env failed"
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' \
    2>/dev/null) || target_dir="$PWD/target"
[ -n "$json" ] || json="$target_dir/bench/core-compare.json"

# 1. cairn, release build.
if [ -z "$cairn_bin" ]; then
    echo "building cairn (cargo build --release --locked -p cairn)..." >&2
    cargo build --release --locked -p cairn >&2 ||
        die "the release build failed; use --cairn-bin PATH for a built binary"
    cairn_bin="$target_dir/release/cairn"
fi
[ -x "$cairn_bin" ] || die "no cairn binary at $cairn_bin"

# 2. A fresh server for the online runs (SQLite, temp data dir).
state=$(mktemp -d -t cairn-core-compare-server.XXXXXX)
data="$state/data"
log="$state/server.log"
mkdir -p "$data"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 200); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    if [ "$keep" = 1 ]; then
        echo "kept the server's data dir $data (log $log)" >&2
    else
        rm -rf "$state"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

key="local-$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
    die "no free port"
base="http://127.0.0.1:$port"
# Only the flags choose the data: CAIRN_* from the caller's environment are dropped.
env $(env | sed -n 's/^\(CAIRN_[A-Za-z0-9_]*\)=.*/-u \1/p') CAIRN_ADMIN_API_KEY="$key" \
    "$cairn_bin" server --addr "127.0.0.1:$port" --data "$data" </dev/null >>"$log" 2>&1 &
server_pid=$!
for _ in $(seq 600); do
    kill -0 "$server_pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "the server exited before it listened"; }
    curl -sf -o /dev/null --max-time 2 "$base/healthz" && break
    sleep 0.1
done
curl -sf -o /dev/null --max-time 2 "$base/healthz" || { tail -n 30 "$log" >&2; die "the server did not listen within 60 s"; }
echo "cairn server at $base (pid $server_pid, data $data)" >&2

# 3. Every scenario, both cores.
"$venv/bin/python" bench/core_compare.py drive --cairn-bin "$cairn_bin" --base-url "$base" \
    --api-key "$key" --entity admin --json "$json" "${pass[@]}"
rc=$?
if [ "$rc" != 0 ]; then
    echo "bench/core-compare.sh: some workloads failed (exit $rc); server log tail:" >&2
    tail -n 20 "$log" >&2
fi
exit "$rc"
