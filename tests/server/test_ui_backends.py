"""The web UI's JSON API on both backends (SQLite and PostgreSQL): the statements that only
the UI runs — sessions, passwords, joined history ranges for charts, console search with
LIKE escapes — and who may see what. The pages themselves are tested in a browser by
tests/ui, on SQLite."""

import requests

from conftest import ENTITY


def signed_in(server, **login) -> tuple[requests.Session, str]:
    s = requests.Session()
    r = s.post(f"{server.base_url}/api/login", json=login, timeout=30)
    assert r.status_code == 200, r.text
    return s, r.json()["csrf"]


def test_ui_api_reads_a_wandb_run(client, server):
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT, config={"lr": 0.5, "opt": {"name": "sgd"}})
        for i in range(3000):
            run.log({"train/loss": 1.0 / (i + 1), "spike": 99.0 if i == 2222 else 0.0})
        print("progress 100% done_x")
        print("progress 1000 done")
        report(id=run.id)
        run.finish()
        """,
        project,
    )
    run_id = res.result["id"]
    base = f"{server.base_url}/api/projects/{ENTITY}/{project}"

    # A password set from the command line signs in; a wrong one does not.
    done = server.cli("user", "passwd", ENTITY, stdin="correct horse battery\n")
    assert done.returncode == 0, done.stderr
    bad = requests.post(
        f"{server.base_url}/api/login", json={"username": ENTITY, "password": "nope"}, timeout=30
    )
    assert bad.status_code == 401 and "error" in bad.json()
    s, csrf = signed_in(server, username=ENTITY, password="correct horse battery")

    runs = s.get(f"{base}/runs", timeout=30).json()["runs"]
    assert [r["name"] for r in runs] == [run_id]
    assert runs[0]["config"] == {"lr": 0.5, "opt.name": "sgd"}
    assert runs[0]["summary"]["train/loss"] == 1.0 / 3000

    detail = s.get(f"{base}/runs/{run_id}", timeout=30).json()
    assert detail["metrics"] == ["spike", "train/loss"]
    assert detail["state"] == "finished"
    assert "wandb-metadata.json" in {f["name"] for f in detail["files"]}

    # Charts read the history as joined line ranges: exact counts, the spike kept.
    series = s.get(
        f"{base}/runs/{run_id}/series",
        params={"keys": "spike,train/loss", "points": 100},
        timeout=60,
    ).json()
    assert series["lines"] == 3000
    spike = series["series"]["spike"]
    assert spike["count"] == 3000 and len(spike["x"]) <= 400
    assert max(spike["y"]) == 99.0 and spike["x"][spike["y"].index(99.0)] == 2222
    assert series["series"]["train/loss"]["y"][-1] == 1.0 / 3000

    # Console search is a substring match: `%` and `_` are not wildcards.
    found = s.get(f"{base}/runs/{run_id}/console", params={"q": "100% DONE_"}, timeout=30)
    assert [line["text"] for line in found.json()["lines"]] == ["progress 100% done_x"]
    assert found.json()["total"] == 1

    # Writes need the CSRF token; signing out ends the session.
    assert s.post(f"{server.base_url}/api/logout", timeout=30).status_code == 403
    out = s.post(f"{server.base_url}/api/logout", headers={"X-CSRF-Token": csrf}, timeout=30)
    assert out.status_code == 200
    assert s.get(f"{base}/runs", timeout=30).status_code == 401


def test_ui_api_keeps_entities_apart(client, server):
    project = client.project()
    client.run(
        """
        run = wandb.init(project=PROJECT)
        run.log({"x": 1})
        run.finish()
        """,
        project,
    )
    key = server.add_user(f"ui-other-{project}")
    s, _ = signed_in(server, apiKey=key)
    listed = s.get(f"{server.base_url}/api/projects", timeout=30).json()["projects"]
    assert all(p["entity"] != ENTITY for p in listed), listed
    denied = s.get(f"{server.base_url}/api/projects/{ENTITY}/{project}/runs", timeout=30)
    assert denied.status_code == 403 and "error" in denied.json()
    missing = s.get(f"{server.base_url}/api/projects/nobody-here/{project}/runs", timeout=30)
    assert missing.status_code == 404
