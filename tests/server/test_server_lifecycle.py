"""The server process itself: restarts keep everything, SIGTERM stops it cleanly, and a
first start without CAIRN_ADMIN_API_KEY makes a key."""

import re
import time

from conftest import ENTITY, Client, free_port, make_server


def test_restart_keeps_runs_and_admin(server, tmp_path):
    # A server of its own (same backend as `server`), so it can be stopped and started.
    srv = make_server(server.backend, tmp_path / "srv")
    try:
        srv.start()
        client = Client(srv, tmp_path / "client", "restart")
        project = client.project()
        client.run(
            """
            run = wandb.init(project=PROJECT, id="restart001", config={"a": 1})
            for i in range(3):
                run.log({"v": i})
            run.finish()
            """,
            project,
        )
        assert srv.stop() == 0, "the server did not exit with 0 on SIGTERM"

        srv.port = free_port()
        srv.start()
        store = srv.store
        # No second admin, no new key: the first start's account is kept.
        assert (srv.data_dir / "admin-api-key").read_text().strip() == srv.api_key
        assert len(store.query("SELECT * FROM users WHERE name = ?", (ENTITY,))) == 1
        assert len(store.api_keys(ENTITY)) == 1
        row = store.run(ENTITY, project, "restart001")
        assert row is not None and row["state"] == "finished"
        assert [h["v"] for h in store.history(row["id"])] == [0, 1, 2]

        # The run resumes on the restarted server.
        res = client.run(
            """
            run = wandb.init(project=PROJECT, id="restart001", resume="must")
            report(start=run.starting_step)
            run.log({"v": 3})
            run.finish()
            """,
            project,
        )
        assert res.result["start"] == 3
        row = store.run(ENTITY, project, "restart001")
        assert [(h["_step"], h["v"]) for h in store.history(row["id"])] == [
            (i, i) for i in range(4)
        ]
        assert row["config"]["a"] == {"value": 1}
    finally:
        srv.cleanup()


def test_generated_admin_key(server, tmp_path):
    srv = make_server(server.backend, tmp_path / "srv", api_key=None)
    try:
        srv.start()
        key = srv.api_key
        assert key, "no admin-api-key file after the first start without CAIRN_ADMIN_API_KEY"
        # The client's own format check: a prefix, a dash, 40+ of [A-Za-z0-9_-].
        assert re.fullmatch(r"[A-Za-z0-9]+-[A-Za-z0-9_-]{40,}", key), key
        client = Client(srv, tmp_path / "client", "generated-key")
        res = client.run("report(ok=wandb.login(verify=True))\n", client.project())
        assert res.result == {"ok": True}
    finally:
        srv.cleanup()


def test_sigterm_during_a_run_loses_nothing(server, tmp_path):
    """The server is stopped with SIGTERM while a real client is logging, and started
    again on the same port: the client's retries land every row exactly once."""
    srv = make_server(server.backend, tmp_path / "srv")
    try:
        srv.start()
        client = Client(srv, tmp_path / "client", "sigterm")
        project = client.project()
        env = client.env(
            WANDB__FILE_STREAM_RETRY_MAX="60",
            WANDB__FILE_STREAM_RETRY_WAIT_MAX_SECONDS="1",
            WANDB__GRAPHQL_RETRY_MAX="60",
            WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS="1",
        )
        proc, script, result = client.popen(
            """
            run = wandb.init(project=PROJECT, id="sigterm001")
            for i in range(600):
                run.log({"v": i})
                time.sleep(0.01)
            print("logged everything", flush=True)
            run.finish()
            """,
            project,
            env=env,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            row = srv.store.run(ENTITY, project, "sigterm001")
            if row is not None and row["history_lines"] > 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the run never reached the server")
        assert srv.stop() == 0, "the server did not exit with 0 on SIGTERM"
        time.sleep(2)
        srv.start()
        res = client.finish(proc, script, result, 180, client.wandb_dir)
        assert res.returncode == 0, res.describe()

        row = srv.store.run(ENTITY, project, "sigterm001")
        assert row["state"] == "finished", row
        history = srv.store.history(row["id"])
        assert [h["v"] for h in history] == list(range(600))
        assert [h["_step"] for h in history] == list(range(600))
        assert any(line.endswith(" logged everything") for line in srv.store.console(row["id"]))
    finally:
        srv.cleanup()
