"""Benchmark of the web UI's two heavy reads, against a running `cairn server`.

Seeds (unless --no-seed): one run of --steps history lines (one metric `m`, a one-step
spike of 1000 at 73% of the way), sent through the filestream in W&B's shape; and a project
of --runs runs, each with a config and a summary of a few keys (GraphQL `upsertBucket`,
the call W&B's SDK makes). Then measures, --repeat times each:

- series, first request: the first chart request for the run since the server started
  (bench/ui.sh starts a fresh server), which reads every history line into columns;
- series, warm: the same request again (the page's reload, another panel);
- series, zoom: a request for 1% of the range (what a drag-zoom asks);
- runs table: `GET /api/projects/E/P/runs` for the big project, gzip as a browser asks.

Prints one line per measure (median and max seconds, points or bytes) and checks that the
spike survives every reduction. The browser-side timings (page opened → chart drawn, table
shown) come from bench/ui-browser.mjs, run by bench/ui.sh.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import statistics
import sys
import time

import requests

UPSERT = """mutation UpsertBucket($name: String, $project: String, $entity: String,
  $config: JSONString, $summaryMetrics: JSONString, $tags: [String!], $groupName: String,
  $state: String) {
  upsertBucket(input: {name: $name, modelName: $project, entityName: $entity,
    config: $config, summaryMetrics: $summaryMetrics, tags: $tags, groupName: $groupName,
    state: $state}) { bucket { id name } }
}"""


def seed_long_run(s: requests.Session, base: str, entity: str, project: str, run: str,
                  steps: int, chunk: int = 20000) -> int:
    gql(s, base, UPSERT, name=run, project=project, entity=entity, state="running")
    spike = int(steps * 0.73)
    url = f"{base}/files/{entity}/{project}/{run}/file_stream"
    t0 = 1_796_000_000.0
    for start in range(0, steps, chunk):
        lines = [
            json.dumps({"_step": i, "_runtime": i * 0.01, "_timestamp": t0 + i * 0.01,
                        "m": 1000.0 if i == spike else (i % 97) / 97.0})
            for i in range(start, min(steps, start + chunk))
        ]
        body = {"files": {"wandb-history.jsonl": {"offset": start, "content": lines}}}
        r = s.post(url, json=body, timeout=120)
        r.raise_for_status()
    r = s.post(url, json={"complete": True, "exitcode": 0}, timeout=60)
    r.raise_for_status()
    return spike


def gql(s: requests.Session, base: str, query: str, **variables) -> dict:
    r = s.post(f"{base}/graphql", json={"query": query, "variables": variables}, timeout=60)
    r.raise_for_status()
    data = r.json()
    if data.get("errors"):
        raise RuntimeError(f"GraphQL errors: {data['errors']}")
    return data["data"]


def seed_many_runs(base: str, key: str, entity: str, project: str, n: int) -> None:
    def one(i: int) -> None:
        with requests.Session() as s:
            s.auth = ("api", key)
            gql(s, base, UPSERT, name=f"r{i:05d}", project=project, entity=entity,
                state="finished", groupName=f"g{i % 20}", tags=[f"t{i % 3}"],
                config=json.dumps({"lr": {"value": 10 ** -(i % 5)},
                                   "batch": {"value": 2 ** (i % 8)},
                                   "model": {"value": {"depth": i % 12, "name": f"m{i % 7}"}}}),
                summaryMetrics=json.dumps({"loss": 1.0 / (i + 1), "acc": (i % 100) / 100,
                                           "_step": 1000, "_runtime": 60 + i % 600}))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))


def timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


def report(name: str, times: list[float], extra: str) -> None:
    print(f"{name:<36} median {statistics.median(times):7.3f} s  max {max(times):7.3f} s  {extra}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--entity", default="admin")
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=1600, help="chart width in device pixels")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-seed", action="store_true")
    args = ap.parse_args()

    s = requests.Session()
    s.auth = ("api", args.key)
    base = args.base.rstrip("/")
    long_project, big_project, run = "bench-long", "bench-many", "long1m"
    if not args.no_seed:
        t = time.perf_counter()
        seed_long_run(s, base, args.entity, long_project, run, args.steps)
        print(f"seeded {args.steps} history lines in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        seed_many_runs(base, args.key, args.entity, big_project, args.runs)
        print(f"seeded {args.runs} runs in {time.perf_counter() - t:.1f} s")
    spike = int(args.steps * 0.73)

    series_url = f"{base}/api/projects/{args.entity}/{long_project}/runs/{run}/series"

    def series(**params):
        r = s.get(series_url, params={"keys": "m", "points": args.points, **params}, timeout=120)
        r.raise_for_status()
        return r.json()["series"]["m"]

    label = f"series {args.steps:,} steps"
    cold, first = timed(series, 1)
    assert max(first["y"]) == 1000.0, "the spike is lost in the full-range reduction"
    report(f"{label}, first request", cold, f"{len(first['x'])} points of {first['count']}")
    warm, full = timed(series, args.repeat)
    report(f"{label}, warm", warm, f"{len(full['x'])} points")
    lo, hi = spike - args.steps // 200, spike + args.steps // 200
    zoom, zoomed = timed(lambda: series(**{"from": lo, "to": hi}), args.repeat)
    assert 1000.0 in zoomed["y"], "the spike is lost in the zoomed reduction"
    report(f"{label}, zoom to 1%", zoom, f"{len(zoomed['x'])} points of {zoomed['count']}")

    runs_url = f"{base}/api/projects/{args.entity}/{big_project}/runs"

    def runs():
        r = s.get(runs_url, headers={"Accept-Encoding": "gzip"}, timeout=120, stream=True)
        r.raise_for_status()
        wire = r.raw.read(decode_content=False)
        body = gzip.decompress(wire) if r.headers.get("content-encoding") == "gzip" else wire
        return len(json.loads(body)["runs"]), len(body), len(wire)

    table, (count, size, wire) = timed(runs, args.repeat)
    report(f"runs table, {count} runs", table, f"{size / 1e6:.1f} MB JSON, {wire / 1e6:.2f} MB on the wire")
    return 0


if __name__ == "__main__":
    sys.exit(main())
