"""`run.log` latency and context switches, W&B's core against cairn's, alternated.

Builds two overlays of the installed `wandb` package in a temp dir (symlinks; only
`bin/wandb-core` differs: W&B's binary or cairn's), then runs this same file as a workload
under each, alternating, ROUNDS times. Each workload logs WARMUP then N calls of K metrics
offline, optionally with GAP_MS between calls (BUSY=1: Python busy-work, else sleep), and
prints the p50/p90/p99 of the timed calls and, per thread of the script and of its core,
the voluntary / involuntary context switches and CPU ticks over the timed loop.

    ~/.cache/cairn/venv-wandb-0.31.0/bin/python bench/core_log_latency.py \\
        --cairn-bin target/release/cairn [--rounds 2]
    K=100 GAP_MS=2 BUSY=1 CAIRN_CORE_SPIN_US=1000 …  (environment, passed to both runs)

Used for BENCHMARKS.md, "run.log latency on a small machine".
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time


def workload():
    import wandb

    n = int(os.environ.get("N", "2000"))
    k = int(os.environ.get("K", "10"))
    gap = float(os.environ.get("GAP_MS", "0")) / 1000
    busy = os.environ.get("BUSY") == "1"
    run = wandb.init(project="log-latency", mode="offline",
                     settings=wandb.Settings(x_stats_sampling_interval=15))
    row = {f"m{i}": float(i) for i in range(k)}
    for _ in range(int(os.environ.get("WARMUP", "200"))):
        run.log(row)
    pids = [os.getpid()] + children(os.getpid())
    before = {p: threads(p) for p in pids}
    times = []
    for _ in range(n):
        if gap and busy:
            end = time.perf_counter() + gap
            while time.perf_counter() < end:
                pass
        elif gap:
            time.sleep(gap)
        t = time.perf_counter_ns()
        run.log(row)
        times.append(time.perf_counter_ns() - t)
    after = {p: threads(p) for p in pids}
    times.sort()
    us = lambda q: times[min(n - 1, int(n * q))] / 1000  # noqa: E731
    print(f"{os.environ['CORE_NAME']:6} K={k} gap={gap * 1000:g}ms busy={int(busy)}: "
          f"p50 {us(0.5):.0f} p90 {us(0.9):.0f} p99 {us(0.99):.0f} µs", flush=True)
    for p in pids:
        for tid, (name, vol, invol, ticks) in after[p].items():
            b = before[p].get(tid, (name, 0, 0, 0))
            if (vol - b[1]) or (invol - b[2]) or (ticks - b[3]):
                print(f"    {name:16} voluntary {vol - b[1]:6}  involuntary {invol - b[2]:6}  "
                      f"cpu {ticks - b[3]} ticks")
    run.finish()


def children(pid):
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(stat.split("/")[2]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def threads(pid):
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            status = open(task + "/status").read()
            name = open(task + "/comm").read().strip()
            vol = int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
            invol = int(status.split("nonvoluntary_ctxt_switches:")[1].split()[0])
            stat = open(task + "/stat").read().rsplit(")", 1)[1].split()
            out[task.rsplit("/", 1)[1]] = (name, vol, invol, int(stat[11]) + int(stat[12]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cairn-bin", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import wandb

    from core_compare import make_overlay

    real = os.path.dirname(os.path.realpath(wandb.__file__))
    with tempfile.TemporaryDirectory(prefix="cairn-log-latency-") as tmp:
        cores = {
            "wandb": make_overlay(os.path.join(tmp, "wandb"), real,
                                  os.path.join(real, "bin", "wandb-core")),
            "cairn": make_overlay(os.path.join(tmp, "cairn"), real,
                                  os.path.realpath(args.cairn_bin)),
        }
        for _ in range(args.rounds):
            for name, root in cores.items():
                env = dict(os.environ, PYTHONPATH=root, CORE_NAME=name, WANDB_SILENT="true",
                           WANDB_DIR=os.path.join(tmp, "runs"), CORE_LOG_LATENCY_WORKLOAD="1")
                os.makedirs(env["WANDB_DIR"], exist_ok=True)
                subprocess.run([sys.executable, os.path.abspath(__file__)], env=env, check=True)


if __name__ == "__main__":
    if os.environ.get("CORE_LOG_LATENCY_WORKLOAD") == "1":
        workload()
    else:
        main()
