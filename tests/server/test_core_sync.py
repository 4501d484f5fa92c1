"""`wandb sync` through cairn's core: the unmodified wandb 0.31 CLI (`wandb sync`, with an
overlay of the package whose `bin/wandb-core` is the cairn binary) sends `init_sync`,
`sync` and `sync_status` to cairn's core, which uploads the offline runs to the server.

Checked against W&B's own `wandb sync` (its own core) on copies of the same logs: the
server must end up with the same runs (history, summary, config, state, console text), the
CLI must print the same lines and exit the same way, and the same `.synced` markers must
be left beside the logs.

A synced run gets the run files W&B's sync makes from the log (`config.yaml`,
`wandb-summary.json`, `wandb-metadata.json`) when its folder lacks them, as W&B's offline
runs do. Known differences, not asserted: the `_wandb` config entry's `t` (W&B's core adds
its own version and features) and the key of `e` (a writer id); console lines keep their original
timestamps (W&B's sync stamps them with the sync time); a crashed run's summary is the
last one its log recorded (W&B recomputes it from the rows it uploaded); a log that cannot
be read fails only itself (W&B's sync then uploads none of the runs it was given)."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CAIRN_BIN, ENTITY, WANDB_BIN, read_result, wandb_overlay
from test_offline_sync import read_transaction_log
from test_stop import wait_for

FIXTURES = Path("/work/shared/fixtures/wandb-0.31")

# Run files W&B's sync makes from the log; cairn's must too.
GENERATED_FILES = {"config.yaml", "wandb-metadata.json", "wandb-summary.json"}

OFFLINE_RUN = """
run = wandb.init(project=PROJECT, config={"lr": 0.1, "layers": [64, 32]}, tags=["t1"])
run.define_metric("acc", summary="max")
for i in range(30):
    run.log({"loss": 1.0 / (i + 1), "acc": i / 30, "nested": {"a": i}})
run.log({"loss": 0.5}, step=35)
run.log({"extra": 1}, commit=False)
run.log({"loss": 0.25})
print("offline console line", flush=True)
run.summary["best"] = 0.99
run.config["extra"] = 3
report(id=run.id, run_dir=os.path.dirname(run.dir))
run.finish()
"""


def core_processes(overlay: Path) -> str:
    found = subprocess.run(
        ["pgrep", "-f", str(overlay / "wandb" / "bin" / "wandb-core")],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip()


def user_keys(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("_runtime", "_wandb")}


def without_wandb(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "_wandb"}


def metric_definitions(entry: dict) -> dict:
    """`_wandb.m` by metric (name or glob), the step metric's index replaced by its name:
    W&B's core does not always list the definitions in the order they were made."""
    listed = entry.get("m", [])
    out = {}
    for metric in listed:
        metric = dict(metric)
        if "5" in metric:
            metric["5"] = listed[metric["5"] - 1].get("1")
        out[metric.get("1") or "glob:" + metric.get("2", "")] = metric
    return out


def same_wandb_entry(ours: dict, theirs: dict) -> bool:
    """The config's `_wandb` as W&B's core leaves it: the same metric definitions (`m`)
    and, per writer, an environment with the same fields (`e`; the writer ids differ)."""
    a, b = ours["_wandb"]["value"], theirs["_wandb"]["value"]
    fields = [sorted(env) for env in a.get("e", {}).values()]
    assert metric_definitions(a) == metric_definitions(b), (a.get("m"), b.get("m"))
    assert fields == [sorted(env) for env in b.get("e", {}).values()], (a.get("e"), b.get("e"))
    return True


def console_text(store, run_id: int) -> list[str]:
    # `[ERROR ]<timestamp> <text>`: the stream and the text, not the time.
    out = []
    for line in store.console(run_id):
        error = line.startswith("ERROR ")
        out.append(("E " if error else "") + line.split(" ", 2 if error else 1)[-1])
    return out


class Cores:
    """Environments for `wandb sync` with cairn's core and with W&B's own."""

    def __init__(self, client, tmp_path: Path):
        self.client = client
        self.overlay = wandb_overlay(tmp_path / "overlay")
        self.cairn_cache = tmp_path / "cache-cairn"
        # Not silent: the messages the core sends are what is checked.
        self.cairn = client.env(
            PYTHONPATH=str(self.overlay), WANDB_CACHE_DIR=str(self.cairn_cache), WANDB_SILENT=""
        )
        self.wandb = client.env(
            PYTHONPATH="", WANDB_CACHE_DIR=str(tmp_path / "cache-wandb"), WANDB_SILENT=""
        )

    def sync(self, core: str, *args: str, served: bool = True) -> subprocess.CompletedProcess:
        """`wandb sync ARGS` with `core`; `served`: the CLI gets as far as starting it."""
        started = time.monotonic()
        res = self.client.cli("sync", *args, env=self.cairn if core == "cairn" else self.wandb)
        assert time.monotonic() - started < 100, "wandb sync took too long"
        if core == "cairn" and served:
            # It really was cairn's core, and it is gone.
            assert list(self.cairn_cache.glob("wandb/logs/cairn-core-*.log")), res.stderr
            for _ in range(50):
                if not core_processes(self.overlay):
                    break
                time.sleep(0.1)
            assert not core_processes(self.overlay), "cairn core still running after sync"
        return res


def torn_tail(data: bytes, probe: Path) -> bool:
    """Whether a log of these bytes ends inside a record (`cairn dump` exits 2)."""
    probe.write_bytes(data)
    res = subprocess.run([str(CAIRN_BIN), "dump", str(probe)], capture_output=True, text=True)
    return res.returncode == 2 and "torn tail" in res.stderr


def offline_run(client) -> tuple[str, Path]:
    """An offline run written by the SDK (whichever core the suite runs)."""
    res = client.run(OFFLINE_RUN, client.project("offline"), env=client.env(WANDB_MODE="offline"))
    return res.result["id"], Path(res.result["run_dir"])


def copy_run(run_dir: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(run_dir, into / run_dir.name))


def test_wandb_sync_through_cairn_core(client, store, tmp_path):
    run_id, run_dir = offline_run(client)
    cores = Cores(client, tmp_path)
    project = client.project("cairn")
    # `wandb sync` prints run folders relative to its working directory (client.tmp).
    shown = run_dir.relative_to(client.tmp) if run_dir.is_relative_to(client.tmp) else run_dir

    res = cores.sync("cairn", "--project", project, str(run_dir))
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    out = res.stdout + res.stderr
    url = f"{client.server.base_url}/{ENTITY}/{project}/runs/{run_id}"
    assert f"[{project}/{run_id}] View run " in out and f" at {url}" in out, out
    assert f"[{project}/{run_id}] Finished syncing {shown}" in out, out
    assert "ERROR" not in out and "Traceback" not in out, out
    (log,) = run_dir.glob("run-*.wandb")
    assert Path(f"{log}.synced").exists(), "the .synced marker"

    row = store.run(ENTITY, project, run_id)
    assert row is not None, out
    assert row["state"] == "finished" and row["exitcode"] == 0, row
    assert row["tags"] == ["t1"]
    assert row["config"]["lr"] == {"value": 0.1}
    assert row["config"]["layers"] == {"value": [64, 32]}
    assert row["config"]["extra"] == {"value": 3}
    rows, summary = read_transaction_log(log)
    history = store.history(row["id"])
    assert history == rows
    assert [h["_step"] for h in history] == [*range(30), 35]
    assert history[-1]["extra"] == 1 and history[-1]["loss"] == 0.25
    assert user_keys(row["summary"]) == user_keys(summary)
    assert row["summary"]["best"] == 0.99 and row["summary"]["acc"] == {"max": 29 / 30}
    assert any(line.endswith(" offline console line") for line in store.console(row["id"]))

    # Synced runs are skipped the next time, as W&B's CLI skips them.
    again = cores.sync("cairn", "--project", project, str(run_dir))
    assert again.returncode == 0
    assert "Skipped 1 synced run(s)" in again.stderr, again.stderr


def test_cairn_core_stores_what_wandbs_own_sync_stores(client, store, tmp_path):
    run_id, run_dir = offline_run(client)
    cores = Cores(client, tmp_path)
    ours = copy_run(run_dir, tmp_path / "ours")
    theirs = copy_run(run_dir, tmp_path / "theirs")
    p_cairn, p_wandb = client.project("cairn"), client.project("wandb")

    # With the job-type override and a tag rename, which both cores apply.
    rewrite = ("--job-type", "eval", "--replace-tags", "t1=renamed")
    res_c = cores.sync("cairn", "--project", p_cairn, *rewrite, str(ours))
    res_w = cores.sync("wandb", "--project", p_wandb, *rewrite, str(theirs))
    assert res_c.returncode == res_w.returncode == 0, f"{res_c.stderr}\n{res_w.stderr}"
    assert "WARNING" not in res_c.stderr, res_c.stderr
    # The same lines, but for the project and the name the server made up.
    for res, project, where in ((res_c, p_cairn, ours), (res_w, p_wandb, theirs)):
        assert f"[{project}/{run_id}] Finished syncing " in res.stderr, res.stderr
        assert f"[{project}/{run_id}] View run " in res.stderr, res.stderr
        (log,) = where.glob("run-*.wandb")
        assert Path(f"{log}.synced").exists()

    a = store.run(ENTITY, p_cairn, run_id)
    b = store.run(ENTITY, p_wandb, run_id)
    assert a is not None and b is not None
    for col in ("state", "exitcode", "tags", "group_name", "job_type", "notes"):
        assert a[col] == b[col], col
    assert (a["tags"], a["job_type"]) == (["renamed"], "eval"), a
    assert store.history(a["id"]) == store.history(b["id"])
    assert user_keys(a["summary"]) == user_keys(b["summary"])
    assert without_wandb(a["config"]) == without_wandb(b["config"])
    assert console_text(store, a["id"]) == console_text(store, b["id"])
    assert set(store.files(a["id"])) >= set(store.files(b["id"])) | GENERATED_FILES


def test_bad_paths_are_reported_like_wandbs_own_core(client, store, tmp_path):
    cores = Cores(client, tmp_path)

    # A path that does not exist: the CLI refuses it before any core sees it.
    missing = {
        core: cores.sync(core, str(tmp_path / "no-such-run"), served=False)
        for core in ("cairn", "wandb")
    }
    assert missing["cairn"].returncode == missing["wandb"].returncode == 2
    assert "does not exist" in missing["cairn"].stderr
    assert missing["cairn"].stderr == missing["wandb"].stderr

    # A file that is not a transaction log: an ERROR naming it, exit status 0, no marker.
    for core in ("cairn", "wandb"):
        bad = tmp_path / core / "offline-run-20260101_000000-garbage1"
        bad.mkdir(parents=True)
        (bad / "run-garbage1.wandb").write_bytes(b"this is not a W&B transaction log")
        res = cores.sync(core, "--project", client.project(core), str(bad))
        assert res.returncode == 0, res.stderr
        shown = bad.relative_to(client.tmp) if bad.is_relative_to(client.tmp) else bad
        assert f'ERROR Failed to read "{shown}": ' in res.stderr, res.stderr
        assert not (bad / "run-garbage1.wandb.synced").exists()

    # A log cut in the middle (a crash, or a run still being written): what it holds is
    # uploaded, an ERROR says the rest is missing, and it is not marked synced.
    run_id, run_dir = offline_run(client)
    (log,) = run_dir.glob("run-*.wandb")
    data = log.read_bytes()
    cut_at = len(data) * 2 // 3
    while torn_tail(data[:cut_at], tmp_path / "probe.wandb") is False:
        cut_at += 1  # a cut that fell between two records
    for core in ("cairn", "wandb"):
        cut = copy_run(run_dir, tmp_path / f"cut-{core}")
        (cut / log.name).write_bytes(data[:cut_at])
        project = client.project(core)
        res = cores.sync(core, "--project", project, str(cut))
        assert res.returncode == 0, res.stderr
        assert "ERROR Failed to sync all data from " in res.stderr, res.stderr
        assert "the file ends with an incomplete record" in res.stderr
        assert f"[{project}/{run_id}] Finished syncing" not in res.stderr
        assert not (cut / f"{log.name}.synced").exists()
        row = store.run(ENTITY, project, run_id)
        assert row is not None and 0 < len(store.history(row["id"])) < 32, core

    # cairn: a bad log fails only itself; the good run given with it is synced.
    good = copy_run(run_dir, tmp_path / "good")
    bad = tmp_path / "cairn" / "offline-run-20260101_000000-garbage1"
    project = client.project("mixed")
    res = cores.sync("cairn", "--project", project, str(bad), str(good))
    assert res.returncode == 0, res.stderr
    assert "ERROR Failed to read " in res.stderr, res.stderr
    assert f"[{project}/{run_id}] Finished syncing" in res.stderr, res.stderr
    assert Path(f"{good / log.name}.synced").exists()
    row = store.run(ENTITY, project, run_id)
    assert row is not None and row["state"] == "finished"
    assert store.history(row["id"]) == read_transaction_log(good / log.name)[0]


def test_wandb_written_fixtures_sync_alike(client, store, tmp_path):
    """The offline runs W&B 0.31 wrote (/work/shared/fixtures), synced by both cores."""
    runs = sorted(FIXTURES.glob("*/wandb/offline-run-*"))
    assert len(runs) >= 9, runs
    cores = Cores(client, tmp_path)
    projects = {"cairn": client.project("fx-cairn"), "wandb": client.project("fx-wandb")}
    out = {}
    for core, project in projects.items():
        copies = [copy_run(r, tmp_path / f"fx-{core}") for r in runs]
        res = cores.sync(core, "--project", project, *map(str, copies))
        assert res.returncode == 0, res.stderr
        out[core] = res.stderr
        for copy in copies:
            (log,) = copy.glob("run-*.wandb")
            crashed = "crash" in copy.name
            assert Path(f"{log}.synced").exists() != crashed, (core, copy.name)

    for run in runs:
        run_id = run.name.rsplit("-", 1)[-1]
        a = store.run(ENTITY, projects["cairn"], run_id)
        b = store.run(ENTITY, projects["wandb"], run_id)
        assert a is not None and b is not None, run_id
        assert (a["state"], a["exitcode"]) == (b["state"], b["exitcode"]), run_id
        for col in ("tags", "group_name", "job_type", "notes"):
            assert a[col] == b[col], (run_id, col)
        assert store.history(a["id"]) == store.history(b["id"]), run_id
        assert len(store.events(a["id"])) == len(store.events(b["id"])), run_id
        assert console_text(store, a["id"]) == console_text(store, b["id"]), run_id
        assert without_wandb(a["config"]) == without_wandb(b["config"]), run_id
        assert same_wandb_entry(a["config"], b["config"]), run_id
        if "crash" not in run.name:
            assert user_keys(a["summary"]) == user_keys(b["summary"]), run_id
            assert f"[{projects['cairn']}/{run_id}] Finished syncing" in out["cairn"]
        assert set(store.files(a["id"])) >= set(store.files(b["id"])), run_id
    crashed = next(r for r in runs if "crash" in r.name)
    assert "ERROR Failed to sync all data from " in out["cairn"]
    assert crashed.name in out["cairn"]


GROWING_RUN = """
run = wandb.init(project=PROJECT)
for i in range(5):
    run.log({"i": i})
run.summary["phase"] = "first"
report(id=run.id, run_dir=os.path.dirname(run.dir))
deadline = time.time() + 120
while not os.path.exists(ARGS["go"]) and time.time() < deadline:
    time.sleep(0.1)
for i in range(5, 10):
    run.log({"i": i})
run.summary["phase"] = "second"
run.finish()
"""


@pytest.mark.parametrize("core", ["cairn", "wandb", "cairn sync"])
def test_live_sync_follows_a_run_being_written(client, store, tmp_path, core):
    """`wandb beta sync --live` on an offline run still being written: rows reach the
    server while the script runs, the sync waits for the run's end, then finishes it —
    with either core doing the sync, and with `cairn sync --live`."""
    go = tmp_path / "go"
    cores = Cores(client, tmp_path)
    # Written by cairn's core, which puts each record in the log as it comes (under W&B's,
    # the log of a small run still held only its 7-byte header after 5 rows and 8 s).
    writer, script, result = client.popen(
        GROWING_RUN,
        client.project("writer"),
        args={"go": str(go)},
        env=client.env(WANDB_MODE="offline", PYTHONPATH=str(cores.overlay)),
    )
    project = client.project(core)
    sync = None
    try:
        started = wait_for(
            lambda: writer.poll() is not None or read_result(result).get("id"), 90, "the run"
        )
        assert writer.poll() is None, client.finish(writer, script, result, 10, client.wandb_dir)
        run_id, run_dir = started, Path(read_result(result)["run_dir"])
        wait_for(lambda: list(run_dir.glob("run-*.wandb")), 30, "the run's log")
        command = {
            "cairn sync": [str(CAIRN_BIN.resolve()), "sync", "--live"],
            "cairn": [str(WANDB_BIN), "beta", "sync", "--live"],
            "wandb": [str(WANDB_BIN), "beta", "sync", "--live"],
        }[core]
        sync = subprocess.Popen(
            [*command, "--project", project, str(run_dir)],
            cwd=client.tmp,
            env=cores.wandb if core == "wandb" else cores.cairn,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(
            lambda: (row := store.run(ENTITY, project, run_id)) and len(store.history(row["id"])) == 5,
            60,
            "the first rows on the server while the run is written",
        )
        assert sync.poll() is None, "the live sync ended before the run did"
        go.touch()
        client.finish(writer, script, result, 60, client.wandb_dir)
        out, err = sync.communicate(timeout=90)
        assert sync.returncode == 0, f"{out}\n{err}"
    finally:
        for proc in (writer, sync):
            if proc is not None and proc.poll() is None:
                proc.kill()
    row = store.run(ENTITY, project, run_id)
    assert row["state"] == "finished" and row["exitcode"] == 0, row
    assert [h["i"] for h in store.history(row["id"])] == list(range(10))
    assert row["summary"]["phase"] == "second"
