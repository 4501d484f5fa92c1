"""Server-side stop: `cairn run stop` or `wandb.Api().run(…).stop()` (the
`stopRun` mutation) → filestream answers {"stopped": true} → the SDK raises
KeyboardInterrupt in the script (it polls about every 15 s). The stop is spent when the run
ends, so a resumed run is not stopped again."""

import time

import pytest

from conftest import ENTITY, parse_console_line, read_result

API_STOP = """
run = wandb.Api(timeout=60).run(ARGS["path"])
run.stop()
run.stop()  # asking twice is no different
report(state=run.state)
"""

LOOP = """
run = wandb.init(project=PROJECT)
report(id=run.id, entity=run.entity, project=run.project)
i = -1
try:
    for i in range(100000):
        run.log({"i": i})
        time.sleep(0.5)
    report(interrupted=False)
except KeyboardInterrupt:
    print("STOP-MARKER interrupted", flush=True)
    report(interrupted=True, last=i)
run.finish()
"""


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.parametrize("asked_by", ["cli", "api"])
def test_server_side_stop(client, store, asked_by):
    project = client.project()
    proc, script, result = client.popen(LOOP, project)
    try:
        started = wait_for(
            lambda: proc.poll() is not None or read_result(result).get("id"),
            90,
            "the script to start its run",
        )
        assert proc.poll() is None, (
            "the script ended before it was stopped:\n"
            + client.finish(proc, script, result, 10, client.wandb_dir).describe()
        )
        run_id = started
        # Let some history arrive first.
        wait_for(
            lambda: (
                (row := store.run(ENTITY, project, run_id)) and len(store.history(row["id"])) >= 2
            ),
            30,
            "history rows of the running run",
        )
        row = store.run(ENTITY, project, run_id)
        assert row["state"] == "running" and row["stop_requested"] == 0

        stop_at = time.monotonic()
        if asked_by == "cli":
            client.server.request_stop(ENTITY, project, run_id)
        else:
            client.run(API_STOP, project, args={"path": f"{ENTITY}/{project}/{run_id}"})
        assert store.run(ENTITY, project, run_id)["stop_requested"] == 1
        res = client.finish(proc, script, result, 90, client.wandb_dir)
        took = time.monotonic() - stop_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert res.returncode == 0, res.describe()
    assert res.result.get("interrupted") is True, res.describe()
    assert "STOP-MARKER interrupted" in res.stdout
    assert took < 45, f"the script took {took:.0f} s to stop"

    row = store.run(ENTITY, project, run_id)
    assert row["stop_requested"] == 0, "the stop outlived the run"
    assert row["state"] == "finished" and row["exitcode"] == 0, (row["state"], row["exitcode"])
    history = store.history(row["id"])
    logged = [h["i"] for h in history]
    assert logged == list(range(len(logged))), logged
    # The interrupt lands in time.sleep, or (rarely) inside the last run.log.
    assert len(logged) in (res.result["last"], res.result["last"] + 1), (logged, res.result)
    texts = [parse_console_line(line)[2] for line in store.console(row["id"])]
    assert "STOP-MARKER interrupted" in texts

    # Stopping a finished run changes nothing.
    if asked_by == "api":
        r = client.run(API_STOP, project, args={"path": f"{ENTITY}/{project}/{run_id}"})
        assert r.result["state"] == "finished"
        assert store.run(ENTITY, project, run_id)["stop_requested"] == 0


def test_mark_preempting(client, store, tmp_path):
    project = client.project()
    go = tmp_path / "go"
    proc, script, result = client.popen(
        """
        run = wandb.init(project=PROJECT)
        run.log({"x": 1})
        run.mark_preempting()
        report(id=run.id)
        deadline = time.time() + 60
        while not os.path.exists(ARGS["go"]) and time.time() < deadline:
            time.sleep(0.1)
        run.finish()
        """,
        project,
        args={"go": str(go)},
    )
    try:
        run_id = wait_for(
            lambda: proc.poll() is not None or read_result(result).get("id"), 90, "the run to start"
        )
        assert proc.poll() is None, client.finish(
            proc, script, result, 10, client.wandb_dir
        ).describe()
        wait_for(
            lambda: (row := store.run(ENTITY, project, run_id)) and row["state"] == "preempting",
            20,
            "state 'preempting'",
        )
        go.touch()
        res = client.finish(proc, script, result, 60, client.wandb_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert res.returncode == 0, res.describe()
    row = store.run(ENTITY, project, run_id)
    assert row["state"] == "finished" and row["exitcode"] == 0
