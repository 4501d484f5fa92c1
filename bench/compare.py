"""cairn's SDK against W&B's Python SDK (wandb 0.31), side by side: the issue 3 targets.

Run through `bench/compare`, which finds the wandb venv and builds cairn's release
examples first; see that script for the options. Every workload runs in a fresh temp
directory (WANDB_DIR and the working directory) with WANDB_MODE=offline and
WANDB_SILENT=true; console capture stays at each SDK's default (on); PYTHONUNBUFFERED is
removed from the environment so Python buffers its stdout as it does by default.

Workloads (cairn example / W&B side in bench/wandb_workload.py):

1. empty run, whole process spawn -> exit: `bench_empty` / `python -c "import wandb;
   run = wandb.init(); run.finish()"`; median of N runs.
2. `run.log` per call, K = 10/100/1000 scalars: `bench_log` / `wandb_workload.py log`
   (each call timed, 2000 calls after 100 warm-up); plus cairn's criterion bench
   (`cargo bench -p cairn-sdk --bench log`).
3. end-to-end values/s, init -> finish returning: `bench_throughput` / `... throughput`.
4. peak RSS of the process tree for 2000 x 100 (cairn also 20,000 and 200,000 x 100),
   from VmHWM in /proc, polled every 20 ms for every process of the tree (the measured
   process also reports its own VmHWM at its end, which is what the table shows for it).
5. `.wandb` bytes per logged value for 2000 x 100.
6. 100,000 printed lines, untracked vs in a run, stdout to a file: `bench_console` /
   `... console`.

A workload that fails becomes an error row; the table is always printed.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD_PY = os.path.join(ROOT, "bench", "wandb_workload.py")
EMPTY_PY = "import wandb; run = wandb.init(); run.finish()"
KIB = 1024
MIB = 1024 * 1024


# ---------------------------------------------------------------- processes and memory


def read_status(pid):
    """(comm, VmHWM KiB) of a live process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    name, hwm = "?", None
    for line in text.splitlines():
        if line.startswith("Name:"):
            parts = line.split(None, 1)
            name = parts[1].strip() if len(parts) > 1 else "?"
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    if hwm is None:  # a zombie has no memory lines
        return None
    return name, hwm


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def child_pids(pid):
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return out


class TreePoller(threading.Thread):
    """Polls VmHWM of a process and all its descendants until stopped."""

    def __init__(self, root_pid, interval=0.02):
        super().__init__(daemon=True)
        self.root = root_pid
        self.interval = interval
        self.peaks = {}  # pid -> (name, max VmHWM KiB)
        self.known = {root_pid}
        self.root_exe = None
        self._halt = threading.Event()

    def poll_once(self):
        frontier = [self.root] + [p for p in self.known if p != self.root]
        seen = set()
        while frontier:
            pid = frontier.pop()
            if pid in seen:
                continue
            seen.add(pid)
            status = read_status(pid)
            if status is None:
                continue
            self.known.add(pid)
            frontier.extend(child_pids(pid))
            if pid != self.root and exe_of(pid) == self.root_exe:
                # Forked but not yet exec'd (subprocess start-up): it still reports the
                # parent's VmHWM, which is not memory of its own.
                continue
            name, hwm = status
            old_name, old = self.peaks.get(pid, (name, 0))
            if old_name != name:
                old = 0  # exec'd since: a new image, a new peak
            self.peaks[pid] = (name, max(old, hwm))
        return any(read_status(p) is not None for p in self.known)

    def run(self):
        self.root_exe = exe_of(self.root)
        while not self._halt.is_set():
            self.poll_once()
            time.sleep(self.interval)

    def stop(self, linger=15.0):
        """Stops polling once every known process is gone (at most `linger` s more)."""
        self._halt.set()
        self.join()
        deadline = time.monotonic() + linger
        while self.poll_once() and time.monotonic() < deadline:
            time.sleep(self.interval)

    def by_name(self):
        """Peak KiB summed per process name (root first)."""
        out = {}
        for pid, (name, hwm) in sorted(self.peaks.items(), key=lambda kv: kv[0] != self.root):
            label = "main" if pid == self.root else name
            out[label] = out.get(label, 0) + hwm
        return out


class RunFailed(Exception):
    pass


def run_proc(cmd, env, cwd, stdout=None, timeout=900, poll=False):
    """Runs a workload process; returns wall seconds, and memory peaks when polled."""
    stderr_path = os.path.join(cwd, "stderr.txt")
    out_f = open(stdout, "w") if stdout else subprocess.DEVNULL
    try:
        with open(stderr_path, "w") as err_f:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out_f, stderr=err_f)
            poller = None
            if poll:
                poller = TreePoller(proc.pid)
                poller.start()
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise RunFailed(f"timed out after {timeout} s: {' '.join(cmd)}")
            wall = time.perf_counter() - started
            if poller:
                poller.stop()
    finally:
        if stdout:
            out_f.close()
    if rc != 0:
        with open(stderr_path, errors="replace") as f:
            tail = f.read().strip().splitlines()[-3:]
        raise RunFailed(f"exit {rc}: {' / '.join(tail) or 'no stderr'}")
    return {"wall_s": wall, "peaks_kib": poller.by_name() if poller else None}


class Bench:
    def __init__(self, args):
        self.args = args
        self.cairn_bin = args.cairn_bin
        self.python = args.python
        self.tmp = tempfile.mkdtemp(prefix="cairn-compare-")
        self.counter = 0
        self.raw = {}  # everything measured, for --json

    def workdir(self):
        self.counter += 1
        path = os.path.join(self.tmp, f"w{self.counter:03d}")
        os.makedirs(path)
        return path

    def env(self, workdir):
        env = dict(os.environ)
        for var in ("PYTHONUNBUFFERED", "WANDB_CONSOLE", "WANDB_RUN_ID", "WANDB_RESUME"):
            env.pop(var, None)
        env.update(
            WANDB_MODE="offline",
            WANDB_DIR=workdir,
            WANDB_SILENT="true",
            CAIRN_BENCH_RESULT=os.path.join(workdir, "result.json"),
        )
        return env

    def cairn_cmd(self, example, *args):
        if self.args.cairn_unavailable:
            raise RunFailed(f"cairn not built: {self.args.cairn_unavailable}")
        path = os.path.join(self.cairn_bin, example)
        if not os.path.exists(path):
            raise RunFailed(f"missing {path}")
        return [path, *map(str, args)]

    def wandb_cmd(self, workload, *args):
        if self.args.no_wandb:
            raise RunFailed("skipped (--no-wandb)")
        return [self.python, WORKLOAD_PY, workload, *map(str, args)]

    def workload(self, cmd, stdout=False, poll=False):
        """Runs one workload process in a fresh dir; returns (its JSON result, run info)."""
        wd = self.workdir()
        env = self.env(wd)
        out = os.path.join(wd, "stdout.txt") if stdout else None
        info = run_proc(cmd, env, wd, stdout=out, poll=poll)
        result_path = env["CAIRN_BENCH_RESULT"]
        result = None
        if os.path.exists(result_path):
            with open(result_path) as f:
                result = json.load(f)
        info["stdout_path"] = out
        info["workdir"] = wd
        return result, info

    def cleanup(self):
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def attempt(fn, *args):
    """fn(*args), or the error text."""
    try:
        return fn(*args), None
    except Exception as e:  # a failed workload must not stop the others
        return None, f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------- the workloads


def empty_runs(b, sdk, n):
    walls = []
    for _ in range(n):
        cmd = b.cairn_cmd("bench_empty") if sdk == "cairn" else None
        if sdk == "wandb":
            if b.args.no_wandb:
                raise RunFailed("skipped (--no-wandb)")
            cmd = [b.python, "-c", EMPTY_PY]
        _, info = b.workload(cmd)
        walls.append(info["wall_s"])
    return {"median_s": statistics.median(walls), "all_s": walls}


def log_calls(b, sdk, metrics, calls, warmup, pace=None):
    if sdk == "cairn":
        extra = [] if pace is None else ["--pace", pace]
        cmd = b.cairn_cmd("bench_log", "--metrics", metrics, "--calls", calls,
                          "--warmup", warmup, *extra)
    else:
        cmd = b.wandb_cmd("log", "--metrics", metrics, "--calls", calls, "--warmup", warmup)
    result, _ = b.workload(cmd)
    if not result:
        raise RunFailed("no result written")
    return result


def throughput(b, sdk, steps, metrics, reps, poll=False):
    results = []
    for _ in range(reps):
        if sdk == "cairn":
            cmd = b.cairn_cmd("bench_throughput", "--steps", steps, "--metrics", metrics)
        else:
            cmd = b.wandb_cmd("throughput", "--steps", steps, "--metrics", metrics)
        result, info = b.workload(cmd, poll=poll)
        if not result:
            raise RunFailed("no result written")
        result["peaks_kib"] = info["peaks_kib"]
        results.append(result)
    results.sort(key=lambda r: r["values_per_s"])
    median = dict(results[len(results) // 2])
    median["all_values_per_s"] = [r["values_per_s"] for r in results]
    return median


def console(b, sdk, lines, tracked, reps, budget_s):
    results = []
    spent = 0.0
    for _ in range(reps):
        flag = ["--tracked"] if tracked else []
        if sdk == "cairn":
            cmd = b.cairn_cmd("bench_console", "--lines", lines, *flag)
        else:
            cmd = b.wandb_cmd("console", "--lines", lines, *flag)
        result, info = b.workload(cmd, stdout=True, poll=True)
        if not result:
            raise RunFailed("no result written")
        with open(info["stdout_path"], "rb") as f:
            got = sum(1 for _ in f)
        if got != lines:
            raise RunFailed(f"stdout file has {got} lines, expected {lines}")
        result["peaks_kib"] = info["peaks_kib"]
        results.append(result)
        spent += info["wall_s"]
        if spent > budget_s:
            break  # slow enough that one more run costs more than it tells
    results.sort(key=lambda r: r["total_s"])
    median = dict(results[len(results) // 2])
    median["all_total_s"] = [r["total_s"] for r in results]
    return median


def criterion(b):
    if b.args.no_criterion:
        raise RunFailed("skipped (--no-criterion)")
    log = os.path.join(b.tmp, "criterion.txt")
    with open(log, "w") as f:
        rc = subprocess.run(
            ["cargo", "bench", "-p", "cairn-sdk", "--bench", "log"],
            cwd=ROOT,
            stdout=f,
            stderr=subprocess.STDOUT,
        ).returncode
    if rc != 0:
        with open(log, errors="replace") as f:
            tail = f.read().strip().splitlines()[-3:]
        raise RunFailed(f"cargo bench exit {rc}: {' / '.join(tail)}")
    target = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    root = os.path.join(json.loads(target.stdout)["target_directory"], "criterion")
    out = {}
    for group in ("enqueue", "sustained"):
        for k in (10, 100, 1000):
            # criterion names the folder of group `log/enqueue` `log_enqueue`
            path = os.path.join(root, f"log_{group}", str(k), "new", "estimates.json")
            with open(path) as f:
                est = json.load(f)
            out[f"{group}/{k}"] = {
                "median_ns": est["median"]["point_estimate"],
                "mean_ns": est["mean"]["point_estimate"],
            }
    return out


# ---------------------------------------------------------------- the table


def fmt_time(s):
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_rate(v):
    if v >= 1e6:
        return f"{v / 1e6:.3g} M/s"
    return f"{v / 1e3:.3g} k/s"


def fmt_mib(kib):
    return f"{kib / KIB:.1f} MiB"


def fmt_x(v):
    return f"×{v:.3g}"


def fmt_bytes(v):
    return f"{v:.1f} B"


class Table:
    def __init__(self):
        self.rows = []

    def add(self, name, ref, wandb, cairn, fmt, better="lower", target=None, target_text="",
            wandb_text=None, cairn_text=None, err_w=None, err_c=None):
        """A row; values are numbers (None on error), `fmt` renders them."""
        def cell(v, text, err):
            if err:
                return "error: " + err[:70]
            if v is None:
                return "—"
            return text if text is not None else fmt(v)

        ratio = ""
        if wandb is not None and cairn is not None and wandb > 0 and cairn > 0:
            r = wandb / cairn if better == "lower" else cairn / wandb
            ratio = f"{r:.3g}×"
        met = ""
        if target is not None:
            if cairn is None:
                met = "?"
            elif better == "lower":
                met = "yes" if cairn <= target else "**no**"
            else:
                met = "yes" if cairn >= target else "**no**"
        self.rows.append(
            [name, ref, cell(wandb, wandb_text, err_w), cell(cairn, cairn_text, err_c),
             ratio, target_text, met]
        )

    def error(self, name, ref, err, target_text=""):
        self.rows.append([name, ref, "error: " + err[:70], "", "", target_text, "?"])

    def render(self):
        head = ["workload", "W&B ref", "W&B", "cairn", "cairn better by", "cairn target", "met?"]
        rows = [head] + self.rows
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]

        def line(r):
            return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

        out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out.extend(line(r) for r in self.rows)
        return "\n".join(out)


# ---------------------------------------------------------------- machine facts


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return "?"


def cairn_commit():
    head = sh(["git", "-C", ROOT, "log", "-1", "--format=%h %s"])
    dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    return head + (f" (+ {len(dirty.splitlines())} uncommitted changes)" if dirty else "")


def machine_facts(python):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / KIB / KIB:.1f} GiB"
    except OSError:
        pass
    df = sh(["df", "-T", tempfile.gettempdir()]).splitlines()
    fs = df[-1].split()[1] if len(df) > 1 else "?"
    wandb_version = sh([python, "-c", "import wandb; print(wandb.__version__)"])
    return [
        ("date", time.strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("cpus", f"{os.cpu_count()} ({cpu})"),
        ("memory", mem),
        ("kernel", platform.release()),
        ("temp dir", f"{tempfile.gettempdir()} on {fs}"),
        ("cairn commit", cairn_commit()),
        ("rustc", sh(["rustc", "-V"])),
        ("python", sh([python, "-V"])),
        ("wandb", wandb_version),
        ("load average at start", open("/proc/loadavg").read().split()[:3]),
    ]


def wait_quiet(max_wait, threshold):
    """Waits (at most max_wait s) for the 1-minute load average to drop below threshold."""
    deadline = time.monotonic() + max_wait
    while True:
        load = float(open("/proc/loadavg").read().split()[0])
        if load < threshold or time.monotonic() >= deadline:
            return load
        time.sleep(5)


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description="cairn vs W&B, issue 3 targets")
    p.add_argument("--python", required=True, help="the venv's python (wandb 0.31)")
    p.add_argument("--cairn-bin", required=True, help="target/release/examples")
    p.add_argument("--cairn-unavailable", default="", help="why cairn is not built")
    p.add_argument("--quick", action="store_true", help="fewer repetitions, smaller runs")
    p.add_argument("--no-wandb", action="store_true")
    p.add_argument("--no-criterion", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temp dirs")
    p.add_argument("--json", help="write every measurement to this file")
    p.add_argument("--wait-quiet", type=float, default=0,
                   help="wait up to this many seconds for a load average below 0.5")
    args = p.parse_args()

    t_start = time.monotonic()
    print("cairn SDK vs wandb 0.31: issue 3 benchmark")
    if args.wait_quiet:
        load = wait_quiet(args.wait_quiet, 0.5)
        print(f"(waited for a quiet machine: 1-min load average {load})")
    facts = machine_facts(args.python)
    for k, v in facts:
        print(f"  {k}: {v}")
    sys.stdout.flush()

    b = Bench(args)
    quick = args.quick
    empty_n = 3 if quick else 7
    reps = 1 if quick else 3
    calls, warmup = (300, 50) if quick else (2000, 100)
    lines = 20_000 if quick else 100_000
    mem_steps = [2000, 20_000] if quick else [2000, 20_000, 200_000]
    t = Table()
    raw = b.raw

    def step(msg):
        print(f"[{time.monotonic() - t_start:6.1f} s] {msg}", flush=True)

    # 1. empty run
    step("1. empty run")
    w, ew = attempt(empty_runs, b, "wandb", empty_n)
    c, ec = attempt(empty_runs, b, "cairn", empty_n)
    raw["empty"] = {"wandb": w, "cairn": c, "errors": [ew, ec]}
    t.add(f"1. empty run, process spawn→exit (median of {empty_n})", "0.78 s",
          w and w["median_s"], c and c["median_s"], fmt_time, target=0.030,
          target_text="≤ 30 ms", err_w=ew, err_c=ec)

    # 2. log per call
    step("2. log per call (criterion)")
    crit, ecrit = attempt(criterion, b)
    raw["criterion"] = crit or ecrit
    refs = {10: ("66 µs", 1e-6, "≤ 1 µs"), 100: ("236 µs", 5e-6, "≤ 5 µs"),
            1000: ("1,877 µs", 50e-6, "≤ 50 µs")}
    raw["log"] = {}
    for k in (10, 100, 1000):
        step(f"2. log per call, {k} scalars")
        w, ew = attempt(log_calls, b, "wandb", k, calls, warmup)
        c, ec = attempt(log_calls, b, "cairn", k, calls, warmup)  # paced: queue never full
        c0, ec0 = attempt(log_calls, b, "cairn", k, calls, warmup, 0)  # back to back
        raw["log"][k] = {"wandb": w, "cairn paced": c, "cairn back to back": c0,
                         "errors": [ew, ec, ec0]}
        ref, target, target_text = refs[k]
        t.add(f"2. log {k} scalars, p50 per call (cairn: queue kept from filling)", ref,
              w and w["p50_ns"] / 1e9, c and c["p50_ns"] / 1e9, fmt_time,
              target=target, target_text=target_text, err_w=ew, err_c=ec)
        t.add(f"   log {k} scalars, p99 per call (same)", "",
              w and w["p99_ns"] / 1e9, c and c["p99_ns"] / 1e9, fmt_time, err_w=ew, err_c=ec)
        t.add(f"   log {k} scalars, p50, {calls} calls back to back", "",
              w and w["p50_ns"] / 1e9, c0 and c0["p50_ns"] / 1e9, fmt_time,
              err_w=ew, err_c=ec0)
        if crit:
            t.add(f"   log {k}, criterion enqueue (queue kept from filling), median", "",
                  None, crit[f"enqueue/{k}"]["median_ns"] / 1e9, fmt_time,
                  target=target, target_text=target_text)
            t.add(f"   log {k}, criterion sustained (back to back), median", "",
                  None, crit[f"sustained/{k}"]["median_ns"] / 1e9, fmt_time)
        elif k == 10:
            t.error("   criterion bench", "", ecrit)

    # 3. throughput (and 5. bytes per value from the 2000 x 100 runs)
    raw["throughput"] = {}
    tp_rows = []
    for steps, metrics in ((10_000, 10), (2000, 100), (200, 1000)):
        if quick:
            steps //= 4
        step(f"3. throughput {steps} x {metrics}")
        w, ew = attempt(throughput, b, "wandb", steps, metrics, reps)
        c, ec = attempt(throughput, b, "cairn", steps, metrics, reps)
        raw["throughput"][f"{steps}x{metrics}"] = {"wandb": w, "cairn": c, "errors": [ew, ec]}
        tp_rows.append((steps, metrics, w, c, ew, ec))
        t.add(f"3. values/s, {steps:,} steps × {metrics} (median of {reps})", "84k–218k/s",
              w and w["values_per_s"], c and c["values_per_s"], fmt_rate, better="higher",
              target=10e6, target_text="≥ 10 M/s", err_w=ew, err_c=ec)

    # 4. memory
    raw["memory"] = {}
    step("4. memory, W&B 2000 x 100")
    w, ew = attempt(throughput, b, "wandb", mem_steps[0], 100, 1, True)
    raw["memory"]["wandb"] = w or ew
    wparts = {}
    if w:
        peaks = dict(w["peaks_kib"] or {})
        peaks.pop("main", None)
        wparts = {"user": w["peak_rss_kib"], **peaks}
    mem_c = {}
    for steps in mem_steps:
        step(f"4. memory, cairn {steps} x 100")
        c, ec = attempt(throughput, b, "cairn", steps, 100, 1, True)
        raw["memory"][f"cairn {steps}"] = c or ec
        mem_c[steps] = (c, ec)
    first = True
    for steps, (c, ec) in mem_c.items():
        w_total = sum(wparts.values()) if wparts and first else None
        w_text = None
        if w_total:
            w_text = f"{fmt_mib(w_total)} = " + " + ".join(
                f"{fmt_mib(v)} {name}" for name, v in wparts.items())
        t.add(f"4. peak RSS, {steps:,} steps × 100 (whole process tree)",
              "66 + 33–77 MiB" if first else "",
              w_total, c and c["peak_rss_kib"], fmt_mib, target=20 * KIB,
              target_text="≤ 20 MiB, flat", wandb_text=w_text,
              err_w=ew if first else None, err_c=ec)
        first = False

    # 5. bytes per value (from the 2000 x 100 throughput runs)
    for steps, metrics, w, c, ew, ec in tp_rows:
        if metrics != 100:
            continue
        t.add(f"5. .wandb bytes per value, {steps:,} × {metrics}", "69–93 B",
              w and w["bytes_per_value"], c and c["bytes_per_value"], fmt_bytes,
              target=40, target_text="≤ 40 B", err_w=ew, err_c=ec)
    for steps, metrics, w, c, ew, ec in tp_rows:
        if metrics == 100:
            continue
        t.add(f"   .wandb bytes per value, {steps:,} × {metrics}", "",
              w and w["bytes_per_value"], c and c["bytes_per_value"], fmt_bytes,
              err_w=ew, err_c=ec)

    # 6. console
    raw["console"] = {}
    res = {}
    for sdk in ("wandb", "cairn"):
        for tracked in (False, True):
            step(f"6. console, {sdk}, {'tracked' if tracked else 'untracked'}")
            r, e = attempt(console, b, sdk, lines, tracked, reps, 30.0)
            res[(sdk, tracked)] = (r, e)
            raw["console"][f"{sdk} {'tracked' if tracked else 'untracked'}"] = r or e
    big = None
    if not quick:
        step("6. console, cairn, tracked, 10x the lines")
        big = attempt(console, b, "cairn", lines * 10, True, 1, 0)
        raw["console"]["cairn tracked x10"] = big[0] or big[1]

    def ratio(sdk):
        (u, eu), (tr, et) = res[(sdk, False)], res[(sdk, True)]
        if eu or et:
            return None, eu or et
        return tr["total_s"] / u["total_s"], None

    rw, erw = ratio("wandb")
    rc, erc = ratio("cairn")
    t.add(f"6. console {lines:,} lines, tracked ÷ untracked wall", "×72.8",
          rw, rc, fmt_x, target=1.5, target_text="≤ ×1.5", err_w=erw, err_c=erc)
    for tracked in (False, True):
        (w, ew), (c, ec) = res[("wandb", tracked)], res[("cairn", tracked)]
        label = "tracked" if tracked else "untracked"
        t.add(f"   console {label}: first line → last flushed"
              + (" + finish" if tracked else ""), "",
              w and w["total_s"], c and c["total_s"], fmt_time, err_w=ew, err_c=ec)

    def tree_peak(r):
        peaks = dict(r["peaks_kib"] or {})
        peaks["main"] = max(peaks.get("main", 0), r["peak_rss_kib"])
        return sum(peaks.values()), peaks

    (w, ew), (c, ec) = res[("wandb", True)], res[("cairn", True)]
    w_total, w_text = None, None
    if w:
        w_total, parts = tree_peak(w)
        w_text = f"{fmt_mib(w_total)} = " + " + ".join(
            f"{fmt_mib(v)} {'user' if n == 'main' else n}" for n, v in parts.items())
    t.add(f"   console tracked, peak RSS ({lines:,} lines)", "up to 1 GiB",
          w_total, c and tree_peak(c)[0], fmt_mib, target=20 * KIB,
          target_text="bounded (≤ 20 MiB)", wandb_text=w_text, err_w=ew, err_c=ec)
    if big is not None:
        c, ec = big
        t.add(f"   console tracked, peak RSS ({lines * 10:,} lines)", "", None,
              c and tree_peak(c)[0], fmt_mib, target=20 * KIB,
              target_text="bounded (≤ 20 MiB)", err_c=ec)

    elapsed = time.monotonic() - t_start
    print()
    print(t.render())
    print()
    print("cairn better by: W&B ÷ cairn for times, memory and bytes; cairn ÷ W&B for values/s")
    print("and, for the console row, W&B's slowdown ÷ cairn's. W&B ref: the issue's figures.")
    print("Peak RSS of a process tree is the sum of each process's own peak (VmHWM).")
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}; "
          f"total {elapsed:.0f} s")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"facts": facts, "results": raw, "table": t.rows}, f, indent=1,
                      default=str)
        print(f"raw measurements: {args.json}")
    b.cleanup()


if __name__ == "__main__":
    main()
