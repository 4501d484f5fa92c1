"""Resuming runs: resume="allow" | "must" | "never"."""

from conftest import ENTITY, parse_console_line

# One phase of a resumable run: init with ARGS, log ARGS["values"] as `v`, print a line,
# sample system metrics for a moment, finish. Errors from wandb.init are reported, not raised.
PHASE = """
try:
    run = wandb.init(
        project=PROJECT,
        id=ARGS["id"],
        resume=ARGS["resume"],
        config=ARGS.get("config"),
        settings=wandb.Settings(x_stats_sampling_interval=1),
    )
except Exception as e:
    report(raised=type(e).__name__, message=str(e))
    sys.exit(0)
report(raised=None, id=run.id, resumed=run.resumed, start_step=run.starting_step)
for v in ARGS["values"]:
    run.log({"v": v})
for k, v in ARGS.get("summary", {}).items():
    run.summary[k] = v
print(ARGS["say"], flush=True)
time.sleep(1.5)
run.finish()
"""


def phase(client, project, run_id, resume, values, say, **extra):
    args = {"id": run_id, "resume": resume, "values": values, "say": say, **extra}
    return client.run(PHASE, project, args=args).result


def check_contiguous(store, row):
    """History, events and console lines are 0..n-1 with no gap or duplicate."""
    for rows, counter in (
        (store.history_rows(row["id"]), "history_lines"),
        (store.event_rows(row["id"]), "events_lines"),
        (store.console_rows(row["id"]), "log_lines"),
    ):
        lines = [r["line"] for r in rows]
        assert lines == list(range(len(lines))), f"{counter}: {lines}"
        assert row[counter] == len(lines), (
            f"{counter} is {row[counter]}, the table has {len(lines)}"
        )


def test_resume_allow_then_must_continues_history(client, store):
    project = client.project()
    run_id = "resume0001"

    # allow, run does not exist: a new run.
    r1 = phase(
        client,
        project,
        run_id,
        "allow",
        [1, 2, 3],
        "phase one",
        config={"a": 1},
        summary={"first_only": "kept"},
    )
    assert r1["raised"] is None, r1
    assert r1["id"] == run_id and r1["resumed"] is False
    row = store.run(ENTITY, project, run_id)
    assert row is not None and row["state"] == "finished"
    assert [(h["_step"], h["v"]) for h in store.history(row["id"])] == [(0, 1), (1, 2), (2, 3)]
    events_after_one = len(store.events(row["id"]))
    assert events_after_one >= 1
    check_contiguous(store, row)

    # allow, run exists: resumed, history continues at _step 3.
    r2 = phase(client, project, run_id, "allow", [4, 5, 6], "phase two", config={"b": 2})
    assert r2["raised"] is None, r2
    assert r2["resumed"] is True and r2["start_step"] == 3, r2
    row = store.run(ENTITY, project, run_id)
    assert row["state"] == "finished" and row["exitcode"] == 0
    history = store.history(row["id"])
    assert [(h["_step"], h["v"]) for h in history] == [(i, i + 1) for i in range(6)]
    assert len(store.events(row["id"])) > events_after_one
    check_contiguous(store, row)
    # The stored config is the merge of both inits; the summary kept the first phase's key.
    assert row["config"]["a"] == {"value": 1}
    assert row["config"]["b"] == {"value": 2}
    assert "t" in row["config"]["_wandb"]["value"]
    assert row["summary"]["first_only"] == "kept"
    assert row["summary"]["v"] == 6 and row["summary"]["_step"] == 5

    # must, run exists: continues again.
    r3 = phase(client, project, run_id, "must", [7, 8], "phase three")
    assert r3["raised"] is None, r3
    assert r3["resumed"] is True and r3["start_step"] == 6, r3
    row = store.run(ENTITY, project, run_id)
    history = store.history(row["id"])
    assert [(h["_step"], h["v"]) for h in history] == [(i, i + 1) for i in range(8)]
    assert [r["step"] for r in store.history_rows(row["id"])] == list(range(8))
    check_contiguous(store, row)
    texts = [parse_console_line(line)[2] for line in store.console(row["id"])]
    assert texts == ["phase one", "phase two", "phase three"], texts
    assert row["summary"]["v"] == 8 and row["summary"]["first_only"] == "kept"

    # Still exactly one run.
    assert [r["name"] for r in store.runs(ENTITY, project)] == [run_id]


def test_resume_must_missing_run_fails(client, store):
    project = client.project()
    r = phase(client, project, "missing001", "must", [1], "never printed")
    assert r["raised"], f"wandb.init(resume='must') of a missing run did not raise: {r}"
    assert "does not exist" in r["message"], r
    assert store.runs_named("missing001") == []


def test_resume_never_existing_run_fails(client, store):
    project = client.project()
    r1 = phase(client, project, "never00001", "never", [1, 2], "first")
    assert r1["raised"] is None and r1["resumed"] is False, r1
    row = store.run(ENTITY, project, "never00001")
    assert row is not None and row["state"] == "finished"

    r2 = phase(client, project, "never00001", "never", [3], "second")
    assert r2["raised"], f"wandb.init(resume='never') of an existing run did not raise: {r2}"
    assert "already exists" in r2["message"], r2
    row = store.run(ENTITY, project, "never00001")
    assert [(h["_step"], h["v"]) for h in store.history(row["id"])] == [(0, 1), (1, 2)]
    assert row["state"] == "finished"


def test_resume_allow_failed_run(client, store):
    # A run that crashed can be resumed; it is then finished.
    project = client.project()
    client.run(
        """
        run = wandb.init(project=PROJECT, id="crashed001")
        run.log({"v": 1})
        raise RuntimeError("first attempt dies")
        """,
        project,
        expect_rc=1,
    )
    row = store.run(ENTITY, project, "crashed001")
    assert row["state"] == "failed" and row["exitcode"] == 1

    r = phase(client, project, "crashed001", "allow", [2], "second attempt")
    assert r["raised"] is None and r["resumed"] is True, r
    row = store.run(ENTITY, project, "crashed001")
    assert row["state"] == "finished" and row["exitcode"] == 0
    assert [(h["_step"], h["v"]) for h in store.history(row["id"])] == [(0, 1), (1, 2)]
