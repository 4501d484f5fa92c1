"""The W&B side of `bench/compare`: the same workloads as cairn's `bench_*` examples.

Run with the venv's Python (wandb==0.31.0), offline: `bench/compare` sets WANDB_MODE=offline,
WANDB_DIR (a temp dir), WANDB_SILENT=true and leaves console capture at its default.

    wandb_workload.py log --metrics K [--calls N] [--warmup W]
    wandb_workload.py throughput --steps S --metrics K
    wandb_workload.py console --lines N [--tracked]

Each writes one JSON object to the file named by CAIRN_BENCH_RESULT (stderr when unset) with
the same fields as the matching cairn example. Keys are `train/m0`, `train/m1`, ... and the
values the same formula as on the cairn side, so both logs hold the same numbers.
(Workload 1, the empty run, is a `python -c` one-liner in `bench/compare` itself.)
"""

import argparse
import json
import os
import sys
import time


def peak_rss_kib():
    """Peak resident set size of this process so far (VmHWM), in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def report(result):
    text = json.dumps(result)
    path = os.environ.get("CAIRN_BENCH_RESULT")
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
    else:
        print(text, file=sys.stderr)


def percentile(sorted_values, p):
    if not sorted_values:
        return 0
    rank = round(p / 100 * (len(sorted_values) - 1))
    return sorted_values[min(rank, len(sorted_values) - 1)]


def log_calls(args):
    """Per-call cost of run.log: each call timed with perf_counter_ns, dict built before."""
    import wandb

    names = [f"train/m{k}" for k in range(args.metrics)]
    run = wandb.init(project="cairn-bench")
    times = []
    for i in range(args.warmup + args.calls):
        x = 1.0 / (i + 1)
        row = {name: x * (k + 1) for k, name in enumerate(names)}
        t0 = time.perf_counter_ns()
        run.log(row)
        took = time.perf_counter_ns() - t0
        if i >= args.warmup:
            times.append(took)
    t0 = time.perf_counter()
    run.finish()
    finish = time.perf_counter() - t0
    mean = sum(times) / max(len(times), 1)
    times.sort()
    report(
        {
            "sdk": "wandb",
            "metrics": args.metrics,
            "calls": args.calls,
            "warmup": args.warmup,
            "p50_ns": percentile(times, 50),
            "p90_ns": percentile(times, 90),
            "p99_ns": percentile(times, 99),
            "mean_ns": mean,
            "max_ns": times[-1] if times else 0,
            "finish_ms": finish * 1e3,
            "peak_rss_kib": peak_rss_kib(),
        }
    )


def throughput(args):
    """Values per second from before wandb.init() to run.finish() returning."""
    import wandb

    names = [f"train/m{k}" for k in range(args.metrics)]
    started = time.perf_counter()
    run = wandb.init(project="cairn-bench")
    init = time.perf_counter() - started
    log_dir = run.dir  # .../files; the .wandb log is in its parent
    for step in range(args.steps):
        x = 1.0 / (step + 1)
        run.log({name: x * (k + 1) for k, name in enumerate(names)})
    looped = time.perf_counter() - started
    run.finish()
    total = time.perf_counter() - started
    values = args.steps * args.metrics
    run_dir = os.path.dirname(log_dir)
    log_bytes = sum(
        os.path.getsize(os.path.join(run_dir, name))
        for name in os.listdir(run_dir)
        if name.endswith(".wandb")
    )
    report(
        {
            "sdk": "wandb",
            "steps": args.steps,
            "metrics": args.metrics,
            "init_s": init,
            "loop_s": looped - init,
            "finish_s": total - looped,
            "total_s": total,
            "values_per_s": values / total,
            "log_bytes": log_bytes,
            "bytes_per_value": log_bytes / max(values, 1),
            "peak_rss_kib": peak_rss_kib(),
        }
    )


def console(args):
    """print() of N lines, untracked or inside a run; the clock starts at the first line."""
    run = None
    if args.tracked:
        import wandb

        run = wandb.init(project="cairn-bench")
    started = time.perf_counter()
    for i in range(args.lines):
        print(f"line {i}")
    sys.stdout.flush()
    printed = time.perf_counter() - started
    finish = 0.0
    if run is not None:
        t0 = time.perf_counter()
        run.finish()
        finish = time.perf_counter() - t0
    report(
        {
            "sdk": "wandb",
            "lines": args.lines,
            "tracked": args.tracked,
            "print_s": printed,
            "finish_s": finish,
            "total_s": printed + finish,
            "peak_rss_kib": peak_rss_kib(),
        }
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="workload", required=True)
    p = sub.add_parser("log")
    p.add_argument("--metrics", type=int, default=100)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=100)
    p.set_defaults(func=log_calls)
    p = sub.add_parser("throughput")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--metrics", type=int, default=100)
    p.set_defaults(func=throughput)
    p = sub.add_parser("console")
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--tracked", action="store_true")
    p.set_defaults(func=console)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
