#!/usr/bin/env bash
# How fast does an artifact reach a local `cairn server`? Logs one file of SIZE MiB
# (random bytes; default 1024) as an artifact online, with cairn's SDK (the `artifacts`
# example, release) and with W&B's Python SDK (wandb==0.31.0), each to a fresh server on
# this disk, and prints, for each (median of 3):
#   total    — from process start to the committed version (hashing + upload + run setup)
#   MiB/s    — SIZE / total
# beside this disk's sequential write speed (dd, 1 GiB, fdatasync), which bounds any
# upload that the server writes to the same disk, and the ratio of each to it.
#
#   bench/artifact-upload.sh [--size MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
size=1024
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    *) echo "usage: bench/artifact-upload.sh [--size MiB]" >&2; exit 2 ;;
  esac
done
cargo build --release --locked -p cairn >&2
cargo build --release --locked -p cairn-sdk --example artifacts >&2
venv="$(scripts/python-env)"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/cairn-upload-bench.XXXXXX")"
server=""
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$work"' EXIT
key="local-$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

mkdir -p "$work/src"
head -c "$((size << 20))" /dev/urandom >"$work/src/weights.bin"
cat "$work/src/weights.bin" >/dev/null # warm the page cache: every run reads from memory

# The disk's sequential write speed (what the server's storage is bound by).
t0=$(date +%s.%N)
dd if=/dev/zero of="$work/dd.bin" bs=16M count=64 conv=fdatasync status=none
t1=$(date +%s.%N)
rm -f "$work/dd.bin"
disk=$(echo "1024 / ($t1 - $t0)" | bc -l)

start_server() {
  rm -rf "$work/data"
  CAIRN_ADMIN_API_KEY="$key" target/release/cairn server --addr "127.0.0.1:$port" \
    --data "$work/data" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return
    sleep 0.1
  done
  cat "$work/server.log" >&2
  exit 1
}
stop_server() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
}

export WANDB_BASE_URL="http://127.0.0.1:$port" WANDB_API_KEY="$key" WANDB_PROJECT=bench \
  WANDB_DIR="$work/runs" WANDB_CACHE_DIR="$work/cache" WANDB_SILENT=true
mkdir -p "$work/runs"

cat >"$work/wandb_log.py" <<'PY'
import sys, wandb
run = wandb.init(project="bench")
art = wandb.Artifact("weights", type="model")
art.add_file(sys.argv[1])
run.log_artifact(art).wait()
run.finish()
PY

time_one() { # command...; prints seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

median() { sort -n | sed -n 2p; }

cairn_times=()
wandb_times=()
for i in 1 2 3; do
  start_server
  cairn_times+=("$(time_one target/release/examples/artifacts log "weights$i" "$work/src")")
  stop_server
  start_server
  wandb_times+=("$(time_one "$venv/bin/python" "$work/wandb_log.py" "$work/src/weights.bin")")
  stop_server
done
cairn=$(printf '%s\n' "${cairn_times[@]}" | median)
wandb=$(printf '%s\n' "${wandb_times[@]}" | median)

printf 'artifact upload of %d MiB to a local cairn server (median of 3)\n' "$size"
printf '%-22s %10s %10s %12s\n' "" "total s" "MiB/s" "of disk"
printf '%-22s %10s %10.0f %12s\n' "disk write (dd)" "-" "$disk" "1.00"
for name in cairn wandb; do
  t=${!name}
  rate=$(echo "$size / $t" | bc -l)
  printf '%-22s %10.2f %10.0f %12.2f\n' "$name" "$t" "$rate" "$(echo "$rate / $disk" | bc -l)"
done
printf 'cairn / wandb time: %.2f\n' "$(echo "$cairn / $wandb" | bc -l)"
