"""cairn's own SDK and `cairn sync` against `cairn server`: online runs, syncing offline
runs (cairn's and W&B's), idempotent re-syncs, a server that is down at start or at the
end, and the server's stop signal reaching a Rust training loop.

The expected rows always come from the run's own transaction log (`cairn dump`): what
the server stores must be exactly what the writer received.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

from conftest import CAIRN_BIN, ENTITY, REPO, make_server
from test_offline_sync import read_transaction_log

TRAIN_BIN = Path(
    os.environ.get("CAIRN_TRAIN_BIN", REPO / "target" / "debug" / "examples" / "train")
).resolve()
CAIRN = Path(CAIRN_BIN).resolve()
FIXTURES = REPO / "testdata" / "wandb-0.31"


def train(client, run_id, steps=200, metrics=3, timeout=180, **env):
    """Runs cairn's `train` example; returns (process result, run folder)."""
    assert TRAIN_BIN.exists(), f"build it: cargo build -p cairn-sdk --example train ({TRAIN_BIN})"
    full_env = client.env(WANDB_RUN_ID=run_id, **env)
    out = subprocess.run(
        [str(TRAIN_BIN), "--steps", str(steps), "--metrics", str(metrics)],
        cwd=client.tmp,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    folders = sorted((Path(full_env["WANDB_DIR"]) / "wandb").glob(f"*run-*-{run_id}"))
    return out, (folders[-1] if folders else None)


def cairn_sync(client, *args, env=None, timeout=120):
    return subprocess.run(
        [str(CAIRN), "sync", *map(str, args)],
        cwd=client.tmp,
        env=env or client.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_run_matches_log(store, project, run_id, run_dir, state="finished"):
    row = store.run(ENTITY, project, run_id)
    assert row is not None, f"no run {project}/{run_id} on the server"
    (log,) = Path(run_dir).glob("run-*.wandb")
    expected, expected_summary = read_transaction_log(log)
    history = store.history(row["id"])
    assert history == expected, f"{len(history)} rows stored, {len(expected)} logged"
    assert row["history_lines"] == len(expected)
    assert row["state"] == state, row["state"]
    user = {k: v for k, v in expected_summary.items() if not k.startswith("_")}
    assert {k: v for k, v in row["summary"].items() if k in user} == user
    return row


def test_online_run(client, store):
    project = client.project()
    out, run_dir = train(
        client, "online0001", steps=500, WANDB_PROJECT=project,
        WANDB__FILE_STREAM_TRANSMIT_INTERVAL="1",
    )
    assert out.returncode == 0, out.stderr
    assert run_dir.name.startswith("run-"), run_dir
    row = assert_run_matches_log(store, project, "online0001", run_dir)
    assert row["exitcode"] == 0
    assert row["config"]["steps"] == {"value": 500}
    files = store.files(row["id"])
    for name in ("config.yaml", "wandb-summary.json", "wandb-metadata.json"):
        assert files.get(name, {}).get("uploaded") == 1, f"{name}: {sorted(files)}"


def test_sync_cairn_offline_run_twice(client, store):
    project = client.project()
    out, run_dir = train(client, "cairnoff01", steps=300, WANDB_MODE="offline")
    assert out.returncode == 0, out.stderr
    assert run_dir.name.startswith("offline-run-")
    for attempt in range(2):
        res = cairn_sync(client, run_dir, "--project", project)
        assert res.returncode == 0, f"attempt {attempt}: {res.stdout}{res.stderr}"
        assert "300 history rows" in res.stdout, res.stdout
        assert_run_matches_log(store, project, "cairnoff01", run_dir)
    assert (run_dir / "run-cairnoff01.wandb.synced").exists()
    assert [r["name"] for r in store.runs(ENTITY, project)] == ["cairnoff01"]


def test_sync_wandb_offline_runs(client, store, tmp_path):
    """W&B's own offline runs (written by wandb 0.31), several at once, with overrides."""
    project = client.project()
    names = ["basic", "rich", "stats", "failed", "crashed"]
    dirs = []
    for name in names:
        shutil.copytree(FIXTURES / name / "wandb", tmp_path / name)
        (run_dir,) = (tmp_path / name).glob("offline-run-*")
        dirs.append(run_dir)
    res = cairn_sync(
        client, *[tmp_path / n for n in names], "--project", project, "--jobs", "3",
        "--job-type", "resynced", "--replace-tags", "a=b, b = c",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no exit record" in res.stderr  # the crashed run
    for run_dir in dirs:
        run_id = run_dir.name.rsplit("-", 1)[-1]
        row = store.run(ENTITY, project, run_id)
        assert row is not None, f"{run_id} missing: {res.stdout}"
        state = "failed" if run_dir.parent.name in ("failed", "crashed") else "finished"
        assert_run_matches_log(store, project, run_id, run_dir, state=state)
    rich = store.run(ENTITY, project, "rich0001")
    assert "notes.txt" in store.files(rich["id"])
    # The overrides: every run's job type, and tags a, b → b, c (renames are not chained).
    assert (rich["tags"], rich["job_type"]) == (["b", "c"], "resynced"), rich
    # The run files W&B's offline runs lack are made from the log.
    assert {"config.yaml", "wandb-summary.json", "wandb-metadata.json"} <= set(store.files(rich["id"]))
    bad = cairn_sync(client, dirs[0], "--replace-tags", "oops")
    assert bad.returncode != 0 and "not old=new" in bad.stderr, bad.stderr


def test_server_down_at_start_and_finish_with_deadline(client, server, tmp_path):
    """The run starts while the server is down and logs at full speed; the server comes up
    during the run and everything lands. Then a run that cannot reach any server finishes
    within its deadline, and `cairn sync` uploads it afterwards."""
    srv = make_server(server.backend, tmp_path / "srv")
    try:
        client_env = dict(
            WANDB_BASE_URL=srv.base_url,
            WANDB_API_KEY=server.api_key,
            WANDB__FILE_STREAM_TRANSMIT_INTERVAL="1",
        )
        project = client.project()
        env = client.env(WANDB_RUN_ID="downstart1", WANDB_PROJECT=project, TRAIN_STEP_DELAY_MS="5", **client_env)
        proc = subprocess.Popen(
            [str(TRAIN_BIN), "--steps", "1000", "--metrics", "3"],
            cwd=client.tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(2)
        assert proc.poll() is None, "the run must not fail while the server is down"
        srv.api_key = server.api_key
        srv.start()
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr
        run_dir = Path(stdout.strip().splitlines()[-1])
        assert_run_matches_log(srv.store, project, "downstart1", run_dir)
    finally:
        srv.cleanup()


def test_resume_online(client, store):
    project = client.project()
    env = dict(WANDB_PROJECT=project, WANDB__FILE_STREAM_TRANSMIT_INTERVAL="1")
    out, _ = train(client, "resume0001", steps=100, **env)
    assert out.returncode == 0, out.stderr
    out, _ = train(client, "resume0001", steps=50, WANDB_RESUME="must", **env)
    assert out.returncode == 0, out.stderr
    row = store.run(ENTITY, project, "resume0001")
    history = store.history(row["id"])
    assert [h["_step"] for h in history] == list(range(150))
    assert row["history_lines"] == 150 and row["state"] == "finished"

    out, _ = train(client, "resume0001", steps=5, WANDB_RESUME="never", **env)
    assert out.returncode != 0 and "already exists" in out.stderr, out.stderr
    out, _ = train(client, "resume0002", steps=5, WANDB_RESUME="must", **env)
    assert out.returncode != 0 and "does not exist" in out.stderr, out.stderr
    assert store.run(ENTITY, project, "resume0002") is None


LARGE_WANDB_RUN = """
run = wandb.init(project=PROJECT, id="largewb001", config={"lr": 0.1})
for i in range(ARGS["steps"]):
    row = {"loss": 1.0 / (i + 1), "acc": i / ARGS["steps"], "lr": 0.1 * 0.999 ** i}
    if i % 100 == 0:
        row["val/loss"] = 2.0 / (i + 1)
    run.log(row)
report(run_dir=os.path.dirname(run.dir))
run.finish()
"""

SCAN = """
api = wandb.Api(timeout=120)
run = api.run(ARGS["path"])
report(rows=list(run.scan_history(page_size=5000)), last_step=run.lastHistoryStep)
"""


def test_large_wandb_offline_run_synced_reads_back(client, store):
    """A large run logged offline by W&B's SDK, uploaded by `cairn sync`, read back with
    `wandb.Api().scan_history()`: exactly the log's rows."""
    project = client.project()
    steps = 20_000
    res = client.run(
        LARGE_WANDB_RUN, project, args={"steps": steps},
        env=client.env(WANDB_MODE="offline"), timeout=300,
    )
    run_dir = Path(res.result["run_dir"])
    sync = cairn_sync(client, run_dir, "--project", project)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert_run_matches_log(store, project, "largewb001", run_dir)
    (log,) = run_dir.glob("run-*.wandb")
    expected, _ = read_transaction_log(log)
    assert len(expected) == steps
    read = client.run(SCAN, project, args={"path": f"{ENTITY}/{project}/largewb001"}, timeout=300)
    assert read.result["last_step"] == steps - 1
    assert read.result["rows"] == expected
