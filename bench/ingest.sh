#!/usr/bin/env bash
# Ingest benchmark of `cairn server`: N concurrent runs replay W&B-shaped filestream traffic
# (history rows batched per request, as W&B's client sends them) against cairn on SQLite and
# on Postgres, and the same values go to an MLflow tracking server (SQLite backend) through
# its `runs/log-batch` REST call. Prints history values/s, p50/p99 request latency, CPU use,
# and the targets: >= 1 M values/s for cairn-sqlite, >= 20x MLflow's rate.
#
# Usage: bench/ingest.sh [--quick] [--cairn-bin PATH] [--postgres-url URL | --no-postgres]
#                        [bench.py options: --runs 8 --metrics 100 --rows 1000 --steps 20000
#                         --mlflow-steps 300 --mlflow-workers 4 --repeat 3 --client-procs 1
#                         --history-only --only sink,sqlite,postgres,mlflow --keep
#                         --json FILE --wait-quiet SECONDS]
#   --quick          small workloads, one repetition (checks the script in ~1 min)
#   --cairn-bin P    use this cairn binary instead of `cargo build --release -p cairn`
#   --postgres-url   postgres://user:password@host:port (no database: a fresh one is
#                    created and dropped); default: what scripts/postgres-env prints
#   --no-postgres    skip cairn-postgres
#
# Needs: a Rust toolchain, python3 (a venv with mlflow, aiohttp and psycopg is created at
# $CAIRN_BENCH_VENV, default ~/.cache/cairn/venv-bench, from PyPI on first use).
# Every server runs on a free 127.0.0.1 port with a temp data dir and is stopped at the end,
# also on failure or Ctrl-C. See bench/ingest/README.md for what is measured.
set -uo pipefail

cd "$(dirname "$0")/.."

venv="${CAIRN_BENCH_VENV:-$HOME/.cache/cairn/venv-bench}"
REQUIREMENTS=("mlflow==3.17.2" "aiohttp==3.14.5" "psycopg[binary]==3.3.9")

cairn_bin=""
built=()
postgres_url=""
no_postgres=0
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --cairn-bin) cairn_bin="$2"; shift 2 ;;
        --cairn-bin=*) cairn_bin="${1#*=}"; shift ;;
        --postgres-url) postgres_url="$2"; shift 2 ;;
        --postgres-url=*) postgres_url="${1#*=}"; shift ;;
        --no-postgres) no_postgres=1; shift ;;
        --quick) pass+=(--steps 5000 --mlflow-steps 100 --repeat 1); shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) pass+=("$1"); shift ;;
    esac
done

state=$(mktemp -d -t cairn-ingest-sh.XXXXXX)
pid_file="$state/server-pids"
: >"$pid_file"
cleanup() {
    # bench.py stops its servers itself; this catches any it could not (e.g. if it was
    # killed): each line is the pid of a server started in its own process group.
    while read -r pgid; do
        [ -n "$pgid" ] && kill -TERM -- "-$pgid" 2>/dev/null
    done <"$pid_file"
    sleep 0.5
    while read -r pgid; do
        [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null
    done <"$pid_file"
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# 1. cairn, release build.
if [ -z "$cairn_bin" ]; then
    echo "building cairn (cargo build --release --locked -p cairn)..." >&2
    if ! cargo build --release --locked -p cairn >&2; then
        echo "bench/ingest.sh: the release build failed; use --cairn-bin PATH for a built binary" >&2
        exit 1
    fi
    target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' \
        2>/dev/null) || target_dir="$PWD/target"
    cairn_bin="$target_dir/release/cairn"
    built=(--cairn-built)
fi
if [ ! -x "$cairn_bin" ]; then
    echo "bench/ingest.sh: no cairn binary at $cairn_bin" >&2
    exit 1
fi
cairn_bin=$(cd "$(dirname "$cairn_bin")" && pwd)/$(basename "$cairn_bin")

# 2. The bench venv (created once; packages added or re-pinned when they differ).
if ! "$venv/bin/python" - "${REQUIREMENTS[@]}" >/dev/null 2>&1 <<'PY'; then
import sys
from importlib.metadata import version
for req in sys.argv[1:]:
    name, want = req.split("==")
    if version(name.split("[")[0]) != want:
        sys.exit(1)
PY
    echo "preparing $venv (${REQUIREMENTS[*]})" >&2
    if [ ! -x "$venv/bin/python" ]; then
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv" >&2 || { echo "bench/ingest.sh: python3 -m venv failed" >&2; exit 1; }
    fi
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" >&2; then
        echo "bench/ingest.sh: pip install into $venv failed" >&2
        exit 1
    fi
fi

# 3. Postgres: a URL given, or the project's private test cluster.
skip_reason=""
if [ "$no_postgres" = 1 ]; then
    postgres_url=""
    skip_reason="--no-postgres given"
elif [ -z "$postgres_url" ]; then
    if [ -f scripts/postgres-env ]; then
        if ! postgres_url=$(bash scripts/postgres-env); then
            postgres_url=""
            skip_reason="scripts/postgres-env failed (see above); pass --postgres-url URL"
        fi
    else
        skip_reason="no scripts/postgres-env and no --postgres-url URL"
    fi
fi
postgres_url="${postgres_url%/}"

# 4. The workloads (bench.py stops every server it started, whatever happens).
"$venv/bin/python" bench/ingest/bench.py \
    --cairn-bin "$cairn_bin" \
    --mlflow-bin "$venv/bin/mlflow" \
    --postgres-url="$postgres_url" \
    --postgres-skip-reason="$skip_reason" \
    --pid-file "$pid_file" \
    "${built[@]}" \
    "${pass[@]}"
