"""The data the web UI tests look at, logged into a fresh `cairn server`.

Three projects of the admin entity:

  ui-demo    `main`: the real wandb client, 20,000 steps of `train/loss`, `val/acc` (every
             100th step) and `spiky` (1.0 except one step at 1000), config, tags, a group,
             known console lines, and an artifact `ui-dataset` it logs;
             `other`: the real wandb client again, a different `lr`, uses `ui-dataset:latest`;
             `rusty`: cairn's Rust `train` example.
  ui-stream  `million`: 1,000,000 steps of `m` with one spike, posted straight to the
             filestream endpoint; `live`: a run that never finishes (the live test appends).
  ui-10k     10,000 runs made with raw `upsertBucket` mutations.

Every expected value the tests check comes from here (`Seeded`), computed by the same code
that produced the logged data.
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENTITY = "admin"
DEMO = "ui-demo"
STREAM = "ui-stream"
MANY = "ui-10k"

# The wandb run's data. FORMULAS is both executed here and prepended to the wandb script,
# so expectations and logged values come from one definition.
FORMULAS = """
MAIN_STEPS = 20000
SPIKE_STEP = 7321
EPOCHS = 5
def train_loss(step):
    return round(2.0 / (1.0 + step / 500.0), 3)
def val_acc(step):
    return round(0.5 + 0.4 * step / 20000.0, 3)
def spiky(step):
    return 1000.0 if step == SPIKE_STEP else 1.0
def main_row(step):
    row = {"train/loss": train_loss(step), "spiky": spiky(step)}
    if step % 100 == 99:
        row["val/acc"] = val_acc(step)
    return row
"""
_formulas: dict[str, Any] = {}
exec(FORMULAS, _formulas)
MAIN_STEPS: int = _formulas["MAIN_STEPS"]
SPIKE_STEP: int = _formulas["SPIKE_STEP"]
EPOCHS: int = _formulas["EPOCHS"]
main_row = _formulas["main_row"]

MAIN_CONFIG = {
    "lr": 0.001,
    "batch_size": 64,
    "epochs": EPOCHS,
    "optimizer": {"name": "adam", "beta1": 0.9},
    "architecture": "resnet-ui",
}
OTHER_CONFIG = dict(MAIN_CONFIG, lr=0.01)
MAIN_TAGS = ["baseline", "ui-test"]
MAIN_GROUP = "ui-group"
# The other run's train/loss goes higher than the main run's ever does: a compare chart
# whose largest value is OTHER_LOSS_MAX draws the other run.
OTHER_STEPS = 50
OTHER_LOSS_MAX = 50.0

MAIN_SCRIPT = """
run = wandb.init(project=PROJECT, id=ARGS["id"], name=ARGS["name"], config=ARGS["config"],
                 tags=ARGS["tags"], group=ARGS["group"], job_type="train",
                 settings=wandb.Settings(x_stats_sampling_interval=1.0))
per_epoch = MAIN_STEPS // EPOCHS
for step in range(MAIN_STEPS):
    if step % per_epoch == 0:
        print(f"hello from wandb epoch {step // per_epoch}", flush=True)
    run.log(main_row(step), step=step)
print("the needle line: zebra-7f3a", flush=True)
art = wandb.Artifact(ARGS["artifact"], type="dataset", description="a UI test dataset")
with art.new_file("data.csv") as f:
    f.write("x,y\\n1,2\\n3,4\\n")
with art.new_file("README.md") as f:
    f.write("# ui dataset\\n")
run.log_artifact(art)
art.wait()
report(id=run.id)
run.finish()
"""

OTHER_SCRIPT = """
run = wandb.init(project=PROJECT, id=ARGS["id"], name=ARGS["name"], config=ARGS["config"],
                 job_type="eval")
art = run.use_artifact(ARGS["artifact"] + ":latest")
art.download()
for step in range(ARGS["steps"]):
    run.log({"train/loss": ARGS["loss_max"] / (step + 1), "val/acc": 0.25}, step=step)
print("other run done", flush=True)
report(id=run.id)
run.finish()
"""

RUST_STEPS = 500
RUST_METRICS = 3

MILLION = 1_000_000
MILLION_SPIKE_STEP = 612_345
MILLION_SPIKE = 5000.0
MILLION_CHUNK = 20_000


def million_value(step: int) -> float:
    return MILLION_SPIKE if step == MILLION_SPIKE_STEP else (step % 1000) / 1000


LIVE_LINES = 100


def live_value(step: int) -> float:
    return float(step)


MANY_RUNS = 10_000


def many_run_name(i: int) -> str:
    return f"bulk{i:05d}"


def many_lr(i: int) -> float:
    return 0.001 * (1 + i % 7)


# A runs-table filter on a config key (README: `key>value`).
MANY_FILTER = "lr>0.0065"


def many_filter_count() -> int:
    return sum(1 for i in range(MANY_RUNS) if many_lr(i) > 0.0065)


@dataclass
class Seeded:
    """Names and expected values for the tests."""

    entity: str = ENTITY
    main: str = "mainrun1"
    main_name: str = "ui-main-run"
    other: str = "otherrun1"
    other_name: str = "ui-other-run"
    rusty: str = "rustrun1"
    million: str = "million"
    live: str = "liverun1"
    artifact: str = "ui-dataset"
    main_files: list[str] = field(default_factory=list)
    main_system: list[str] = field(default_factory=list)  # system metric keys (events)
    rust_summary: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def expectations(self) -> dict[str, Any]:
        """The JSON the browser script checks against."""
        last_main = {}
        for step in range(MAIN_STEPS):
            last_main.update(main_row(step))
        return {
            "entity": self.entity,
            "projects": [DEMO, STREAM, MANY],
            "demo": {
                "project": DEMO,
                "runs": [self.main, self.other, self.rusty],
                "main": {
                    "id": self.main,
                    "name": self.main_name,
                    "summary": last_main,
                    "config": {
                        "lr": MAIN_CONFIG["lr"],
                        "batch_size": MAIN_CONFIG["batch_size"],
                        "optimizer.name": "adam",
                        "architecture": "resnet-ui",
                    },
                    "sections": {"train": ["train/loss"], "val": ["val/acc"], "Charts": ["spiky"]},
                    "spiky": {"max": 1000.0, "last": main_row(MAIN_STEPS - 1)["spiky"]},
                    "console": [f"hello from wandb epoch {e}" for e in range(EPOCHS)]
                    + ["the needle line: zebra-7f3a"],
                    "consoleSearch": {"q": "epoch 3", "expect": "hello from wandb epoch 3"},
                    "files": self.main_files,
                    "system": self.main_system,
                    "fileToView": {"name": "config.yaml", "contains": ["batch_size", "resnet-ui"]},
                },
                "other": {"id": self.other, "name": self.other_name, "lossMax": OTHER_LOSS_MAX},
                "rusty": {"id": self.rusty, "summary": self.rust_summary},
                "compare": {"runs": [self.main, self.other], "diffKey": "lr", "diffSection": "config",
                            "values": [str(MAIN_CONFIG["lr"]), str(OTHER_CONFIG["lr"])]},
                "artifact": {
                    "collection": self.artifact,
                    "type": "dataset",
                    "version": "v0",
                    "alias": "latest",
                    "createdBy": [self.main, self.main_name],
                    "usedBy": [self.other, self.other_name],
                    "files": ["data.csv", "README.md"],
                },
            },
            "stream": {
                "project": STREAM,
                "million": {"id": self.million, "metric": "m", "max": MILLION_SPIKE,
                            "last": million_value(MILLION - 1), "steps": MILLION,
                            "spike_step": MILLION_SPIKE_STEP},
                "live": {"id": self.live, "metric": "live", "lines": LIVE_LINES,
                         "last": live_value(LIVE_LINES - 1)},
            },
            "many": {"project": MANY, "count": MANY_RUNS, "search": "bulk0004",
                     "searchCount": 10, "filter": MANY_FILTER, "filterCount": many_filter_count()},
        }


# --------------------------------------------------------------------------------------
# Raw HTTP: W&B's GraphQL and filestream endpoints, as the client uses them


UPSERT_BUCKET = """
mutation UpsertBucket($name: String, $project: String, $entity: String, $displayName: String,
  $config: JSONString, $summaryMetrics: JSONString, $tags: [String!], $groupName: String,
  $state: String, $host: String) {
  upsertBucket(input: {name: $name, modelName: $project, entityName: $entity,
    displayName: $displayName, config: $config, summaryMetrics: $summaryMetrics, tags: $tags,
    groupName: $groupName, state: $state, host: $host}) {
    bucket { id name }
    inserted
  }
}
"""


class Http:
    """One keep-alive connection to the server, authenticated with `api:KEY`."""

    def __init__(self, port: int, api_key: str):
        self.port = port
        self.auth = "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode()
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: Any) -> Any:
        data = json.dumps(body).encode()
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(
                    "POST",
                    path,
                    data,
                    {"Content-Type": "application/json", "Authorization": self.auth},
                )
                resp = self.conn.getresponse()
                text = resp.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            if resp.status != 200:
                raise AssertionError(f"POST {path}: HTTP {resp.status}: {text[:500]!r}")
            return json.loads(text)
        raise AssertionError("unreachable")

    def upsert_run(self, project: str, name: str, **fields: Any) -> None:
        variables = {"name": name, "project": project, "entity": ENTITY, "host": "ui-test"}
        for key in ("config", "summaryMetrics"):
            if key in fields:
                fields[key] = json.dumps(fields[key])
        variables.update(fields)
        body = self.post("/graphql", {"query": UPSERT_BUCKET, "variables": variables})
        if body.get("errors"):
            raise AssertionError(f"upsertBucket {project}/{name}: {body['errors']}")

    def stream(self, project: str, run: str, files: dict[str, Any], **extra: Any) -> Any:
        return self.post(f"/files/{ENTITY}/{project}/{run}/file_stream", {"files": files, **extra})

    def history(self, project: str, run: str, offset: int, rows: list[dict[str, Any]]) -> None:
        content = [json.dumps(r, separators=(",", ":")) for r in rows]
        self.stream(project, run, {"wandb-history.jsonl": {"offset": offset, "content": content}})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def wandb_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config in the form the wandb client sends: {key: {"value": v}}."""
    return {k: {"value": v, "desc": None} for k, v in config.items()}


# --------------------------------------------------------------------------------------
# The seeding steps


def seed_million(port: int, api_key: str, seeded: Seeded) -> None:
    """1,000,000 history lines of `m`, posted in chunks to the filestream endpoint."""
    h = Http(port, api_key)
    h.upsert_run(STREAM, seeded.million, displayName="a million steps",
                 config=wandb_config({"steps": MILLION}))
    for start in range(0, MILLION, MILLION_CHUNK):
        rows = [{"_step": s, "m": million_value(s)}
                for s in range(start, min(start + MILLION_CHUNK, MILLION))]
        h.history(STREAM, seeded.million, start, rows)
    h.stream(STREAM, seeded.million, {"wandb-summary.json": {
        "offset": 0, "content": [json.dumps({"m": million_value(MILLION - 1), "_step": MILLION - 1})]
    }}, complete=True, exitcode=0)
    h.close()


def seed_live(port: int, api_key: str, seeded: Seeded) -> None:
    """A running run: history lines and a heartbeat, never `complete`."""
    h = Http(port, api_key)
    h.upsert_run(STREAM, seeded.live, displayName="live run")
    h.history(STREAM, seeded.live, 0,
              [{"_step": s, "live": live_value(s)} for s in range(LIVE_LINES)])
    h.close()


def seed_many(port: int, api_key: str, workers: int = 8) -> None:
    """MANY_RUNS runs in project ui-10k, by parallel upsertBucket mutations."""
    local = threading.local()
    conns: list[Http] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        h = getattr(local, "h", None)
        if h is None:
            h = local.h = Http(port, api_key)
            with lock:
                conns.append(h)
        h.upsert_run(
            MANY,
            many_run_name(i),
            displayName=many_run_name(i),
            state="finished",
            config=wandb_config({"seed": i, "lr": many_lr(i)}),
            summaryMetrics={"loss": round(1.0 / (1 + i), 6), "acc": (i % 100) / 100},
        )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(MANY_RUNS)))
    for h in conns:
        h.close()


def run_rust_train(client, train_bin: Path, seeded: Seeded) -> None:
    env = client.env(WANDB_RUN_ID=seeded.rusty, WANDB_PROJECT=DEMO, WANDB_ENTITY=ENTITY)
    out = subprocess.run(
        [str(train_bin), "--steps", str(RUST_STEPS), "--metrics", str(RUST_METRICS)],
        cwd=client.tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, (
        f"{train_bin} exited {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    )
    last = RUST_STEPS - 1
    loss = 1.0 / (last + 1.0)
    seeded.rust_summary = {"loss": loss, **{f"train/m{k}": loss * k for k in range(1, RUST_METRICS)}}


def run_wandb(client, seeded: Seeded) -> None:
    """The two wandb runs of ui-demo: `main` logs the artifact, `other` uses it."""
    res = client.run(
        FORMULAS + MAIN_SCRIPT,
        DEMO,
        args={"id": seeded.main, "name": seeded.main_name, "config": MAIN_CONFIG,
              "tags": MAIN_TAGS, "group": MAIN_GROUP, "artifact": seeded.artifact},
        timeout=600,
    )
    assert res.result.get("id") == seeded.main, res.describe()
    res = client.run(
        OTHER_SCRIPT,
        DEMO,
        args={"id": seeded.other, "name": seeded.other_name, "config": OTHER_CONFIG,
              "artifact": seeded.artifact, "steps": OTHER_STEPS, "loss_max": OTHER_LOSS_MAX},
        timeout=300,
    )
    assert res.result.get("id") == seeded.other, res.describe()


def seed_all(server, client, train_bin: Path) -> Seeded:
    """Everything, with the independent parts in parallel; returns the expectations."""
    seeded = Seeded()
    errors: list[BaseException] = []

    def timed(name, fn, *args):
        def go():
            t0 = time.monotonic()
            try:
                fn(*args)
            except BaseException as e:  # reported after the join
                errors.append(e)
            finally:
                seeded.timings[name] = round(time.monotonic() - t0, 1)

        t = threading.Thread(target=go, name=name)
        t.start()
        return t

    threads = [
        timed("wandb runs", run_wandb, client, seeded),
        timed("rust train", run_rust_train, client, train_bin, seeded),
        timed("1M steps", seed_million, server.port, server.api_key, seeded),
        timed("live run", seed_live, server.port, server.api_key, seeded),
        timed("10k runs", seed_many, server.port, server.api_key),
    ]
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    row = server.store.run(ENTITY, DEMO, seeded.main)
    assert row is not None, f"run {DEMO}/{seeded.main} was not stored"
    seeded.main_files = sorted(server.store.files(row["id"]))
    system = set()
    for event in server.store.events(row["id"]):
        system.update(k for k, v in event.items()
                      if not k.startswith("_") and isinstance(v, (int, float)))
    seeded.main_system = sorted(system)
    return seeded
