"""W&B's core against cairn's core under the same Python SDK (wandb 0.31), side by side.

Run through `bench/core-compare.sh`, which builds cairn, finds the wandb venv, starts a fresh
`cairn server` for the online runs and passes its address and key here. The same workload
scripts (the `workload` subcommand of this file) run under two overlays of the installed
`wandb` package that differ only in `bin/wandb-core`: W&B's own binary, or cairn's.

Figures, offline and online (same server for both cores), each core's runs interleaved:

1. empty run: `wandb.init(); run.finish()` in-process wall time, and process spawn -> exit;
   median of CORE_BENCH_STARTUP_REPS.
2. `run.log` per call (perf_counter_ns around each call, dict built before), K = 10 / 100 /
   1000 metrics, CORE_BENCH_LOG_CALLS calls after CORE_BENCH_LOG_WARMUP; p50 and p99.
3. end-to-end values/s: S x K values / (init -> finish() returning); median of
   CORE_BENCH_TP_REPS. The core's peak RSS, CPU seconds and CPU per value come from these.

4. a large run, online by default (CORE_BENCH_LARGE_STEPS x CORE_BENCH_LARGE_METRICS):
   finish() call -> return, finish() call -> process exit, and the core's memory and CPU.

Two floors of the SDK's own Python cost, for 2 and 3 (once each, offline, W&B's package):
`nosend`, where run.log does all its Python work (history record built, wrapped, serialized)
but hands nothing to the SDK's asyncio thread or the socket (_drop_history), so what a core
can still win is the rest; and WANDB_MODE=disabled, which starts no core but in 0.31 also
makes run.log a stub (~1 µs), so it bounds nothing useful and is shown only for reference.
Every online run is checked on the server at the end (historyLineCount = steps, state
finished), so a core cannot look fast by dropping data; the `.wandb` bytes per value of
each run are shown too. Each workload runs in a fresh WANDB_DIR / WANDB_CACHE_DIR with the
caller's WANDB_* and CAIRN_* variables removed and PYTHONUNBUFFERED unset.
CORE_BENCH_SCENARIOS (startup,log,throughput,large) picks scenarios.

The core is the Python process's child whose argv[0] is the overlay's `bin/wandb-core`. The
driver (this process, not the workload: no GIL contention) polls /proc every
CORE_BENCH_POLL_MS (50) for the core and its descendants: VmHWM (peak RSS) and utime + stime
from /proc/<pid>/stat, keeping the last values (a zombie's stat still has its final times);
the workload also reads the core's own figures right after finish() returns. W&B's core runs
a system-metrics sidecar (`wandb-symon`): it is reported separately, never counted in the
core's figures. Both cores get the same `x_stats_sampling_interval` (CORE_BENCH_STATS_INTERVAL,
default 15 s, the SDK's default).

A workload that fails (exit, timeout) becomes an error cell; its stderr tail and the core's
log tail are printed after the table.
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

KIB = 1024
CORES = ("wandb", "cairn")
# Floors of the Python SDK's own run.log cost (run on W&B's package, measured once, offline).
FLOORS = {
    "nosend": "Python floor (record built + serialized, not sent)",
    "disabled": "WANDB_MODE=disabled (no core, log is a stub)",
}


# ================================================================ the workload side


def _now():
    return time.monotonic()  # CLOCK_MONOTONIC: the same clock as the driver's


def _percentile(sorted_values, p):
    if not sorted_values:
        return 0
    rank = round(p / 100 * (len(sorted_values) - 1))
    return sorted_values[min(rank, len(sorted_values) - 1)]


def _proc_cpu_s(pid):
    """utime + stime of a process in seconds (a zombie keeps its final times), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_status(pid):
    """(Name, VmHWM KiB or None) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    name, hwm = "?", None
    for line in text.splitlines():
        if line.startswith("Name:"):
            name = line.split(None, 1)[1].strip() if len(line.split(None, 1)) > 1 else "?"
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return name, hwm


def _alive(pid):
    """Running (not gone, not a zombie: a zombie has no memory lines)."""
    status = _proc_status(pid)
    return status is not None and status[1] is not None


def _cmdline0(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode("utf-8", "replace")
    except OSError:
        return None


def _children(pid):
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


def _is_core(pid):
    argv0 = _cmdline0(pid) or ""
    return argv0.endswith("/wandb/bin/wandb-core")


def _own_core_reading():
    """The core's CPU seconds and VmHWM, read by the workload itself (core still running)."""
    for pid in _children(os.getpid()):
        if _is_core(pid):
            status = _proc_status(pid)
            return {"pid": pid, "cpu_s": _proc_cpu_s(pid),
                    "hwm_kib": status[1] if status else None}
    return None


def _report(result):
    path = os.environ.get("CORE_BENCH_RESULT")
    text = json.dumps(result)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
    else:
        print(text, file=sys.stderr)


def _init(wandb):
    settings = wandb.Settings(
        x_stats_sampling_interval=float(os.environ.get("CORE_BENCH_STATS_INTERVAL", "15")))
    return wandb.init(project=os.environ.get("CORE_BENCH_PROJECT", "core-compare"),
                      settings=settings)


def _drop_history(run):
    """From here on, run.log does all of the SDK's Python work on each call (the history
    record built, its stream assigned, wrapped and serialized) but sends nothing: no hand-off
    to the SDK's asyncio thread, no socket write, so the core never sees it."""
    from wandb.proto import wandb_server_pb2 as spb

    iface = run._interface

    def publish_partial_history(partial_history):
        rec = iface._make_request(partial_history=partial_history)
        iface._assign(rec)
        request = spb.ServerRequest()
        request.record_publish.CopyFrom(rec)
        request.SerializeToString()

    iface._publish_partial_history = publish_partial_history


def workload(args):
    """Runs one workload in this process; writes its JSON to $CORE_BENCH_RESULT."""
    started = _now()
    import wandb
    imported = _now()

    names = [f"train/m{k}" for k in range(args.metrics)]
    t_init = _now()
    run = _init(wandb)
    t_inited = _now()
    if os.environ.get("CORE_BENCH_NOSEND") == "1":
        _drop_history(run)
    times = []
    steps = 0
    if args.kind == "log":
        for i in range(args.warmup + args.calls):
            x = 1.0 / (i + 1)
            row = {name: x * (k + 1) for k, name in enumerate(names)}
            t0 = time.perf_counter_ns()
            run.log(row)
            took = time.perf_counter_ns() - t0
            if i >= args.warmup:
                times.append(took)
        steps = args.warmup + args.calls
    elif args.kind == "throughput":
        for step in range(args.steps):
            x = 1.0 / (step + 1)
            run.log({name: x * (k + 1) for k, name in enumerate(names)})
        steps = args.steps
    t_finish = _now()
    run.finish()
    t_finished = _now()
    core = _own_core_reading()  # untimed; the core lives until the process's teardown
    log_bytes = None
    if os.environ.get("WANDB_MODE") != "disabled":
        run_dir = os.path.dirname(run.dir)  # .../files; the .wandb log is beside it
        try:
            log_bytes = sum(os.path.getsize(os.path.join(run_dir, n))
                            for n in os.listdir(run_dir) if n.endswith(".wandb"))
        except OSError:
            pass
    times.sort()
    result = {
        "kind": args.kind,
        "mode": os.environ.get("WANDB_MODE", "online"),
        "steps": steps,
        "metrics": args.metrics,
        "values": steps * args.metrics,
        "t_start": started,
        "import_s": imported - started,
        "init_s": t_inited - t_init,
        "loop_s": t_finish - t_inited,
        "finish_s": t_finished - t_finish,
        "init_to_finished_s": t_finished - t_init,
        "t_finish_call": t_finish,
        "core_at_finish": core,
        "run_id": getattr(run, "id", None),
        "project": os.environ.get("CORE_BENCH_PROJECT", "core-compare"),
        "wandb_log_bytes": log_bytes,
    }
    if times:
        result.update(
            calls=len(times),
            p50_ns=_percentile(times, 50),
            p90_ns=_percentile(times, 90),
            p99_ns=_percentile(times, 99),
            max_ns=times[-1],
            mean_ns=sum(times) / len(times),
        )
    _report(result)


# ================================================================ the driver side


class TreePoller(threading.Thread):
    """Polls a process tree: for each pid its name, argv[0], parent, peak VmHWM, last CPU."""

    def __init__(self, root_pid, interval):
        super().__init__(daemon=True)
        self.root = root_pid
        self.interval = interval
        self.procs = {}  # pid -> dict(name, argv0, parent, hwm_kib, cpu_s)
        self.known = {root_pid: None}  # pid -> parent pid
        self.samples = 0
        self._halt = threading.Event()

    def poll_once(self):
        alive = False
        frontier = list(self.known.items())
        seen = set()
        while frontier:
            pid, parent = frontier.pop()
            if pid in seen:
                continue
            seen.add(pid)
            status = _proc_status(pid)
            cpu = _proc_cpu_s(pid)
            if status is None or cpu is None:
                continue
            alive = True
            self.known.setdefault(pid, parent)
            for child in _children(pid):
                frontier.append((child, pid))
            if pid == self.root:
                continue
            entry = self.procs.get(pid)
            name = status[0]
            if entry is None or entry["name"] != name:
                # new, or exec'd since the last poll (a fork not yet exec'd still shows the
                # parent's image and VmHWM: its figures are replaced once it execs)
                entry = {"name": name, "argv0": _cmdline0(pid), "parent": self.known[pid],
                         "hwm_kib": 0, "cpu_s": 0.0}
                self.procs[pid] = entry
            if status[1] is not None:
                entry["hwm_kib"] = max(entry["hwm_kib"], status[1])
            entry["cpu_s"] = max(entry["cpu_s"], cpu)
        self.samples += 1
        return alive

    def run(self):
        while not self._halt.is_set():
            self.poll_once()
            time.sleep(self.interval)

    def stop(self, linger=15.0):
        """Stops after the root exits, polling the rest until gone (at most `linger` s)."""
        self._halt.set()
        self.join()
        deadline = time.monotonic() + linger
        while self.poll_once() and time.monotonic() < deadline:
            time.sleep(self.interval)

    def summary(self):
        """The core's figures and its descendants' (the sidecar), from the samples."""
        core_pid = None
        for pid, e in self.procs.items():
            if e["parent"] == self.root and (e["argv0"] or "").endswith("/wandb/bin/wandb-core"):
                core_pid = pid
        out = {"core": None, "sidecars": {}, "other": {}, "samples": self.samples}
        if core_pid is not None:
            e = self.procs[core_pid]
            out["core"] = {"pid": core_pid, "hwm_kib": e["hwm_kib"], "cpu_s": e["cpu_s"]}

        def under_core(pid):
            while pid is not None:
                if pid == core_pid:
                    return True
                pid = self.known.get(pid)
            return False

        for pid, e in self.procs.items():
            if pid == core_pid:
                continue
            bucket = out["sidecars"] if core_pid is not None and under_core(pid) else out["other"]
            agg = bucket.setdefault(e["name"], {"count": 0, "hwm_kib": 0, "cpu_s": 0.0})
            agg["count"] += 1
            agg["hwm_kib"] = max(agg["hwm_kib"], e["hwm_kib"])
            agg["cpu_s"] += e["cpu_s"]
        return out


class RunFailed(Exception):
    def __init__(self, msg, detail=""):
        super().__init__(msg)
        self.detail = detail


def tail_file(path, lines=25):
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-lines:])
    except OSError as e:
        return f"<cannot read {path}: {e}>"


def make_overlay(root, real_pkg, core_bin):
    """ROOT/wandb/: symlinks to the installed package's entries; bin/wandb-core -> core_bin."""
    pkg = os.path.join(root, "wandb")
    os.makedirs(os.path.join(pkg, "bin"))
    for entry in os.listdir(real_pkg):
        if entry != "bin":
            os.symlink(os.path.join(real_pkg, entry), os.path.join(pkg, entry))
    for entry in os.listdir(os.path.join(real_pkg, "bin")):
        if entry != "wandb-core":
            os.symlink(os.path.join(real_pkg, "bin", entry), os.path.join(pkg, "bin", entry))
    os.symlink(core_bin, os.path.join(pkg, "bin", "wandb-core"))
    return root


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="cairn-core-compare-")
        self.counter = 0
        self.failures = []  # (label, message, detail)
        self.online_runs = []  # (core, label, result): checked on the server at the end
        real_pkg = subprocess.run(
            [sys.executable, "-c",
             "import os, wandb; print(os.path.dirname(os.path.realpath(wandb.__file__)))"],
            capture_output=True, text=True, check=True).stdout.strip()
        self.real_pkg = real_pkg
        self.overlay = {
            "wandb": make_overlay(os.path.join(self.tmp, "overlay-wandb"), real_pkg,
                                  os.path.join(real_pkg, "bin", "wandb-core")),
            "cairn": make_overlay(os.path.join(self.tmp, "overlay-cairn"), real_pkg,
                                  os.path.realpath(args.cairn_bin)),
        }
        # The two floors run on W&B's package: `disabled` starts no core at all; `nosend`
        # starts W&B's core (offline) but run.log sends it nothing (see _drop_history).
        self.overlay["disabled"] = self.overlay["nosend"] = self.overlay["wandb"]

    def env(self, core, mode, workdir, result):
        env = dict(os.environ)
        for var in list(env):
            if var.startswith("WANDB_") or var.startswith("CAIRN_"):
                del env[var]
        env.pop("PYTHONUNBUFFERED", None)
        env.update(
            PYTHONPATH=self.overlay[core] + (
                os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""),
            WANDB_MODE={"disabled": "disabled", "nosend": "offline"}.get(core, mode),
            WANDB_DIR=workdir,
            WANDB_CACHE_DIR=os.path.join(workdir, "cache"),
            WANDB_CONFIG_DIR=os.path.join(workdir, "config"),
            WANDB_DATA_DIR=os.path.join(workdir, "data"),
            WANDB_SILENT="true",
            WANDB_ERROR_REPORTING="false",
            CORE_BENCH_RESULT=result,
            CORE_BENCH_STATS_INTERVAL=str(self.args.stats_interval),
            CORE_BENCH_PROJECT=f"core-compare-{core}",
        )
        if core == "nosend":
            env["CORE_BENCH_NOSEND"] = "1"
        if mode == "online" and core in CORES:
            env.update(WANDB_BASE_URL=self.args.base_url, WANDB_API_KEY=self.args.api_key,
                       WANDB_ENTITY=self.args.entity)
        return env

    def run(self, core, mode, kind, metrics=0, calls=0, warmup=0, steps=0):
        """One workload process; returns its result with the driver's figures added."""
        self.counter += 1
        label = f"{core} {mode} {kind}" + (f" K={metrics}" if metrics else "") + (
            f" S={steps}" if steps else "") + f" (#{self.counter})"
        wd = os.path.join(self.tmp, f"w{self.counter:03d}-{core}-{mode}-{kind}")
        os.makedirs(wd)
        result_path = os.path.join(wd, "result.json")
        cmd = [sys.executable, os.path.abspath(__file__), "workload", kind,
               "--metrics", str(metrics), "--calls", str(calls), "--warmup", str(warmup),
               "--steps", str(steps)]
        env = self.env(core, mode, wd, result_path)
        stderr_path = os.path.join(wd, "stderr.txt")
        with open(stderr_path, "w") as err, open(os.path.join(wd, "stdout.txt"), "w") as out:
            t_spawn = time.monotonic()
            proc = subprocess.Popen(cmd, env=env, cwd=wd, stdout=out, stderr=err)
            poller = TreePoller(proc.pid, self.args.poll_ms / 1000)
            poller.start()
            try:
                rc = proc.wait(timeout=self.args.timeout)
            except subprocess.TimeoutExpired:
                rc = None
            t_exit = time.monotonic()
            if rc is None:
                # Keep what the tree looks like, then stop the whole session the SDK made.
                hung = poller.summary()
                self.kill_tree(proc, poller)
            poller.stop(linger=0 if rc is None else 15.0)
        if rc != 0:
            msg = (f"timed out after {self.args.timeout:.0f} s" if rc is None else f"exit {rc}")
            detail = self.failure_detail(core, wd, stderr_path)
            if rc is None:
                detail = f"process tree when killed: {json.dumps(hung)}\n" + detail
            self.failures.append((label, msg, detail))
            raise RunFailed(msg, detail)
        try:
            with open(result_path) as f:
                result = json.load(f)
        except (OSError, ValueError) as e:
            detail = self.failure_detail(core, wd, stderr_path)
            self.failures.append((label, f"no result: {e}", detail))
            raise RunFailed(f"no result: {e}", detail)
        tree = poller.summary()
        result["wall_s"] = t_exit - t_spawn
        result["finish_call_to_exit_s"] = t_exit - result["t_finish_call"]
        result["tree"] = tree
        core_fig = None
        if core in CORES:
            polled = tree["core"] or {}
            at_finish = result.get("core_at_finish") or {}
            hwm = max(polled.get("hwm_kib") or 0, at_finish.get("hwm_kib") or 0)
            cpu = max(polled.get("cpu_s") or 0.0, at_finish.get("cpu_s") or 0.0)
            if hwm or cpu:
                core_fig = {"hwm_kib": hwm, "cpu_s": cpu,
                            "cpu_at_finish_s": at_finish.get("cpu_s")}
            else:
                self.failures.append((label, "core process not found by the poller", ""))
        result["core"] = core_fig
        result["workdir"] = wd
        if mode == "online" and core in CORES:
            self.online_runs.append((core, label, result))
        self.log(f"{label}: {fmt_s(result['init_to_finished_s'])} init→finished"
                 + (f", p50 {fmt_s(result['p50_ns'] / 1e9)}" if "p50_ns" in result else "")
                 + (f", core {core_fig['hwm_kib'] / KIB:.1f} MiB {core_fig['cpu_s']:.2f} s CPU"
                    if core_fig else ""))
        return result

    @staticmethod
    def kill_tree(proc, poller):
        """Ends a hung workload and the processes it started (by pid): TERM, then KILL."""
        pids = [p for p in poller.known if p != proc.pid] + [proc.pid]
        for sig in (15, 9):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and any(_alive(p) for p in pids):
                time.sleep(0.05)
        proc.wait()
        # cairn's core keeps its socket in $TMPDIR/cairn-core-<sdk pid>-<core pid>-*
        tmp = tempfile.gettempdir()
        for name in os.listdir(tmp):
            if name.startswith(f"cairn-core-{proc.pid}-"):
                shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)

    def verify_online(self):
        """Each online run's history on the server: {core: (complete, runs)}."""
        import base64
        import urllib.request

        auth = base64.b64encode(f"api:{self.args.api_key}".encode()).decode()
        query = ("query Q($e: String!, $p: String!, $r: String!) { project(name: $p, "
                 "entityName: $e) { run(name: $r) { historyLineCount state } } }")
        out = {}
        for core, label, r in self.online_runs:
            body = json.dumps({"query": query, "variables": {
                "e": self.args.entity, "p": r["project"], "r": r["run_id"]}}).encode()
            req = urllib.request.Request(
                self.args.base_url.rstrip("/") + "/graphql", data=body,
                headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    got = json.load(resp)
                run = ((got.get("data") or {}).get("project") or {}).get("run") or {}
                lines, state = run.get("historyLineCount"), run.get("state")
            except Exception as e:  # the check must not hide the table
                lines, state = None, f"{type(e).__name__}: {e}"
            ok = lines == r["steps"] and state == "finished"
            r["server"] = {"history_lines": lines, "state": state}
            done, total = out.get(core, (0, 0))
            out[core] = (done + ok, total + 1)
            if not ok:
                self.failures.append((label, f"on the server: {lines} history lines (expected "
                                      f"{r['steps']}), state {state}", ""))
        return out

    def failure_detail(self, core, wd, stderr_path):
        """The run's stderr and the core's log(s): cairn's `cairn-core-*.log` (under
        $WANDB_CACHE_DIR/wandb/logs), W&B's `core-debug-*.log` and `debug-internal.log`."""
        parts = [f"workdir: {wd}", "stderr (tail):", tail_file(stderr_path, 40)]
        logs = []
        for dirpath, _, files in os.walk(wd):
            for name in files:
                path = os.path.join(dirpath, name)
                if not os.path.isfile(path) or os.path.islink(path):
                    continue  # W&B's debug-internal.log in WANDB_DIR/wandb is a symlink
                if (name.startswith(("cairn-core-", "core-debug")) and name.endswith(".log")) \
                        or name == "debug-internal.log":
                    logs.append(path)
        for log in sorted(logs)[:4]:
            parts += [f"{log} (tail):", tail_file(log, 40)]
        if not logs:
            parts.append("(no core log found under the workdir)")
        return "\n".join(parts)

    def log(self, msg):
        print(f"[{time.monotonic() - self.args.t0:6.1f} s] {msg}", flush=True)

    def cleanup(self):
        if self.args.keep:
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def attempt(fn, *a, **kw):
    try:
        return fn(*a, **kw), None
    except Exception as e:  # a failed workload must not stop the others
        return None, f"{type(e).__name__}: {e}" if not isinstance(e, RunFailed) else str(e)


def median_by(results, key):
    ordered = sorted(results, key=lambda r: r[key])
    return ordered[len(ordered) // 2]


# ---------------------------------------------------------------- formatting


def fmt_s(s):
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_rate(v):
    return f"{v / 1e6:.3g} M/s" if v >= 1e6 else f"{v / 1e3:.3g} k/s"


def fmt_mib(kib):
    return f"{kib / KIB:.1f} MiB"


def fmt_cpu(s):
    return f"{s:.2f} s"


def fmt_us(s):
    return f"{s * 1e6:.3g} µs"


class Table:
    HEAD = ["figure", "mode", "W&B core", "cairn core", "cairn / W&B", "target", "met?"]

    def __init__(self):
        self.rows = []
        self.verdicts = {"memory": [], "cpu": [], "user": []}

    def add(self, name, mode, w, c, fmt, kind="user", better="lower", ew=None, ec=None,
            w_text=None, c_text=None):
        """kind: `user` (no worse than W&B), `memory` / `cpu` (≤ ½ of W&B), or `info`."""
        def cell(v, text, err):
            if err:
                return "error: " + err[:60]
            if v is None:
                return "—"
            return text if text is not None else fmt(v)

        ratio, met, target = "", "", ""
        if kind == "user":
            target = "≥ W&B" if better == "higher" else "≤ W&B"
        elif kind in ("memory", "cpu"):
            target = "≤ ½ W&B"
        if w and c is not None and w > 0:
            r = c / w
            ratio = f"{r:.3g}"
            if kind == "user":
                ok = r >= 1 if better == "higher" else r <= 1
            elif kind in ("memory", "cpu"):
                ok = r <= 0.5
            else:
                ok = None
            if ok is not None:
                met = "yes" if ok else "**no**"
                self.verdicts[kind].append(ok)
        elif kind != "info":
            met = "?"
            self.verdicts[kind].append(None)
        self.rows.append([name, mode, cell(w, w_text, ew), cell(c, c_text, ec), ratio, target,
                          met])

    def note(self, name, mode, w_text, c_text):
        self.rows.append([name, mode, w_text, c_text, "", "", ""])

    def render(self):
        rows = [self.HEAD] + self.rows
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEAD))]

        def line(r):
            return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

        out = [line(self.HEAD), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out.extend(line(r) for r in self.rows)
        return "\n".join(out)


# ---------------------------------------------------------------- the scenarios


def interleaved(b, n, modes, fn):
    """fn(core, mode) n times for each core and mode, W&B and cairn alternating."""
    out = {(core, mode): [] for core in CORES for mode in modes}
    errs = {}
    for mode in modes:
        for _ in range(n):
            for core in CORES:
                if (core, mode) in errs and not out[(core, mode)]:
                    continue  # failed before: don't spend the time again
                r, e = attempt(fn, core, mode)
                if r is not None:
                    out[(core, mode)].append(r)
                else:
                    errs[(core, mode)] = e
    return out, errs


def main_driver(args):
    args.t0 = time.monotonic()
    q = args.quick
    cfg = {
        "startup_reps": int(os.environ.get("CORE_BENCH_STARTUP_REPS", 2 if q else 5)),
        "log_calls": int(os.environ.get("CORE_BENCH_LOG_CALLS", 100 if q else 1000)),
        "log_warmup": int(os.environ.get("CORE_BENCH_LOG_WARMUP", 10 if q else 100)),
        "log_metrics": [int(k) for k in os.environ.get(
            "CORE_BENCH_LOG_METRICS", "10,100,1000").split(",") if k],
        "tp_steps": int(os.environ.get("CORE_BENCH_TP_STEPS", 500 if q else 10_000)),
        "tp_metrics": int(os.environ.get("CORE_BENCH_TP_METRICS", 100)),
        "tp_reps": int(os.environ.get("CORE_BENCH_TP_REPS", 1 if q else 3)),
        "large_steps": int(os.environ.get("CORE_BENCH_LARGE_STEPS", 2000 if q else 20_000)),
        "large_metrics": int(os.environ.get("CORE_BENCH_LARGE_METRICS", 100)),
        "modes": [m for m in os.environ.get("CORE_BENCH_MODES", "offline,online").split(",")
                  if m],
        "large_modes": [m for m in os.environ.get("CORE_BENCH_LARGE_MODES", "online").split(",")
                        if m],
        "scenarios": [x for x in os.environ.get(
            "CORE_BENCH_SCENARIOS", "startup,log,throughput,large").split(",") if x],
        "stats_interval": args.stats_interval,
        "poll_ms": args.poll_ms,
    }
    modes = cfg["modes"]
    b = Bench(args)
    raw = {"config": cfg, "machine": machine_facts(args), "results": {}}
    print("W&B's core vs cairn's core under wandb 0.31's Python SDK")
    for k, v in raw["machine"].items():
        print(f"  {k}: {v}")
    print(f"  sizes: {json.dumps(cfg)}")
    print(f"  server: {args.base_url} (entity {args.entity})", flush=True)
    t = Table()
    res = raw["results"]
    try:
        scen = cfg["scenarios"]
        # 1. startup + shutdown
        if "startup" in scen:
            b.log("1. empty run: wandb.init(); run.finish()")
            runs, errs = interleaved(b, cfg["startup_reps"], modes,
                                     lambda core, mode: b.run(core, mode, "empty"))
            res["empty"] = {f"{c} {m}": v for (c, m), v in runs.items()}
            res["empty_errors"] = {f"{c} {m}": v for (c, m), v in errs.items()}
            n = cfg["startup_reps"]
            for mode in modes:
                def med(core, key):
                    rs = runs[(core, mode)]
                    return statistics.median(r[key] for r in rs) if rs else None
                ew, ec = errs.get(("wandb", mode)), errs.get(("cairn", mode))
                t.add(f"1. init → finish() returned, empty run (median of {n})", mode,
                      med("wandb", "init_to_finished_s"), med("cairn", "init_to_finished_s"),
                      fmt_s, ew=ew, ec=ec)
                t.add("   ↳ of which finish()", mode, med("wandb", "finish_s"),
                      med("cairn", "finish_s"), fmt_s, ew=ew, ec=ec)
                t.add("   process spawn → exit (incl. import wandb)", mode,
                      med("wandb", "wall_s"), med("cairn", "wall_s"), fmt_s, ew=ew, ec=ec)
                t.add("   core peak RSS, empty run", mode,
                      *[med_core(runs[(c, mode)], "hwm_kib") for c in CORES], fmt_mib,
                      kind="memory", ew=ew, ec=ec)
                t.add("   core CPU, empty run (process lifetime)", mode,
                      *[med_core(runs[(c, mode)], "cpu_s") for c in CORES], fmt_cpu,
                      kind="info", ew=ew, ec=ec)

        # 2. run.log per call
        if "log" in scen:
            res["log"] = {}
            for k in cfg["log_metrics"]:
                b.log(f"2. run.log per call, {k} metrics")
                def fn(core, mode, k=k):
                    return b.run(core, mode, "log", metrics=k, calls=cfg["log_calls"],
                                 warmup=cfg["log_warmup"])
                runs, errs = interleaved(b, 1, modes, fn)
                floors = {}
                for fl in FLOORS:
                    floors[fl] = attempt(b.run, fl, "offline" if fl == "nosend" else "disabled",
                                         "log", metrics=k, calls=cfg["log_calls"],
                                         warmup=cfg["log_warmup"])
                res["log"][k] = {**{f"{c} {m}": v[0] if v else None for (c, m), v in runs.items()},
                                 **{fl: r for fl, (r, _) in floors.items()},
                                 "errors": {**{f"{c} {m}": v for (c, m), v in errs.items()},
                                            **{fl: e for fl, (_, e) in floors.items() if e}}}
                for mode in modes:
                    w = runs[("wandb", mode)][0] if runs[("wandb", mode)] else None
                    c = runs[("cairn", mode)][0] if runs[("cairn", mode)] else None
                    ew, ec = errs.get(("wandb", mode)), errs.get(("cairn", mode))
                    for p in (50, 99):
                        key = f"p{p}_ns"
                        t.add(f"2. run.log p{p}, {k} metrics ({cfg['log_calls']} calls)", mode,
                              w and w[key] / 1e9, c and c[key] / 1e9, fmt_s, ew=ew, ec=ec)
                    for fl, (r, e) in floors.items():
                        if e:
                            t.note(f"   ↳ p50, {FLOORS[fl]}", mode, "error: " + e[:60], "")
                            continue
                        fv = r["p50_ns"]
                        t.note(f"   ↳ p50, {FLOORS[fl]}: {fmt_s(fv / 1e9)}", mode,
                               f"= {100 * fv / w['p50_ns']:.0f} % of W&B's p50" if w else "",
                               f"= {100 * fv / c['p50_ns']:.0f} % of cairn's p50" if c else "")

        # 3. end-to-end values/s, memory, CPU
        if "throughput" in scen:
            s, k = cfg["tp_steps"], cfg["tp_metrics"]
            b.log(f"3. end-to-end, {s} steps × {k} metrics")
            def fn(core, mode):
                return b.run(core, mode, "throughput", metrics=k, steps=s)
            runs, errs = interleaved(b, cfg["tp_reps"], modes, fn)
            floors = {fl: attempt(b.run, fl, "offline" if fl == "nosend" else "disabled",
                                  "throughput", metrics=k, steps=s) for fl in FLOORS}
            res["throughput"] = {f"{c} {m}": v for (c, m), v in runs.items()}
            res["throughput"].update({fl: r for fl, (r, _) in floors.items()})
            res["throughput_errors"] = {f"{c} {m}": v for (c, m), v in errs.items()}
            res["throughput_errors"].update({fl: e for fl, (_, e) in floors.items() if e})
            for mode in modes:
                meds = {}
                for core in CORES:
                    rs = runs[(core, mode)]
                    if rs:
                        for r in rs:
                            r["values_per_s"] = r["values"] / r["init_to_finished_s"]
                        meds[core] = median_by(rs, "values_per_s")
                w, c = meds.get("wandb"), meds.get("cairn")
                ew, ec = errs.get(("wandb", mode)), errs.get(("cairn", mode))
                add_run_rows(t, mode, f"{s:,} × {k}", cfg["tp_reps"], w, c, ew, ec)
                t.add("   values/s, logging loop only (same runs)", mode,
                      w and w["values"] / w["loop_s"], c and c["values"] / c["loop_s"], fmt_rate,
                      better="higher", ew=ew, ec=ec)
                for fl, (r, e) in floors.items():
                    text = "error: " + e[:60] if e else fmt_rate(r["values"] / r["loop_s"])
                    t.note(f"   ↳ values/s in the loop, {FLOORS[fl]}: {text}", mode, "", "")

        # 4. the large online run
        if "large" in scen:
            s, k = cfg["large_steps"], cfg["large_metrics"]
            for mode in cfg["large_modes"]:
                b.log(f"4. large run, {s} steps × {k} metrics, {mode}")

                def fn(core, mode):
                    return b.run(core, mode, "throughput", metrics=k, steps=s)
                runs, errs = interleaved(b, 1, [mode], fn)
                res[f"large {mode}"] = {c: (runs[(c, mode)] or [None])[0] for c in CORES}
                w, c = (runs[(core, mode)][0] if runs[(core, mode)] else None for core in CORES)
                for r in (w, c):
                    if r:
                        r["values_per_s"] = r["values"] / r["init_to_finished_s"]
                ew, ec = errs.get(("wandb", mode)), errs.get(("cairn", mode))
                t.add(f"4. finish() call → return, {s:,} × {k}", mode, w and w["finish_s"],
                      c and c["finish_s"], fmt_s, ew=ew, ec=ec)
                t.add(f"   finish() call → process exit, {s:,} × {k}", mode,
                      w and w["finish_call_to_exit_s"], c and c["finish_call_to_exit_s"], fmt_s,
                      ew=ew, ec=ec)
                add_run_rows(t, mode, f"{s:,} × {k}", 1, w, c, ew, ec, prefix="  ")

        if b.online_runs:
            b.log("checking the online runs on the server")
            checked = b.verify_online()
            res["server_check"] = {c: list(v) for c, v in checked.items()}
            t.note("online runs complete on the server (history lines = steps, finished)",
                   "online", *("{} of {}".format(*checked[c]) if c in checked else "—"
                               for c in CORES))
    finally:
        elapsed = time.monotonic() - args.t0
        print()
        print(t.render())
        print()
        print("cairn / W&B: cairn's figure ÷ W&B's (below 1 is better for times, memory and CPU;")
        print("above 1 is better for values/s). Core figures count the core process only: W&B's")
        print("system-metrics sidecar is the `sidecar` row. Peak RSS is the core's VmHWM; CPU is")
        print("its utime + stime through its exit (polled every "
              f"{args.poll_ms} ms, and read right after finish()).")
        v = t.verdicts
        def verdict(xs):
            if not xs:
                return "?"
            unknown = f", {xs.count(None)} row(s) unknown" if None in xs else ""
            if False in xs:
                return f"NOT met ({xs.count(False)} of {len(xs)} rows{unknown})"
            return ("met" if not unknown else "met where measured") + unknown
        print("Targets: core memory ≤ ½ of W&B's core: " + verdict(v["memory"])
              + "; core CPU per logged value ≤ ½ of W&B's: " + verdict(v["cpu"])
              + "; no user-visible figure worse than W&B's: " + verdict(v["user"]) + ".")
        if b.failures:
            print()
            print(f"{len(b.failures)} problem(s):")
            for label, msg, detail in b.failures:
                print(f"--- {label}: {msg}")
                if detail:
                    print(detail)
        print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}; "
              f"total {elapsed:.0f} s")
        raw["failures"] = [{"run": l, "error": m, "detail": d} for l, m, d in b.failures]
        raw["elapsed_s"] = elapsed
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(raw, f, indent=1, default=str)
            print(f"wrote {args.json}")
        b.cleanup()
    return 1 if b.failures else 0


def med_core(rs, key):
    vals = [r["core"][key] for r in rs if r.get("core")]
    return statistics.median(vals) if vals else None


def add_run_rows(t, mode, size, reps, w, c, ew, ec, prefix=""):
    """values/s, finish(), core memory and CPU rows for a throughput-style run."""
    def core(r, key):
        return r["core"][key] if r and r.get("core") else None

    def per_value(r):
        cpu = core(r, "cpu_s")
        return cpu / r["values"] if cpu is not None and r["values"] else None

    head = "3." if not prefix else "  "
    t.add(f"{head} values/s, init → finish() returned, {size}"
          + (f" (median of {reps})" if reps > 1 else ""), mode,
          w and w["values_per_s"], c and c["values_per_s"], fmt_rate, better="higher",
          ew=ew, ec=ec)
    if not prefix:
        t.add("   ↳ of which finish()", mode, w and w["finish_s"], c and c["finish_s"], fmt_s,
              ew=ew, ec=ec)
    t.add(f"   core peak RSS, {size}", mode, core(w, "hwm_kib"), core(c, "hwm_kib"), fmt_mib,
          kind="memory", ew=ew, ec=ec)
    t.add(f"   core CPU, {size} (through exit)", mode, core(w, "cpu_s"), core(c, "cpu_s"),
          fmt_cpu, kind="info", ew=ew, ec=ec)
    t.add(f"   core CPU per logged value, {size}", mode, per_value(w), per_value(c), fmt_us,
          kind="cpu", ew=ew, ec=ec)

    def log_bytes(r):
        b = r and r.get("wandb_log_bytes")
        return b / r["values"] if b and r["values"] else None

    t.add(f"   .wandb bytes per value, {size}", mode, log_bytes(w), log_bytes(c),
          lambda v: f"{v:.1f} B", kind="info", ew=ew, ec=ec)
    side = {}
    for name, r in (("wandb", w), ("cairn", c)):
        if r:
            parts = [f"{n} {fmt_mib(a['hwm_kib'])}, {a['cpu_s']:.2f} s"
                     for n, a in r["tree"]["sidecars"].items()]
            side[name] = "; ".join(parts) or "none"
    if side:
        t.note("   sidecar(s) of the core (not counted above)", mode, side.get("wandb", "—"),
               side.get("cairn", "—"))


# ---------------------------------------------------------------- machine facts


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return "?"


def machine_facts(args):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    head = sh(["git", "-C", root, "log", "-1", "--format=%h %s"])[:80]
    dirty = sh(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"])
    import wandb  # the real package (this process has no overlay)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpus": f"{os.cpu_count()} ({cpu})",
        "kernel": platform.release(),
        "cairn commit": head + (f" (+ {len(dirty.splitlines())} uncommitted)" if dirty else ""),
        "cairn binary": os.path.realpath(args.cairn_bin),
        "python": platform.python_version(),
        "wandb": wandb.__version__,
        "load average at start": open("/proc/loadavg").read().split()[:3],
    }


def main():
    p = argparse.ArgumentParser(description="W&B's core vs cairn's core (wandb 0.31 SDK)")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("workload", help="(internal) one workload under the current overlay")
    w.add_argument("kind", choices=["empty", "log", "throughput"])
    w.add_argument("--metrics", type=int, default=0)
    w.add_argument("--calls", type=int, default=0)
    w.add_argument("--warmup", type=int, default=0)
    w.add_argument("--steps", type=int, default=0)
    d = sub.add_parser("drive", help="run every scenario and print the table")
    d.add_argument("--cairn-bin", required=True)
    d.add_argument("--base-url", required=True, help="the cairn server for online runs")
    d.add_argument("--api-key", required=True)
    d.add_argument("--entity", default="admin")
    d.add_argument("--quick", action="store_true")
    d.add_argument("--keep", action="store_true")
    d.add_argument("--json")
    d.add_argument("--timeout", type=float,
                   default=float(os.environ.get("CORE_BENCH_TIMEOUT", 600)))
    d.add_argument("--stats-interval", type=float,
                   default=float(os.environ.get("CORE_BENCH_STATS_INTERVAL", 15)))
    d.add_argument("--poll-ms", type=int, default=int(os.environ.get("CORE_BENCH_POLL_MS", 50)))
    args = p.parse_args()
    if args.cmd == "workload":
        workload(args)
        return 0
    return main_driver(args)


if __name__ == "__main__":
    sys.exit(main())
