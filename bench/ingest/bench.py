"""Ingest benchmark: cairn server (SQLite and Postgres) against an MLflow tracking server
(SQLite backend), fed the same history values. Run through `bench/ingest.sh`, which builds
cairn, prepares the venv and finds Postgres; see that script for the options.

For each system: start the server on a free loopback port with a fresh temp data dir (a
fresh Postgres database), create N runs (untimed), send every pre-encoded request (timed,
see load.py), check that everything was stored, stop the server. Reported per system:
history values stored per second (runs x steps x metrics / wall time), p50/p99 latency of
the HTTP requests, the CPU seconds of the server (process tree; for Postgres also its
`postgres` processes), of the load generator and of the whole machine during the timed
part. A null-sink row (a do-nothing HTTP server that reads and drops each body) shows how
fast the generator itself can send, i.e. that it is not the bottleneck.

A workload that fails becomes an error row; the table is always printed, and every server
started here is stopped (process group, SIGTERM then SIGKILL) whatever happens.
"""

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HZ = os.sysconf("SC_CLK_TCK")
SQLITE_TARGET = 1_000_000  # values/s
RATIO_TARGET = 20.0  # cairn-sqlite / mlflow


class Abort(BaseException):
    """Raised by the signal handlers so that the finally blocks stop the servers."""


def on_signal(signum, _frame):
    raise Abort(f"signal {signum}")


# ---------------------------------------------------------------- processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid):
    """(ppid, utime + stime in s, comm) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / HZ, comm


def all_stats():
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                out[int(name)] = st
    return out


def tree_cpu(root_pid, stats=None):
    """CPU seconds of a process and all its descendants (those alive now)."""
    stats = stats or all_stats()
    children = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


def comm_cpu(comm, stats=None):
    stats = stats or all_stats()
    return sum(cpu for _, cpu, c in stats.values() if c == comm)


def machine_cpu():
    """(busy, iowait) jiffies of the whole machine so far, in s."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle, iowait = parts[3], parts[4]
    return (sum(parts[:8]) - idle - iowait) / HZ, iowait / HZ


class Server:
    """A server process in its own process group, stopped by `stop` (idempotent)."""

    def __init__(self, name, cmd, env, log_path, pid_file):
        self.name, self.log_path, self.pid_file = name, log_path, pid_file
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if pid_file:
            with open(pid_file, "a") as f:
                f.write(f"{self.proc.pid}\n")

    def wait_http(self, url, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout} s: "
                           f"{self.log_tail()}")

    def log_tail(self, n=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:]).strip()
        except OSError:
            return "(no log)"

    def stop(self, grace=30):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        # Stragglers of the group (e.g. uvicorn workers) go too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()
        if self.pid_file and os.path.exists(self.pid_file):
            with open(self.pid_file) as f:
                pids = [p for p in f.read().split() if p != str(self.proc.pid)]
            with open(self.pid_file, "w") as f:
                f.write("".join(f"{p}\n" for p in pids))


def settle(pid, idle=0.05, window=1.0, limit=60.0):
    """Waits (at most `limit` s) until a server's process tree uses less than `idle` of a
    core over `window` s: start-up work (migrations, imports, workers) ends before timing."""
    deadline = time.monotonic() + limit
    last = tree_cpu(pid)
    while time.monotonic() < deadline:
        time.sleep(window)
        now = tree_cpu(pid)
        if now - last < idle * window:
            return
        last = now


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


# ---------------------------------------------------------------- null sink


class _Sink(asyncio.Protocol):
    """HTTP/1.1 keep-alive server that reads and drops each request's body, answers {}."""

    def connection_made(self, transport):
        self.t, self.buf, self.left = transport, b"", None

    def data_received(self, data):
        while data:
            if self.left is None:
                self.buf += data
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, data = self.buf[:end], self.buf[end + 4:]
                self.buf = b""
                self.left = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        self.left = int(v)
            take = min(self.left, len(data))
            self.left -= take
            data = data[take:]
            if self.left == 0:
                self.left = None
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 2\r\n\r\n{}")


def run_sink(port):
    async def main():
        server = await asyncio.get_running_loop().create_server(_Sink, "127.0.0.1", port)
        async with server:
            await server.serve_forever()
    asyncio.run(main())


# ---------------------------------------------------------------- workloads


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="cairn-ingest-")
        self.servers = []
        self.cairn_jobs = None  # [[body, ...] per run], shared by both cairn backends

    def cleanup(self):
        for s in self.servers:
            try:
                s.stop(grace=10)
            except Exception as err:
                print(f"stopping {s.name}: {err}", file=sys.stderr)
        self.servers = []
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, name, cmd, env, health_url, timeout):
        log = os.path.join(self.tmp, f"{name}.log")
        s = Server(name, cmd, env, log, self.args.pid_file)
        self.servers.append(s)
        s.wait_http(health_url, timeout)
        settle(s.proc.pid)
        return s

    def stop(self, server):
        server.stop()
        self.servers.remove(server)

    def bodies(self):
        if self.cairn_jobs is None:
            a = self.args
            t = time.monotonic()
            self.cairn_jobs = [load.cairn_bodies(i, a.steps, a.metrics, a.rows,
                                                 a.history_only) for i in range(a.runs)]
            size = sum(len(b) for bodies in self.cairn_jobs for b in bodies)
            print(f"  encoded {sum(map(len, self.cairn_jobs))} filestream bodies, "
                  f"{size / 2**20:,.0f} MiB, in {time.monotonic() - t:.1f} s", flush=True)
        return self.cairn_jobs

    def timed(self, jobs, headers, server_cpu):
        """Runs the load; returns load.drive's result plus CPU seconds of the server, the
        machine (busy, iowait) during the timed part."""
        marks = {}

        def on_start():
            marks["server"] = server_cpu()
            marks["machine"] = machine_cpu()
            marks["load"] = open("/proc/loadavg").read().split()[0]

        res = load.drive(jobs, headers, self.args.client_procs, on_start)
        if res["errors"]:
            raise RuntimeError(f"{len(res['errors'])} requests failed, first: "
                               f"{res['errors'][0]}")
        busy, iowait = machine_cpu()
        end = server_cpu()
        if isinstance(end, tuple):  # (server tree, postgres processes)
            res["postgres_cpu_s"] = end[1] - marks["server"][1]
            res["server_cpu_s"] = end[0] - marks["server"][0] + res["postgres_cpu_s"]
        else:
            res["server_cpu_s"] = end - marks["server"]
        res["machine_busy_s"] = busy - marks["machine"][0]
        res["machine_iowait_s"] = iowait - marks["machine"][1]
        res["load_at_start"] = float(marks["load"])
        return res

    def result(self, res, values, requests, extra=None):
        out = load.summarize(res, values, requests)
        out.update({k: res[k] for k in ("server_cpu_s", "postgres_cpu_s", "machine_busy_s",
                                        "machine_iowait_s", "load_at_start") if k in res})
        out.update(extra or {})
        return out

    # -- cairn

    def cairn(self, backend, rep):
        a = self.args
        jobs_bodies = self.bodies()
        data = os.path.join(self.tmp, f"cairn-{backend}-{rep}")
        os.makedirs(data)
        key = "local-" + "".join(secrets.choice(string.ascii_lowercase + string.digits)
                                 for _ in range(40))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [a.cairn_bin, "server", "--addr", f"127.0.0.1:{port}", "--data", data]
        db_name = None
        if backend == "postgres":
            db_name = f"cairn_ingest_{os.getpid()}_{rep}"
            pg_admin(a.postgres_url, f'CREATE DATABASE "{db_name}"')
            cmd += ["--database", f"{a.postgres_url}/{db_name}"]
        env = dict(os.environ, CAIRN_ADMIN_API_KEY=key)
        env.setdefault("RUST_LOG", "info")
        server = None
        try:
            server = self.start(f"cairn-{backend}-{rep}", cmd, env, f"{url}/healthz", 120)
            project = "bench"
            urls, headers = load.cairn_setup(url, key, project, a.runs)
            jobs = list(zip(urls, jobs_bodies))

            def cpu():
                stats = all_stats()
                own = tree_cpu(server.proc.pid, stats)
                return (own, comm_cpu("postgres", stats)) if backend == "postgres" else own

            res = self.timed(jobs, headers, cpu)
            problems = load.cairn_check(url, key, project, a.runs, a.steps)
            if problems:
                raise RuntimeError("stored data incomplete: " + "; ".join(problems[:3]))
            self.stop(server)
            server = None
            stored = (pg_size(a.postgres_url, db_name) if db_name else dir_bytes(data))
            return self.result(res, a.runs * a.steps * a.metrics,
                               sum(len(b) for b in jobs_bodies),
                               {"stored_bytes": stored})
        finally:
            if server is not None:
                self.stop(server)
            if db_name:
                try:
                    pg_admin(a.postgres_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                except Exception as err:
                    print(f"  dropping database {db_name}: {err}", file=sys.stderr)
            if not a.keep:
                shutil.rmtree(data, ignore_errors=True)

    # -- MLflow

    def mlflow(self, rep):
        a = self.args
        data = os.path.join(self.tmp, f"mlflow-{rep}")
        os.makedirs(data)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [a.mlflow_bin, "server",
               "--backend-store-uri", f"sqlite:///{data}/mlflow.db",
               "--default-artifact-root", f"{data}/artifacts",
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(a.mlflow_workers)]
        # MLflow 3 starts a job runner (7 huey consumer processes, for GenAI scoring and
        # trace archival) that has nothing to do with logging metrics and burns CPU for
        # seconds after start-up: off, so that the timed part measures ingest alone.
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        server = self.start(f"mlflow-{rep}", cmd, env, f"{url}/health", 300)
        try:
            exp, ids = load.mlflow_setup(url, f"ingest-{rep}", a.runs)
            t = time.monotonic()
            jobs = [(f"{url}/api/2.0/mlflow/runs/log-batch",
                     load.mlflow_bodies(i, ids[i], a.mlflow_steps, a.metrics))
                    for i in range(a.runs)]
            print(f"  encoded {sum(len(b) for _, b in jobs)} log-batch bodies in "
                  f"{time.monotonic() - t:.1f} s", flush=True)
            res = self.timed(jobs, {"Content-Type": "application/json"},
                             lambda: tree_cpu(server.proc.pid))
            load.mlflow_finish(url, ids)
            problems = load.mlflow_check(url, ids, a.mlflow_steps, a.metrics)
            if problems:
                raise RuntimeError("stored data incomplete: " + "; ".join(problems[:3]))
            self.stop(server)
            server = None
            return self.result(res, a.runs * a.mlflow_steps * a.metrics,
                               sum(len(b) for _, b in jobs),
                               {"stored_bytes": dir_bytes(data)})
        finally:
            if server is not None:
                self.stop(server)
            if not a.keep:
                shutil.rmtree(data, ignore_errors=True)

    # -- null sink

    def sink(self, rep):
        import multiprocessing as mp
        a = self.args
        jobs_bodies = self.bodies()
        port = free_port()
        proc = mp.get_context("fork").Process(target=run_sink, args=(port,), daemon=True)
        proc.start()
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("null sink did not start")
                    time.sleep(0.05)
            jobs = [(f"{url}/files/admin/bench/run-{i:04d}/file_stream", b)
                    for i, b in enumerate(jobs_bodies)]
            res = self.timed(jobs, {"Content-Type": "application/json"},
                             lambda: tree_cpu(proc.pid))
            return self.result(res, a.runs * a.steps * a.metrics,
                               sum(len(b) for b in jobs_bodies), {"stored_bytes": 0})
        finally:
            proc.kill()
            proc.join(5)


def pg_admin(url, sql):
    import psycopg
    with psycopg.connect(f"{url}/postgres", autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def pg_size(url, db):
    import psycopg
    with psycopg.connect(f"{url}/postgres", autocommit=True, connect_timeout=10) as conn:
        return conn.execute("SELECT pg_database_size(%s)", (db,)).fetchone()[0]


# ---------------------------------------------------------------- report


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:
        return "?"


def machine_facts(args):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) / 2**20:.1f} GiB"
    df = sh(["df", "-T", tempfile.gettempdir()]).splitlines()
    fs = df[-1].split()[1] if len(df) > 1 else "?"
    head = sh(["git", "-C", ROOT, "log", "-1", "--format=%h %s"])
    dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    facts = [
        ("date", time.strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("cpus", f"{os.cpu_count()} ({cpu})"),
        ("memory", mem),
        ("kernel", platform.release()),
        ("temp dir", f"{tempfile.gettempdir()} on {fs}"),
        ("cairn", f"{args.cairn_bin} ({sh([args.cairn_bin, '--version']) or '?'}, "
                  + ("built from the work tree" if args.cairn_built else "given by --cairn-bin")
                  + f"); work tree at {head[:60]}"
                  + (f" + {len(dirty.splitlines())} changed files" if dirty else "")),
        ("mlflow", f"{sh([args.mlflow_bin, '--version'])}, sqlite backend, "
                   f"--workers {args.mlflow_workers}"),
        ("python", f"{platform.python_version()}, aiohttp "
                   f"{__import__('aiohttp').__version__}"),
        ("workload", f"{args.runs} runs x {args.steps:,} steps x {args.metrics} metrics, "
                     f"{args.rows} rows per filestream request "
                     f"({'history only' if args.history_only else '+ 1 events line + summary'});"
                     f" MLflow {args.runs} runs x {args.mlflow_steps:,} steps, "
                     f"<= {load.MLFLOW_MAX_METRICS} metrics per log-batch; "
                     f"{args.client_procs} client process(es)"),
        ("load average at start", " ".join(open("/proc/loadavg").read().split()[:3])),
    ]
    if args.postgres_url:
        ver = "?"
        try:
            import psycopg
            with psycopg.connect(f"{args.postgres_url}/postgres", connect_timeout=10) as c:
                ver = c.execute("SHOW server_version").fetchone()[0]
        except Exception as err:
            ver = f"? ({err})"
        facts.append(("postgres", f"{redact(args.postgres_url)} (server {ver})"))
    return facts


def redact(url):
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


def fmt_int(v):
    return "" if v is None else f"{v:,.0f}"


def fmt_ms(v):
    if v is None:
        return ""
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def median_result(results):
    """The repetition with the median values/s (lower middle for an even count)."""
    ok = sorted(results, key=lambda r: r["values_per_s"])
    return ok[(len(ok) - 1) // 2]


def render(rows):
    header = ["system", "values", "wall s", "values/s", "req", "values/req", "p50 ms",
              "p99 ms", "server CPU", "client CPU", "machine busy", "stored"]
    lines = [header]
    notes = []
    for name, results, err in rows:
        if err:
            lines.append([name, f"ERROR: {err}"] + [""] * (len(header) - 2))
            continue
        r = median_result(results)
        wall = r["wall_s"]
        rates = ""
        if len(results) > 1:
            rates = " [" + ", ".join(f"{x['values_per_s'] / 1e6:.2f}" for x in results) + " M]"
            notes.append(f"{name}: values/s of each repetition{rates}; the row is the median")
        lines.append([
            name, fmt_int(r["values"]), f"{wall:.2f}", fmt_int(r["values_per_s"]),
            fmt_int(r["requests"]), fmt_int(r["values"] / r["requests"]),
            fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]),
            f"{r['server_cpu_s'] / wall:.2f} cores",
            f"{r['client_cpu_s'] / wall:.2f} cores",
            f"{r['machine_busy_s'] / wall:.2f} cores",
            f"{r['stored_bytes'] / 2**20:,.0f} MiB" if r["stored_bytes"] else "",
        ])
    table = [l for l in lines if not str(l[1]).startswith("ERROR")]
    widths = [max(len(str(l[i])) for l in table) for i in range(len(header))]
    widths[0] = max(len(l[0]) for l in lines)
    out = []
    for n, l in enumerate(lines):
        if len(l) == 2 or (len(l) > 2 and str(l[1]).startswith("ERROR")):
            out.append(f"{l[0]:<{widths[0]}}  {l[1]}")
        else:
            cells = [f"{l[0]:<{widths[0]}}"] + [f"{str(c):>{widths[i + 1]}}"
                                               for i, c in enumerate(l[1:])]
            out.append("  ".join(cells))
        if n == 0:
            out.append("-" * len(out[-1]))
    return "\n".join(out), notes


def main():
    p = argparse.ArgumentParser(description="cairn server ingest vs MLflow")
    p.add_argument("--cairn-bin", required=True)
    p.add_argument("--cairn-built", action="store_true", help="the script built --cairn-bin")
    p.add_argument("--mlflow-bin", default=os.path.join(os.path.dirname(sys.executable),
                                                        "mlflow"))
    p.add_argument("--postgres-url", default="", help="postgres://user:pw@host:port (no db)")
    p.add_argument("--postgres-skip-reason", default="")
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--metrics", type=int, default=100)
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--mlflow-steps", type=int, default=300)
    p.add_argument("--mlflow-workers", type=int, default=4,
                   help="uvicorn workers of mlflow server (its own default is 4)")
    p.add_argument("--repeat", type=int, default=3, help="repetitions of each cairn workload")
    p.add_argument("--mlflow-repeat", type=int, default=1)
    p.add_argument("--client-procs", type=int, default=1)
    p.add_argument("--history-only", action="store_true")
    p.add_argument("--only", default="", help="comma list of sink,sqlite,postgres,mlflow")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json")
    p.add_argument("--pid-file", default="")
    p.add_argument("--wait-quiet", type=float, default=0)
    args = p.parse_args()
    if args.rows < 1 or args.steps < 1 or args.metrics < 1 or args.runs < 1:
        p.error("runs, metrics, rows and steps must be positive")
    only = set(filter(None, args.only.split(","))) or {"sink", "sqlite", "postgres", "mlflow"}

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)

    t_start = time.monotonic()
    print("cairn server ingest benchmark (filestream) vs MLflow log-batch")
    if args.wait_quiet:
        deadline = time.monotonic() + args.wait_quiet
        while (float(open("/proc/loadavg").read().split()[0]) >= 0.5
               and time.monotonic() < deadline):
            time.sleep(5)
    facts = machine_facts(args)
    for k, v in facts:
        print(f"  {k}: {v}")
    print(flush=True)

    b = Bench(args)
    rows, raw = [], {}

    def workload(name, fn, reps):
        results = []
        for rep in range(reps):
            print(f"- {name} ({rep + 1}/{reps})", flush=True)
            try:
                r = fn(rep)
            except Abort:
                raise
            except Exception as err:
                print(f"  failed: {err}", flush=True)
                rows.append((name, None, str(err).splitlines()[0][:200]))
                raw[name] = {"error": str(err)}
                return
            cpu = f"server CPU {r['server_cpu_s']:.1f} s"
            if "postgres_cpu_s" in r:
                cpu += f" (of which postgres {r['postgres_cpu_s']:.1f} s)"
            print(f"  {r['values_per_s']:,.0f} values/s, p50 {r['p50_ms']:.1f} ms, "
                  f"p99 {r['p99_ms']:.1f} ms, {r['wall_s']:.2f} s, {cpu}, "
                  f"load {r['load_at_start']}", flush=True)
            results.append(r)
        rows.append((name, results, None))
        raw[name] = results

    try:
        if "sink" in only:
            workload("null-sink (generator)", b.sink, 1)
        if "sqlite" in only:
            workload("cairn-sqlite", lambda rep: b.cairn("sqlite", rep), args.repeat)
        if "postgres" in only:
            if args.postgres_url:
                workload("cairn-postgres", lambda rep: b.cairn("postgres", rep), args.repeat)
            else:
                why = args.postgres_skip_reason or "no --postgres-url"
                print(f"- cairn-postgres: skipped ({why})", flush=True)
                rows.append(("cairn-postgres", None, f"skipped: {why}"))
        if "mlflow" in only:
            workload("mlflow", b.mlflow, args.mlflow_repeat)
    except Abort as why:
        print(f"interrupted ({why}); stopping the servers", file=sys.stderr)
        b.cleanup()
        sys.exit(130)
    finally:
        b.cleanup()

    table, notes = render(rows)
    print()
    print(table)
    print()
    by = {name: median_result(res) for name, res, err in rows if res}
    verdicts = []
    sq, ml, pg = by.get("cairn-sqlite"), by.get("mlflow"), by.get("cairn-postgres")
    if sq:
        ok = sq["values_per_s"] >= SQLITE_TARGET
        verdicts.append(f"cairn-sqlite: {sq['values_per_s'] / 1e6:.2f} M values/s "
                        f"(target >= 1 M: {'met' if ok else 'NOT met'})")
    if sq and ml:
        ratio = sq["values_per_s"] / ml["values_per_s"]
        verdicts.append(f"cairn-sqlite / mlflow: {ratio:,.0f}x "
                        f"(target >= {RATIO_TARGET:.0f}x: "
                        f"{'met' if ratio >= RATIO_TARGET else 'NOT met'})")
    if pg and ml:
        verdicts.append(f"cairn-postgres / mlflow: {pg['values_per_s'] / ml['values_per_s']:,.0f}x")
    for v in verdicts:
        print(v)
    for n in notes:
        print(n)
    print("values/s = runs x steps x metrics / wall time of the timed part; latency per HTTP "
          "request (a cairn request carries rows x metrics values, an MLflow log-batch at "
          "most 1000). CPU columns are CPU seconds / wall seconds during the timed part "
          "(server: its process tree, plus every `postgres` process for cairn-postgres; "
          "machine: all processes, out of "
          f"{os.cpu_count()} cores).")
    print(f"load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}; "
          f"total {time.monotonic() - t_start:.0f} s")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"facts": facts, "results": raw, "verdicts": verdicts}, f, indent=1)
        print(f"raw measurements: {args.json}")
    failed = any(err and not err.startswith("skipped") for _, _, err in rows)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
