"""Runs written by the real wandb client: what the server stores for each feature."""

import socket

import pytest

from conftest import ENTITY, md5_forms, parse_console_line

# Files every online run uploads.
STANDARD_FILES = {"wandb-metadata.json", "requirements.txt", "config.yaml", "wandb-summary.json"}


def loss(i):
    return 1.0 / (i + 1)


def test_basic_run_history_summary_config(client, store):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT, config={"lr": 0.01})
        for i in range(100):
            run.log({"loss": 1.0 / (i + 1), "acc": i / 100})
        report(id=run.id, entity=run.entity, project=run.project, name=run.name)
        run.finish()
        """,
        project,
    )
    assert res.result["entity"] == ENTITY
    assert res.result["project"] == project
    run_id = res.result["id"]

    row = store.run(ENTITY, project, run_id)
    assert row is not None, f"no run {ENTITY}/{project}/{run_id}"
    assert row["state"] == "finished"
    assert row["exitcode"] == 0
    assert row["stop_requested"] == 0
    assert row["user_id"] == store.user(ENTITY)["id"]
    assert row["host"] == socket.gethostname()
    assert row["program"] and row["program"].endswith(res.script.name), row["program"]
    assert row["created_at"] and row["updated_at"] and row["heartbeat_at"]
    assert row["display_name"] == res.result["name"]

    # History: exactly the 100 logged rows, in order, once each.
    rows = store.history_rows(row["id"])
    assert [r["line"] for r in rows] == list(range(100))
    assert [r["step"] for r in rows] == list(range(100))
    history = store.history(row["id"])
    assert [h["_step"] for h in history] == list(range(100))
    for i, h in enumerate(history):
        assert set(h) == {"_step", "_timestamp", "_runtime", "loss", "acc"}, h
        assert h["loss"] == loss(i)
        assert h["acc"] == i / 100
    timestamps = [h["_timestamp"] for h in history]
    assert timestamps == sorted(timestamps)
    assert row["history_lines"] == 100

    # Summary: the last values.
    summary = row["summary"]
    assert summary["loss"] == loss(99)
    assert summary["acc"] == 0.99
    assert summary["_step"] == 99
    assert "_runtime" in summary and "_timestamp" in summary

    # Config: W&B's shape, with the client's telemetry in _wandb.value.t (resume needs it).
    config = row["config"]
    assert set(config) == {"lr", "_wandb"}
    assert config["lr"] == {"value": 0.01}
    assert isinstance(config["_wandb"]["value"]["t"], dict)

    # The standard run files were uploaded.
    files = store.files(row["id"])
    missing = STANDARD_FILES - set(files)
    assert not missing, f"run files missing: {missing}; have {sorted(files)}"
    for name in STANDARD_FILES:
        assert files[name]["uploaded"] == 1, files[name]
        assert files[name]["size"] > 0, files[name]

    # Nothing was printed, so no console lines; the counters match the tables.
    assert store.console(row["id"]) == []
    assert row["log_lines"] == 0
    assert row["events_lines"] == len(store.events(row["id"]))


def test_uncaught_exception_marks_run_failed(client, store):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        report(id=run.id)
        run.log({"x": 1})
        raise ValueError("boom from the test script")
        """,
        project,
        expect_rc=1,
    )
    assert "boom from the test script" in res.stderr
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None
    assert row["state"] == "failed"
    assert row["exitcode"] == 1
    assert [(h["_step"], h["x"]) for h in store.history(row["id"])] == [(0, 1)]


def test_console_output(client, store):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        report(id=run.id)
        print("hello from stdout", flush=True)
        time.sleep(0.2)
        print("an error line", file=sys.stderr, flush=True)
        time.sleep(0.2)
        # A progress line rewritten in place with \\r; sent several times at one offset.
        for i in range(1, 6):
            sys.stdout.write(f"\\rprogress {i}/5")
            sys.stdout.flush()
            time.sleep(0.6)
        sys.stdout.write("\\n")
        print("after progress", flush=True)
        run.finish()
        """,
        project,
    )
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None
    console = store.console(row["id"])
    parsed = [parse_console_line(line) for line in console]
    assert [(stream, text) for stream, _, text in parsed] == [
        ("stdout", "hello from stdout"),
        ("stderr", "an error line"),
        ("stdout", "progress 5/5"),
        ("stdout", "after progress"),
    ], console
    assert [r["line"] for r in store.console_rows(row["id"])] == list(range(len(console)))
    assert row["log_lines"] == len(console)
    # The raw console text is also a run file.
    files = store.files(row["id"])
    assert "output.log" in files and files["output.log"]["uploaded"] == 1


def test_system_metrics(client, store):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT, settings=wandb.Settings(x_stats_sampling_interval=1))
        report(id=run.id)
        time.sleep(3.5)
        run.finish()
        """,
        project,
    )
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None
    rows = store.event_rows(row["id"])
    events = store.events(row["id"])
    assert len(events) >= 2, events
    assert [r["line"] for r in rows] == list(range(len(rows)))
    assert row["events_lines"] == len(events)
    for e in events:
        assert "_timestamp" in e and "_runtime" in e, e
        assert any(k.startswith("system.") for k in e), e
    assert any("system.cpu" in e for e in events), events
    assert any("system.memory_percent" in e for e in events), events
    # System metrics are not history.
    assert store.history(row["id"]) == []


def test_config_and_summary_updates(client, store):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT, config={"lr": 0.01, "batch": 32})
        report(id=run.id)
        run.config.update({"epochs": 5, "lr": 0.02}, allow_val_change=True)
        run.config["optimizer"] = {"name": "adam", "betas": [0.9, 0.999]}
        run.log({"loss": 0.5})
        run.log({"loss": 0.25})
        run.summary["best_acc"] = 0.97
        run.summary.update({"note": "hi", "nested": {"a": 1}})
        run.finish()
        """,
        project,
    )
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None
    config = {k: v for k, v in row["config"].items() if k != "_wandb"}
    assert config == {
        "lr": {"value": 0.02},
        "batch": {"value": 32},
        "epochs": {"value": 5},
        "optimizer": {"value": {"name": "adam", "betas": [0.9, 0.999]}},
    }
    assert "t" in row["config"]["_wandb"]["value"]
    summary = row["summary"]
    assert summary["loss"] == 0.25
    assert summary["best_acc"] == 0.97
    assert summary["note"] == "hi"
    assert summary["nested"] == {"a": 1}
    assert summary["_step"] == 1
    # Summary updates are not history rows.
    assert [
        (h["_step"], set(h) - {"_step", "_timestamp", "_runtime"}) for h in store.history(row["id"])
    ] == [
        (0, {"loss"}),
        (1, {"loss"}),
    ]


def test_run_metadata_and_rename(client, store):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(
            project=PROJECT,
            name="first-name",
            tags=["a", "b"],
            notes="some notes",
            group="grp-1",
            job_type="train",
        )
        report(id=run.id, initial_name=run.name)
        run.log({"x": 1})
        time.sleep(1)
        run.name = "renamed-run"
        run.tags = list(run.tags) + ["c"]
        run.notes = "updated notes"
        run.log({"x": 2})
        run.finish()
        """,
        project,
    )
    assert res.result["initial_name"] == "first-name"
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None
    assert row["display_name"] == "renamed-run"
    assert row["tags"] == ["a", "b", "c"]
    assert row["notes"] == "updated notes"
    assert row["group_name"] == "grp-1"
    assert row["job_type"] == "train"
    assert row["state"] == "finished"


def test_explicit_entity_and_project_created(client, store):
    # entity="admin" spelled out, and a project that does not exist yet.
    project = client.project()
    assert store.project(ENTITY, project) is None
    res = client.run(
        """
        run = wandb.init(entity="admin", project=PROJECT, id=ARGS["id"])
        run.log({"x": 1})
        report(id=run.id, entity=run.entity)
        run.finish()
        """,
        project,
        args={"id": "explicit01"},
    )
    assert res.result == {"id": "explicit01", "entity": ENTITY}
    assert store.project(ENTITY, project) is not None
    row = store.run(ENTITY, project, "explicit01")
    assert row is not None and row["state"] == "finished"


def test_save_file_now(client, store):
    project = client.project()
    payload = b"weights\x00\x01\x02" + bytes(range(256)) * 40
    res = client.run(
        """
        data = bytes.fromhex(ARGS["payload"])
        with open("model.bin", "wb") as f:
            f.write(data)
        os.makedirs("sub", exist_ok=True)
        with open("sub/notes.txt", "w") as f:
            f.write("nested file\\n")
        run = wandb.init(project=PROJECT)
        report(id=run.id)
        run.save(os.path.abspath("model.bin"), base_path=os.getcwd(), policy="now")
        run.save("sub/notes.txt", base_path=".", policy="now")
        run.log({"x": 1})
        run.finish()
        """,
        project,
        args={"payload": payload.hex()},
    )
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None
    files = store.files(row["id"])
    for name, content in (("model.bin", payload), ("sub/notes.txt", b"nested file\n")):
        assert name in files, f"{name} not among the run files {sorted(files)}"
        f = files[name]
        assert f["uploaded"] == 1, f
        assert f["size"] == len(content), f
        if f["md5"] is not None:
            assert f["md5"] in md5_forms(content), f


def test_alert(client, store):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        report(id=run.id)
        run.alert(title="Low accuracy", text="acc 0.1 is below 0.5", level=wandb.AlertLevel.WARN,
                  wait_duration=120)
        run.alert(title="Second", text="plain info")
        run.finish()
        """,
        project,
    )
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None
    alerts = [(a["title"], a["body"], a["severity"], a["wait_ms"]) for a in store.alerts(row["id"])]
    assert alerts == [
        ("Low accuracy", "acc 0.1 is below 0.5", "WARN", 120_000),
        ("Second", "plain info", "INFO", 60_000),
    ]


def test_two_runs_in_one_process(client, store):
    project = client.project()
    res = client.run(
        """
        ids = []
        for k in range(2):
            run = wandb.init(project=PROJECT, config={"k": k})
            run.log({"k": k})
            ids.append(run.id)
            run.finish()
        report(ids=ids)
        """,
        project,
    )
    ids = res.result["ids"]
    assert len(set(ids)) == 2
    runs = store.runs(ENTITY, project)
    assert sorted(r["name"] for r in runs) == sorted(ids)
    for k, run_id in enumerate(ids):
        row = store.run(ENTITY, project, run_id)
        assert row["config"]["k"] == {"value": k}
        assert [h["k"] for h in store.history(row["id"])] == [k]
        assert row["state"] == "finished"


@pytest.mark.parametrize("steps", [[0, 5, 10]])
def test_explicit_steps(client, store, steps):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        report(id=run.id)
        for s in ARGS["steps"]:
            run.log({"a": s}, step=s)
            run.log({"b": s * 2}, step=s)  # merged into the same row
        run.finish()
        """,
        project,
        args={"steps": steps},
    )
    row = store.run(ENTITY, project, res.result["id"])
    history = store.history(row["id"])
    assert [(h["_step"], h["a"], h["b"]) for h in history] == [(s, s, 2 * s) for s in steps]
    assert [r["step"] for r in store.history_rows(row["id"])] == steps


def test_many_steps(client, store):
    # Thousands of rows arrive in many filestream batches: none lost, none duplicated.
    project = client.project()
    n = 5000
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        report(id=run.id)
        for i in range(ARGS["n"]):
            run.log({"i": i, "sq": i * i, "tag": f"row-{i}"})
        run.finish()
        """,
        project,
        args={"n": n},
    )
    row = store.run(ENTITY, project, res.result["id"])
    rows = store.history_rows(row["id"])
    assert [r["line"] for r in rows] == list(range(n))
    assert [r["step"] for r in rows] == list(range(n))
    history = store.history(row["id"])
    assert [(h["_step"], h["i"], h["sq"], h["tag"]) for h in history] == [
        (i, i, i * i, f"row-{i}") for i in range(n)
    ]
    assert row["history_lines"] == n
    assert row["summary"]["i"] == n - 1


def test_value_types(client, store):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        report(id=run.id)
        run.log({
            "nan": float("nan"),
            "inf": float("inf"),
            "ninf": float("-inf"),
            "big": 2**53 + 1,
            "neg": -7,
            "tiny": 5e-324,
            "flag": True,
            "none": None,
            "text": "ünïcødé ✓ \\"quoted\\" \\\\ back\\nslash",
            "损失": 0.5,
            "list": [1, 2.5, "x"],
            "nested": {"a": {"b": 1}},
            "key with spaces/and.dots": 3,
        })
        run.finish()
        """,
        project,
    )
    import math

    row = store.run(ENTITY, project, res.result["id"])
    (h,) = store.history(row["id"])
    assert math.isnan(h["nan"])
    assert h["inf"] == math.inf and h["ninf"] == -math.inf
    assert h["big"] == 2**53 + 1
    assert h["neg"] == -7
    assert h["tiny"] == 5e-324
    assert h["flag"] is True
    assert h["text"] == 'ünïcødé ✓ "quoted" \\ back\nslash'
    assert h["损失"] == 0.5
    assert h["list"] == [1, 2.5, "x"]
    assert h["nested"] == {"a": {"b": 1}}
    assert h["key with spaces/and.dots"] == 3
    assert row["summary"]["text"] == h["text"]
    assert math.isnan(row["summary"]["nan"])
