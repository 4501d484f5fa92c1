"""A run logged offline by cairn's Rust SDK, uploaded by W&B's own `wandb sync`.

The `.wandb` log cairn writes must be one W&B's tools accept as their own: `wandb sync`
reads it with W&B's reader and replays it to the server, which must then hold exactly the
rows and summary cairn recorded.
"""

import os
import subprocess
from pathlib import Path

from conftest import ENTITY, REPO
from test_offline_sync import read_transaction_log

TRAIN_BIN = Path(
    os.environ.get("CAIRN_TRAIN_BIN", REPO / "target" / "debug" / "examples" / "train")
).resolve()


def test_wandb_sync_uploads_a_cairn_run(client, store):
    assert TRAIN_BIN.exists(), f"build the example first: cargo build -p cairn-sdk --example train ({TRAIN_BIN})"
    project = client.project()
    env = client.env(WANDB_MODE="offline", WANDB_RUN_ID="cairnsync01")
    out = subprocess.run(
        [str(TRAIN_BIN), "--steps", "50", "--metrics", "3"],
        cwd=client.tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"train failed\n{out.stdout}\n{out.stderr}"
    run_dirs = list((client.wandb_dir / "wandb").glob("offline-run-*-cairnsync01"))
    assert len(run_dirs) == 1, f"expected one offline run folder, got {run_dirs}\n{out.stdout}"
    run_dir = run_dirs[0]

    sync = client.cli("sync", "--project", project, "--entity", ENTITY, str(run_dir))
    assert sync.returncode == 0, f"wandb sync failed\nstdout: {sync.stdout}\nstderr: {sync.stderr}"

    row = store.run(ENTITY, project, "cairnsync01")
    assert row is not None, f"no run after wandb sync:\n{sync.stdout}{sync.stderr}"
    assert row["state"] == "finished" and row["exitcode"] == 0
    assert row["config"]["steps"] == {"value": 50}
    assert row["config"]["metrics"] == {"value": 3}

    (log_file,) = run_dir.glob("run-*.wandb")
    expected, expected_summary = read_transaction_log(log_file)
    history = store.history(row["id"])
    assert len(history) == 50
    assert history == expected
    assert [h["_step"] for h in history] == list(range(50))
    assert history[9]["loss"] == 0.1 and history[9]["train/m2"] == 0.2

    def user_keys(summary):
        return {k: v for k, v in summary.items() if not k.startswith("_")}

    assert user_keys(row["summary"]) == user_keys(expected_summary)
    assert row["summary"]["loss"] == {"min": 0.02, "last": 0.02} or row["summary"]["loss"] == 0.02
