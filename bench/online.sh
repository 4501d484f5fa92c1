#!/usr/bin/env bash
# Does uploading cost the training loop anything? Runs cairn's `train` example (release)
# offline, online against a local `cairn server`, online against a server that answers
# every request 2 s late (the fault proxy's `delay` mode), and online with the server
# down (finish deadline 0: the run is left for `cairn sync`). For each (median of 3) it
# prints the logging loop's time (what `log` costs the training loop, as the example
# measures it) and the whole process's wall time (which online includes the upload's end
# in `finish`), with ratios to offline.
#
#   bench/online.sh [--steps N] [--metrics K]      (defaults 200000 and 10)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=200000
metrics=10
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --metrics) metrics="$2"; shift 2 ;;
    *) echo "usage: bench/online.sh [--steps N] [--metrics K]" >&2; exit 2 ;;
  esac
done
cargo build --release --locked -p cairn >&2
cargo build --release --locked -p cairn-sdk --example train >&2
venv="$(scripts/python-env)"
work="$(mktemp -d)"
key="local-$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
CAIRN_ADMIN_API_KEY="$key" target/release/cairn server --addr "127.0.0.1:$port" --data "$work/data" \
  >"$work/server.log" 2>&1 &
server=$!
"$venv/bin/python" tests/faults/proxy.py --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$port" \
  --port-file "$work/proxy.port" --control-port-file "$work/control.port" >/dev/null 2>&1 &
proxy=$!
trap 'kill $server $proxy 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  [ -s "$work/control.port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }
proxy_port="$(cat "$work/proxy.port")"
control="http://127.0.0.1:$(cat "$work/control.port")"
curl -s -X POST "$control/__proxy/mode" -d '{"mode":"delay","seconds":2}' >/dev/null

run() { # name, then env assignments; prints "loop_s wall_s p50 p99" of the median run
  local name="$1"; shift
  local rows=()
  for i in 1 2 3; do
    local t0 t1 loop
    t0=$(date +%s.%N)
    env WANDB_DIR="$work/runs" WANDB_PROJECT=bench WANDB_RUN_ID="$name$i$RANDOM" "$@" \
      target/release/examples/train --steps "$steps" --metrics "$metrics" >/dev/null 2>"$work/err"
    t1=$(date +%s.%N)
    loop=$(sed -n 's/^train: logged [0-9]* values in \([0-9.]*\) s.*/\1/p' "$work/err")
    p50=$(sed -n 's/.*log p50 \([0-9.]*\) µs.*/\1/p' "$work/err")
    p99=$(sed -n 's/.*p99 \([0-9.]*\) µs.*/\1/p' "$work/err")
    rows+=("$loop $(echo "$t1 - $t0" | bc) $p50 $p99")
  done
  printf '%s\n' "${rows[@]}" | sort -n | sed -n 2p
}

offline=$(run offline WANDB_MODE=offline)
online=$(run online WANDB_MODE=online WANDB_BASE_URL="http://127.0.0.1:$port" WANDB_API_KEY="$key")
slow=$(run slow WANDB_MODE=online WANDB_BASE_URL="http://127.0.0.1:$proxy_port" WANDB_API_KEY="$key")
down=$(run down WANDB_MODE=online WANDB_BASE_URL="http://127.0.0.1:9" WANDB_API_KEY="$key" CAIRN_FINISH_DEADLINE=0)
values=$((steps * metrics))
read -r base_loop base_wall _ _ <<<"$offline"
printf '| run | loop s | values/s in the loop | loop ÷ offline | log p50 µs | log p99 µs | process wall s | wall ÷ offline |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for row in "offline|$offline" "online|$online" "online, server 2 s late|$slow" "online, server down|$down"; do
  name="${row%%|*}"
  read -r loop wall p50 p99 <<<"${row#*|}"
  printf '| %s | %.3f | %.0f | %.2f | %s | %s | %.2f | %.2f |\n' "$name" "$loop" \
    "$(echo "$values / $loop" | bc -l)" "$(echo "$loop / $base_loop" | bc -l)" "$p50" "$p99" \
    "$wall" "$(echo "$wall / $base_wall" | bc -l)"
done
