"""The load generator of `bench/ingest.sh`: W&B-shaped filestream traffic for cairn, and the
same values for an MLflow tracking server through its `runs/log-batch` REST call.

The values: run i, step s, metric k holds `value(i, s, k)`, a deterministic double with a
full 17-digit representation (as `float.__repr__` prints a PyTorch `.item()`). Metric keys
are `train/m000`, `train/m001`, ... Both systems receive exactly the same numbers.

cairn (one filestream request = R history rows, as W&B's client batches ~15 s of rows):

    POST /files/admin/<project>/<run>/file_stream
    {"files": {"wandb-history.jsonl": {"offset": <first line>, "content": ["<row json>", ...]},
               "wandb-events.jsonl":  {"offset": <j>, "content": ["<system metrics json>"]},
               "wandb-summary.json":  {"offset": 0, "content": ["<latest values json>"]}},
     ["complete": true, "exitcode": 0 on the last request]}

  Each row is `{"_step":s,"train/m000":v,...,"_runtime":r,"_timestamp":t}`. One events line
  (22 `system.*` values) and the summary ride along in every request, as they do with W&B's
  client; they are not counted as history values (`--history-only` leaves them out).

MLflow (the same rows, split into `log-batch` calls of at most 1000 metrics, MLflow's
limit per call): `{"run_id": ..., "metrics": [{"key", "value", "timestamp" (ms), "step"}]}`.

Every request body is encoded before the clock starts. The timed part only sends the
pre-encoded bytes: each run is one coroutine with one request in flight at a time (as W&B's
client does), over a keep-alive connection; the runs are spread over `procs` forked worker
processes, each with its own asyncio loop, which start together on a barrier. Wall time runs
from the first request sent to the last answer read (CLOCK_MONOTONIC, shared by the
processes); latency is per HTTP request, from sending it to having read the whole answer.

Usable on its own against servers that are already running:

    python load.py cairn --url http://127.0.0.1:8080 --key local-... [--runs 8 ...]
    python load.py mlflow --url http://127.0.0.1:5000 [--runs 8 ...]
"""

import argparse
import asyncio
import base64
import json
import math
import multiprocessing as mp
import resource
import sys
import time
import urllib.error
import urllib.request

T0 = 1795300000.0  # _timestamp of step 0
STEP_SECONDS = 0.01  # _runtime advances 10 ms per step
MLFLOW_MAX_METRICS = 1000  # MLflow's limit of metrics per log-batch call
SYSTEM_KEYS = (
    [f"system.cpu.{c}.cpu_percent" for c in range(8)]
    + [f"system.gpu.0.{k}" for k in ("gpu", "memory", "temp", "powerWatts", "memoryAllocated")]
    + ["system.cpu", "system.memory", "system.proc.memory.rssMB",
       "system.proc.memory.percent", "system.proc.memory.availableMB", "system.disk",
       "system.network.sent", "system.network.recv", "system.proc.cpu.threads"]
)


def metric_names(metrics):
    return [f"train/m{k:03d}" for k in range(metrics)]


def step_values(run, step, metrics):
    """The M values of run `run` at step `step` (deterministic, full-precision doubles)."""
    decay = math.exp(-step / 20000.0)
    phase = 0.37 * step + 0.11 * run
    return [decay * (1.0 + 0.25 * math.sin(phase + 1.3 * k)) for k in range(metrics)]


def runtime_of(step):
    return round(step * STEP_SECONDS + 0.123, 6)


def timestamp_of(step):
    return round(T0 + runtime_of(step), 6)


def history_line(run, step, names):
    vals = step_values(run, step, len(names))
    body = ",".join([f'"{n}":{v!r}' for n, v in zip(names, vals)])
    return (f'{{"_step":{step},{body},"_runtime":{runtime_of(step)!r},'
            f'"_timestamp":{timestamp_of(step)!r}}}')


def events_line(run, j, step):
    vals = {k: round(10.0 + ((j * 31 + run * 7 + i * 13) % 900) / 10.0, 1)
            for i, k in enumerate(SYSTEM_KEYS)}
    vals["_runtime"] = runtime_of(step)
    vals["_timestamp"] = timestamp_of(step)
    return json.dumps(vals, separators=(",", ":"))


def summary_line(run, step, names):
    vals = step_values(run, step, len(names))
    d = dict(zip(names, vals))
    d.update({"_step": step, "_runtime": runtime_of(step), "_timestamp": timestamp_of(step),
              "_wandb": {"runtime": int(runtime_of(step))}})
    return json.dumps(d, separators=(",", ":"))


def cairn_bodies(run, steps, metrics, rows, history_only=False):
    """The filestream request bodies (bytes) of one run, in order; the last one completes
    the run."""
    names = metric_names(metrics)
    bodies = []
    for j, first in enumerate(range(0, steps, rows)):
        last = min(first + rows, steps) - 1
        files = {
            "wandb-history.jsonl": {
                "offset": first,
                "content": [history_line(run, s, names) for s in range(first, last + 1)],
            }
        }
        if not history_only:
            files["wandb-events.jsonl"] = {"offset": j,
                                           "content": [events_line(run, j, last)]}
            files["wandb-summary.json"] = {"offset": 0,
                                           "content": [summary_line(run, last, names)]}
        body = {"files": files}
        if last == steps - 1:
            body["complete"] = True
            body["exitcode"] = 0
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


def mlflow_bodies(run, run_id, steps, metrics):
    """The log-batch bodies (bytes) of one run: the same values as `cairn_bodies`, at most
    1000 metrics per call, steps in order."""
    names = metric_names(metrics)
    prefix = b'{"run_id":' + json.dumps(run_id).encode() + b',"metrics":['
    bodies, batch = [], []

    def flush():
        if batch:
            bodies.append(prefix + ",".join(batch).encode() + b"]}")
            batch.clear()

    for s in range(steps):
        ts = int(round(timestamp_of(s) * 1000))
        for n, v in zip(names, step_values(run, s, metrics)):
            batch.append(f'{{"key":"{n}","value":{v!r},"timestamp":{ts},"step":{s}}}')
            if len(batch) == MLFLOW_MAX_METRICS:
                flush()
    flush()
    return bodies


# ---------------------------------------------------------------- HTTP set-up (untimed)


def basic_auth(key):
    return "Basic " + base64.b64encode(f"api:{key}".encode()).decode()


def http_json(url, body=None, headers=None, timeout=60, method=None):
    """A blocking JSON request for set-up and checks (not the timed path)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"))
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"{req.get_method()} {url}: HTTP {err.code}: "
                           f"{err.read()[:500].decode(errors='replace')}") from None


UPSERT_BUCKET = ("mutation UpsertBucket($name: String, $project: String) { "
                 "upsertBucket(input: {name: $name, modelName: $project}) { "
                 "bucket { id name project { name entity { name } } } } }")
LINE_COUNT = ("query LineCount($project: String, $entity: String, $run: String) { "
              "project(name: $project, entityName: $entity) { run(name: $run) { "
              "historyLineCount } } }")


def cairn_graphql(url, key, query, variables, op):
    out = http_json(f"{url}/graphql", {"operationName": op, "query": query,
                                       "variables": variables},
                    {"Authorization": basic_auth(key)})
    if out.get("errors"):
        raise RuntimeError(f"GraphQL {op}: {out['errors']}")
    return out["data"]


def cairn_setup(url, key, project, runs):
    """Creates the runs; returns [(filestream url, headers)] in run order."""
    jobs = []
    for i in range(runs):
        name = f"run-{i:04d}"
        data = cairn_graphql(url, key, UPSERT_BUCKET, {"name": name, "project": project},
                             "UpsertBucket")
        bucket = data["upsertBucket"]["bucket"]
        entity = bucket["project"]["entity"]["name"]
        jobs.append(f"{url}/files/{entity}/{project}/{bucket['name']}/file_stream")
    return jobs, {"Authorization": basic_auth(key), "Content-Type": "application/json"}


def cairn_check(url, key, project, runs, steps):
    """Every run's history line count must be `steps`; returns the problems found."""
    problems = []
    for i in range(runs):
        name = f"run-{i:04d}"
        data = cairn_graphql(url, key, LINE_COUNT,
                             {"project": project, "entity": "admin", "run": name},
                             "LineCount")
        got = ((data.get("project") or {}).get("run") or {}).get("historyLineCount")
        if got != steps:
            problems.append(f"{name}: historyLineCount {got}, expected {steps}")
    return problems


def mlflow_setup(url, experiment, runs):
    """Creates an experiment and its runs; returns the run ids in order."""
    api = f"{url}/api/2.0/mlflow"
    exp = http_json(f"{api}/experiments/create", {"name": experiment})["experiment_id"]
    ids = []
    for i in range(runs):
        out = http_json(f"{api}/runs/create", {
            "experiment_id": exp, "run_name": f"run-{i:04d}",
            "start_time": int(T0 * 1000)})
        ids.append(out["run"]["info"]["run_id"])
    return exp, ids


def mlflow_finish(url, run_ids):
    for rid in run_ids:
        http_json(f"{url}/api/2.0/mlflow/runs/update", {
            "run_id": rid, "status": "FINISHED", "end_time": int(T0 * 1000) + 1})


def mlflow_check(url, run_ids, steps, metrics):
    """Each run must have all `metrics` keys, the first one with `steps` points."""
    problems = []
    api = f"{url}/api/2.0/mlflow"
    names = metric_names(metrics)
    for rid in run_ids:
        run = http_json(f"{api}/runs/get?run_id={rid}")["run"]
        keys = {m["key"] for m in run.get("data", {}).get("metrics", [])}
        if keys != set(names):
            problems.append(f"{rid}: {len(keys)} metric keys, expected {metrics}")
        hist = http_json(f"{api}/metrics/get-history?run_id={rid}&metric_key={names[0]}"
                         f"&max_results={steps + 10}")
        points = len(hist.get("metrics", []))
        if points != steps:
            problems.append(f"{rid}: {points} points of {names[0]}, expected {steps}")
    return problems


# ---------------------------------------------------------------- the timed part


async def _drive(jobs, headers, barrier_cb):
    import aiohttp

    lat = []
    errors = []
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers=headers, skip_auto_headers=("User-Agent",)
                                     ) as session:
        # Warm the pool: one connection per run, opened before the clock starts.
        await asyncio.gather(*(_open(session, url) for url, _ in jobs))

        async def run(url, bodies):
            mono = time.monotonic
            for body in bodies:
                t = mono()
                async with session.post(url, data=body) as resp:
                    answer = await resp.read()
                    status = resp.status
                lat.append(mono() - t)
                if status != 200:
                    errors.append(f"{url}: HTTP {status}: {answer[:300]!r}")
                    return

        barrier_cb()
        start = time.monotonic()
        cpu0 = _cpu_self()
        await asyncio.gather(*(run(url, bodies) for url, bodies in jobs))
        end = time.monotonic()
        cpu1 = _cpu_self()
    return {"start": start, "end": end, "lat": lat, "errors": errors, "cpu_s": cpu1 - cpu0}


async def _open(session, url):
    # A GET of the server's root opens (and returns to the pool) a keep-alive connection.
    base = url.split("/", 3)
    try:
        async with session.get("/".join(base[:3]) + "/") as resp:
            await resp.read()
    except Exception:
        pass


def _cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _worker(pipe, barrier, jobs, headers):
    try:
        res = asyncio.run(_drive(jobs, headers, lambda: barrier.wait(timeout=300)))
    except BaseException as err:  # reported to the parent, which raises
        try:
            barrier.abort()
        except Exception:
            pass
        res = {"fatal": f"{type(err).__name__}: {err}"}
    pipe.send(res)
    pipe.close()


def drive(jobs, headers, procs=1, on_start=None):
    """Sends every job's bodies: `jobs` is [(url, [body bytes, ...])], one per run.

    Returns wall seconds, every request latency (s), the requests' errors and the client
    processes' CPU seconds. `on_start` runs in this process right when the workers pass
    the start barrier (the caller samples the server's CPU there)."""
    procs = max(1, min(procs, len(jobs)))
    ctx = mp.get_context("fork")  # the workers inherit the pre-encoded bodies
    barrier = ctx.Barrier(procs + 1)
    workers = []
    for p in range(procs):
        parent_end, child_end = ctx.Pipe(duplex=False)
        share = jobs[p::procs]
        w = ctx.Process(target=_worker, args=(child_end, barrier, share, headers),
                        daemon=True)
        w.start()
        child_end.close()
        workers.append((w, parent_end))
    barrier.wait(timeout=300)
    if on_start:
        on_start()
    results = []
    for w, pipe in workers:
        try:
            results.append(pipe.recv())
        except EOFError:
            results.append({"fatal": f"worker {w.pid} died"})
        w.join()
    fatal = [r["fatal"] for r in results if "fatal" in r]
    if fatal:
        raise RuntimeError("load generator failed: " + "; ".join(fatal))
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    lat = [x for r in results for x in r["lat"]]
    errors = [e for r in results for e in r["errors"]]
    return {"wall_s": wall, "lat": lat, "errors": errors,
            "client_cpu_s": sum(r["cpu_s"] for r in results)}


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a list; None when empty."""
    if not values:
        return None
    s = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(s)))
    return s[rank - 1]


def summarize(res, values, requests):
    lat = res["lat"]
    return {
        "values": values,
        "requests": requests,
        "wall_s": res["wall_s"],
        "values_per_s": values / res["wall_s"] if res["wall_s"] > 0 else None,
        "p50_ms": percentile(lat, 50) * 1000 if lat else None,
        "p99_ms": percentile(lat, 99) * 1000 if lat else None,
        "max_ms": max(lat) * 1000 if lat else None,
        "client_cpu_s": res["client_cpu_s"],
    }


# ---------------------------------------------------------------- standalone use


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", choices=("cairn", "mlflow"))
    p.add_argument("--url", required=True)
    p.add_argument("--key", help="cairn API key (cairn only)")
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--metrics", type=int, default=100)
    p.add_argument("--rows", type=int, default=1000, help="history rows per filestream request")
    p.add_argument("--steps", type=int, default=10000, help="steps (rows) per run")
    p.add_argument("--procs", type=int, default=1, help="client worker processes")
    p.add_argument("--project", default=f"ingest-{int(time.time())}")
    p.add_argument("--history-only", action="store_true")
    a = p.parse_args()
    t = time.monotonic()
    if a.target == "cairn":
        if not a.key:
            p.error("--key is required for cairn")
        urls, headers = cairn_setup(a.url, a.key, a.project, a.runs)
        jobs = [(u, cairn_bodies(i, a.steps, a.metrics, a.rows, a.history_only))
                for i, u in enumerate(urls)]
    else:
        _, ids = mlflow_setup(a.url, a.project, a.runs)
        urls = [f"{a.url}/api/2.0/mlflow/runs/log-batch"] * a.runs
        headers = {"Content-Type": "application/json"}
        jobs = [(u, mlflow_bodies(i, ids[i], a.steps, a.metrics)) for i, u in enumerate(urls)]
    print(f"set-up and encoding: {time.monotonic() - t:.1f} s", file=sys.stderr)
    res = drive(jobs, headers, a.procs)
    out = summarize(res, a.runs * a.steps * a.metrics, sum(len(b) for _, b in jobs))
    if a.target == "cairn":
        out["problems"] = cairn_check(a.url, a.key, a.project, a.runs, a.steps)
    else:
        mlflow_finish(a.url, ids)
        out["problems"] = mlflow_check(a.url, ids, a.steps, a.metrics)
    out["errors"] = res["errors"][:5]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
