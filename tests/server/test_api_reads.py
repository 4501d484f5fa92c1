"""`wandb.Api()` reads (and a few API writes) against runs logged through the real client.

Contract: /work/shared/protocol/wandb-api-read.md. Nothing here is skipped: a read the
server does not support yet fails.
"""

import pytest

from conftest import ENTITY, Client, md5_forms

SAVED = b"saved file contents\n" * 50

SEED = """
run = wandb.init(project=PROJECT, id="apiread001", config={"lr": 0.01, "batch": 32},
                 tags=["baseline"], notes="the first run")
for i in range(100):
    row = {"loss": 1.0 / (i + 1), "acc": i / 100}
    if i % 10 == 0:
        row["val_loss"] = 2.0 / (i + 1)
    run.log(row)
for k in range(3):
    print(f"console line {k}", flush=True)
with open("saved.txt", "wb") as f:
    f.write(bytes.fromhex(ARGS["saved"]))
run.save(os.path.abspath("saved.txt"), base_path=os.getcwd(), policy="now")
run.summary["best"] = 42
run.finish()
time.sleep(1.1)  # distinct created_at seconds, for the order tests

run = wandb.init(project=PROJECT, id="apiread002", config={"lr": 0.1}, tags=["other"])
for i in range(5):
    run.log({"loss": float(i)})
run.finish()
"""


@pytest.fixture(scope="module")
def seeded(server, tmp_path_factory):
    """Two finished runs in one project: apiread001 (100 steps, a saved file) and apiread002."""
    client = Client(server, tmp_path_factory.mktemp("api-seed"), "api-reads")
    project = client.project("api-reads")
    client.run(SEED, project, args={"saved": SAVED.hex()})
    return project


def api_script(client, project, body, **args):
    """Run `body` with `api = wandb.Api()` and PATH = entity/project."""
    source = (
        "api = wandb.Api(timeout=60)\n"
        f"PATH = {ENTITY + '/'!r} + PROJECT\n"
        "def jsonable(v):\n"
        "    as_dict = lambda o: dict(o) if hasattr(o, 'keys') else str(o)\n"
        "    return json.loads(json.dumps(v, default=as_dict))\n" + body
    )
    return client.run(source, project, args=args).result


def test_api_runs_list(client, seeded):
    r = api_script(
        client,
        seeded,
        """
runs = api.runs(PATH)
report(
    ids=[x.id for x in runs],
    count=len(runs),
    states=[x.state for x in runs],
    tags=[list(x.tags) for x in runs],
    names=[x.name for x in runs],
    filtered=[x.id for x in api.runs(PATH, filters={"config.lr": 0.1})],
    by_tag=[x.id for x in api.runs(PATH, filters={"tags": "baseline"})],
    newest_first=[x.id for x in api.runs(PATH, order="-created_at")],
    paged=[x.id for x in api.runs(PATH, per_page=1)],
)
""",
    )
    assert sorted(r["ids"]) == ["apiread001", "apiread002"]
    assert r["count"] == 2
    assert r["states"] == ["finished", "finished"]
    assert sorted(map(tuple, r["tags"])) == [("baseline",), ("other",)]
    assert r["filtered"] == ["apiread002"]
    assert r["by_tag"] == ["apiread001"]
    assert r["newest_first"] == ["apiread002", "apiread001"]
    assert r["paged"] == ["apiread001", "apiread002"]


def test_api_run_config_and_summary(client, seeded, store):
    r = api_script(
        client,
        seeded,
        """
run = api.run(PATH + "/apiread001")
report(
    id=run.id,
    state=run.state,
    config=jsonable(run.config),
    summary=jsonable(run.summary_metrics),
    best=run.summary["best"],
    loss=run.summary["loss"],
    tags=list(run.tags),
    notes=run.notes,
    display_name=run.display_name,
    last_step=run.lastHistoryStep,
    history_line_count=run.history_line_count,
    created_at=str(run.created_at),
)
""",
    )
    row = store.run(ENTITY, seeded, "apiread001")
    assert r["id"] == "apiread001"
    assert r["state"] == "finished"
    assert r["config"] == {"lr": 0.01, "batch": 32}
    assert r["best"] == 42
    assert r["loss"] == 0.01
    assert r["summary"] == row["summary"]
    assert r["tags"] == ["baseline"]
    assert r["notes"] == "the first run"
    assert r["display_name"] == row["display_name"]
    assert r["last_step"] == 99
    assert r["history_line_count"] == 100
    assert r["created_at"] and r["created_at"] != "None"


def test_api_missing_run_raises(client, seeded):
    r = api_script(
        client,
        seeded,
        """
try:
    api.run(PATH + "/nosuchrun1").state
    report(raised=None)
except Exception as e:
    report(raised=type(e).__name__, message=str(e))
""",
    )
    assert r["raised"], r
    assert "could not find run" in r["message"].lower(), r


def test_api_history(client, seeded, store):
    r = api_script(
        client,
        seeded,
        """
run = api.run(PATH + "/apiread001")
report(
    full=run.history(pandas=False),
    sampled=run.history(samples=10, pandas=False),
    val=run.history(keys=["val_loss"], pandas=False),
    system=run.history(stream="system", pandas=False),
)
""",
    )
    stored = store.history(store.run(ENTITY, seeded, "apiread001")["id"])
    assert r["full"] == stored
    assert 2 <= len(r["sampled"]) <= 10
    assert all(row in stored for row in r["sampled"])
    assert [(x["_step"], x["val_loss"]) for x in r["val"]] == [
        (i, 2.0 / (i + 1)) for i in range(0, 100, 10)
    ]
    assert all(set(x) == {"_step", "val_loss"} for x in r["val"]), r["val"]
    events = store.events(store.run(ENTITY, seeded, "apiread001")["id"])
    assert len(r["system"]) == len(events)


def test_api_scan_history(client, seeded, store):
    r = api_script(
        client,
        seeded,
        """
run = api.run(PATH + "/apiread001")
report(
    full=list(run.scan_history()),
    small_pages=list(run.scan_history(page_size=7)),
    keyed=list(run.scan_history(keys=["loss"], min_step=10, max_step=20)),
    val=list(run.scan_history(keys=["val_loss"])),
)
""",
    )
    stored = store.history(store.run(ENTITY, seeded, "apiread001")["id"])
    assert r["full"] == stored
    assert r["small_pages"] == stored
    assert [(x["_step"], x["loss"]) for x in r["keyed"]] == [
        (i, 1.0 / (i + 1)) for i in range(10, 20)
    ]
    assert all(set(x) <= {"_step", "loss"} for x in r["keyed"]), r["keyed"]
    assert [x["val_loss"] for x in r["val"]] == [2.0 / (i + 1) for i in range(0, 100, 10)]


def test_api_scan_history_of_a_run_without_history(client):
    """A run that logged nothing scans as empty (a null `lastStep` made the SDK raise)."""
    project = client.project()
    client.run("wandb.init(project=PROJECT, id='nohistory1').finish()", project)
    r = api_script(
        client,
        project,
        """
run = api.run(PATH + "/nohistory1")
report(last=run.lastHistoryStep, scan=list(run.scan_history()),
       keyed=list(run.scan_history(keys=["loss"])), history=len(run.history(pandas=False)))
""",
    )
    assert r == {"last": -1, "scan": [], "keyed": [], "history": 0}


def test_api_files_and_download(client, seeded, store, tmp_path):
    r = api_script(
        client,
        seeded,
        """
run = api.run(PATH + "/apiread001")
files = {f.name: {"size": f.size, "md5": f.md5} for f in run.files()}
f = run.file("saved.txt")
f.download(root=ARGS["root"], replace=True)
meta = run.metadata
report(
    files=files,
    json_files=sorted(x.name for x in run.files(pattern="%.json")),
    log=run.file("output.log").download(root=ARGS["root"], replace=True).read(),
    metadata_program=(meta or {}).get("program"),
)
""",
        root=str(tmp_path / "dl"),
    )
    files = r["files"]
    for name in (
        "saved.txt",
        "output.log",
        "wandb-metadata.json",
        "config.yaml",
        "wandb-summary.json",
    ):
        assert name in files, f"{name} not listed: {sorted(files)}"
    assert files["saved.txt"]["size"] == len(SAVED)
    assert files["saved.txt"]["md5"] in md5_forms(SAVED)
    assert (tmp_path / "dl" / "saved.txt").read_bytes() == SAVED
    assert "wandb-summary.json" in r["json_files"] and "saved.txt" not in r["json_files"]
    assert "console line 2" in r["log"]
    assert r["metadata_program"], "run.metadata could not be downloaded"
    stored = store.files(store.run(ENTITY, seeded, "apiread001")["id"])
    assert set(files) == {n for n, f in stored.items() if f["uploaded"] == 1}


def test_api_summary_and_config_update(client, store):
    project = client.project()
    client.run(
        """
        run = wandb.init(project=PROJECT, id="apiupd0001", config={"lr": 0.01})
        run.log({"loss": 0.5})
        run.finish()
        """,
        project,
    )
    api_script(
        client,
        project,
        """
run = api.run(PATH + "/apiupd0001")
run.summary["extra"] = 7
run.summary.update()
run = api.run(PATH + "/apiupd0001")
run.config["new_param"] = "x"
run.tags = ["t1", "t2"]
run.notes = "edited"
run.name = "edited-name"
run.update()
report(done=True)
""",
    )
    row = store.run(ENTITY, project, "apiupd0001")
    assert row["summary"]["extra"] == 7
    assert row["summary"]["loss"] == 0.5
    assert row["config"]["new_param"]["value"] == "x"
    assert row["config"]["lr"]["value"] == 0.01
    assert "t" in row["config"]["_wandb"]["value"]
    assert row["tags"] == ["t1", "t2"]
    assert row["notes"] == "edited"
    assert row["display_name"] == "edited-name"
    # Still one run: the API's UpsertBucket (by storage id) must not create another.
    assert [r["name"] for r in store.runs(ENTITY, project)] == ["apiupd0001"]


def test_api_upload_file(client, store, tmp_path):
    project = client.project()
    client.run(
        """
        run = wandb.init(project=PROJECT, id="apiup00001")
        run.log({"x": 1})
        run.finish()
        """,
        project,
    )
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "notes.txt").write_bytes(SAVED)
    r = api_script(
        client,
        project,
        """
run = api.run(PATH + "/apiup00001")
f = run.upload_file(os.path.join(ARGS["root"], "sub", "notes.txt"), root=ARGS["root"])
fresh = wandb.Api(timeout=60).run(PATH + "/apiup00001")
got = fresh.file("sub/notes.txt").download(root=ARGS["back"], replace=True).read()
try:
    run.upload_file(os.path.join(ARGS["root"], "missing.txt"), root=ARGS["root"])
    missing = None
except Exception as e:
    missing = f"{type(e).__name__}: {e}"
report(name=f.name, size=f.size, back=got, missing=missing)
""",
        root=str(root),
        back=str(tmp_path / "back"),
    )
    assert r["name"] == "sub/notes.txt" and r["size"] == len(SAVED)
    assert r["back"] == SAVED.decode()
    assert r["missing"], "uploading a missing file did not fail"
    stored = store.files(store.run(ENTITY, project, "apiup00001")["id"])
    assert stored["sub/notes.txt"]["uploaded"] == 1
    assert stored["sub/notes.txt"]["md5"] in md5_forms(SAVED)


def test_api_download_history_exports(client, seeded, tmp_path):
    """cairn's server exports no parquet: a run with history is incomplete (every row live),
    as W&B's core and cairn's both report it."""
    project = client.project()
    client.run('run = wandb.init(project=PROJECT, id="apinohist1")\nrun.finish()\n', project)
    r = api_script(
        client,
        seeded,
        """
from wandb.apis.public.runhistory import IncompleteRunHistoryError
run = api.run(PATH + "/apiread001")
try:
    run.download_history_exports(ARGS["dir"])
    complete = "no error"
except IncompleteRunHistoryError:
    complete = "incomplete"
partial = run.download_history_exports(ARGS["dir"], require_complete_history=False)
empty = api.run(ARGS["empty"]).download_history_exports(ARGS["dir"])
report(complete=complete,
       partial=[[str(p) for p in partial.paths], partial.contains_live_data, partial.errors],
       empty=[[str(p) for p in empty.paths], empty.contains_live_data, empty.errors])
""",
        dir=str(tmp_path / "exports"),
        empty=f"{ENTITY}/{project}/apinohist1",
    )
    assert r["complete"] == "incomplete"
    assert r["partial"] == [[], True, {}]
    assert r["empty"] == [[], False, {}]


def test_api_delete_run(client, store):
    project = client.project()
    client.run(
        """
        for rid in ("apidel0001", "apikeep001"):
            run = wandb.init(project=PROJECT, id=rid)
            run.log({"x": 1})
            run.finish()
        """,
        project,
    )
    assert store.run(ENTITY, project, "apidel0001") is not None
    r = api_script(
        client,
        project,
        """
api.run(PATH + "/apidel0001").delete()
fresh = wandb.Api(timeout=60)
try:
    fresh.run(PATH + "/apidel0001").state
    still_there = True
except Exception:
    still_there = False
report(ids=[x.id for x in fresh.runs(PATH)], still_there=still_there)
""",
    )
    assert r["ids"] == ["apikeep001"]
    assert r["still_there"] is False
    assert store.run(ENTITY, project, "apidel0001") is None
    assert store.run(ENTITY, project, "apikeep001") is not None


def test_api_projects(client, seeded):
    r = api_script(
        client,
        seeded,
        """
projects = list(api.projects(PATH.split("/")[0], per_page=1))
p = api.project(PROJECT, entity=PATH.split("/")[0])
report(names=[x.name for x in projects], id=p.id, created=str(p.created_at))
""",
    )
    assert seeded in r["names"]
    assert len(r["names"]) == len(set(r["names"])), "paging repeated a project"
    assert r["id"] and r["created"] != "None"


def test_api_filters_and_order(client, seeded):
    r = api_script(
        client,
        seeded,
        """
def ids(**kw):
    return [x.id for x in api.runs(PATH, **kw)]
report(
    gt=ids(filters={"summary_metrics.loss": {"$gt": 1}}),
    regex=ids(filters={"name": {"$regex": "1$"}}),
    both=ids(filters={"$and": [{"config.lr.value": 0.01}, {"state": "finished"}]}),
    either=ids(filters={"$or": [{"tags": {"$in": ["other"]}}, {"config.batch": 32}]}),
    nin=ids(filters={"tags": {"$nin": ["baseline"]}}),
    exists=ids(filters={"summary_metrics.best": {"$exists": True}}),
    by_loss=ids(order="+summary_metrics.loss"),
    by_lr_desc=ids(order="-config.lr.value"),
    count=len(api.runs(PATH, filters={"config.lr": 0.1})),
)
try:
    list(api.runs(PATH, filters={"config.lr": {"$bogus": 1}}))
    report(bogus=None)
except Exception as e:
    report(bogus=str(e))
""",
    )
    assert r["gt"] == ["apiread002"]  # its last loss is 4.0
    assert r["regex"] == ["apiread001"]
    assert r["both"] == ["apiread001"]
    assert r["either"] == ["apiread001", "apiread002"]
    assert r["nin"] == ["apiread002"]
    assert r["exists"] == ["apiread001"]
    assert r["by_loss"] == ["apiread001", "apiread002"]
    assert r["by_lr_desc"] == ["apiread002", "apiread001"]
    assert r["count"] == 1
    assert r["bogus"] and "$bogus" in r["bogus"], r


def test_api_console_logs(client, seeded):
    r = api_script(
        client,
        seeded,
        """
run = api.run(PATH + "/apiread001")
lines = [(l.content, l.level, l.timestamp is not None) for l in run.console_logs(per_page=2)]
tail = [l.content for l in run.console_logs(last=1)]
report(lines=lines, tail=tail)
""",
    )
    texts = [text for text, _, _ in r["lines"]]
    assert all(has_time for _, _, has_time in r["lines"]), r["lines"]
    assert [t for t in texts if t.startswith("console line")] == [
        "console line 0",
        "console line 1",
        "console line 2",
    ]
    assert len(r["tail"]) == 1
