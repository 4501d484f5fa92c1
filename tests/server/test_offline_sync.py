"""Offline run, then `wandb sync`: the server ends up with the run's own rows."""

import json
import subprocess
import time
from pathlib import Path

from conftest import CAIRN_BIN, ENTITY


def _set(target, item):
    keys = item.get("nested_key") or [item["key"]]
    for k in keys[:-1]:
        target = target.setdefault(k, {})
    target[keys[-1]] = json.loads(item["value_json"])


def read_transaction_log(path):
    """(history rows, summary) recorded in a .wandb file, read with `cairn dump` (a crashed
    run's log is cut: dump reports the damage and exits 2, and its records still count)."""
    out = subprocess.run([str(CAIRN_BIN), "dump", str(path)], capture_output=True, text=True)
    assert out.returncode in (0, 2), out.stderr
    rows, summary = [], {}
    for line in out.stdout.splitlines():
        record = json.loads(line)
        if "history" in record:
            row = {}
            for item in record["history"]["item"]:
                _set(row, item)
            rows.append(row)
        elif "summary" in record:
            for item in record["summary"].get("update", []):
                _set(summary, item)
    return rows, summary


def test_offline_run_then_sync(client, store):
    project = client.project()
    offline_env = client.env(WANDB_MODE="offline")
    started = time.time()
    res = client.run(
        """
        run = wandb.init(project=PROJECT, config={"lr": 0.1, "layers": [64, 32]}, tags=["offline"])
        for i in range(20):
            run.log({"loss": 1.0 / (i + 1), "损失": i, "a.b": i * 2, "nested": {"x": i}})
        run.summary["final"] = "done"
        print("offline console line", flush=True)
        report(id=run.id, run_dir=os.path.dirname(run.dir))
        run.finish()
        """,
        project,
        env=offline_env,
    )
    run_id = res.result["id"]
    run_dir = res.result["run_dir"]
    assert "offline-run-" in run_dir
    # Offline: nothing reached the server.
    assert store.run(ENTITY, project, run_id) is None

    synced_at = time.time()
    sync = client.cli("sync", "--project", project, run_dir)
    assert sync.returncode == 0, f"wandb sync failed\nstdout: {sync.stdout}\nstderr: {sync.stderr}"

    row = store.run(ENTITY, project, run_id)
    assert row is not None, (
        f"no run {ENTITY}/{project}/{run_id} after wandb sync:\n{sync.stdout}{sync.stderr}"
    )
    assert row["state"] == "finished" and row["exitcode"] == 0
    assert row["tags"] == ["offline"]
    assert row["config"]["lr"] == {"value": 0.1}
    assert row["config"]["layers"] == {"value": [64, 32]}

    # Exactly the rows of the transaction log, with their original timestamps.
    (log_file,) = Path(run_dir).glob("run-*.wandb")
    expected, expected_summary = read_transaction_log(log_file)
    assert len(expected) == 20
    history = store.history(row["id"])
    assert history == expected
    assert [h["_step"] for h in history] == list(range(20))
    assert all(started <= h["_timestamp"] < synced_at for h in history)
    assert history[3]["损失"] == 3 and history[3]["a.b"] == 6 and history[3]["nested"] == {"x": 3}

    # The summary is the one the offline run recorded (sync recomputes the runtime).
    def user_keys(summary):
        return {k: v for k, v in summary.items() if k not in ("_runtime", "_wandb")}

    assert user_keys(row["summary"]) == user_keys(expected_summary)
    assert row["summary"]["final"] == "done"
    assert row["summary"]["_step"] == 19

    console = store.console(row["id"])
    assert any(line.endswith(" offline console line") for line in console), console
