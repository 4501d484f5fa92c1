"""Login: the server's admin account, `wandb login --verify`, `wandb.login(verify=True)`."""

import hashlib

from conftest import ENTITY, make_api_key


def test_admin_account_created_on_first_start(server, store):
    # The key from CAIRN_ADMIN_API_KEY is written to <data>/admin-api-key ...
    key_file = server.data_dir / "admin-api-key"
    assert key_file.exists(), f"{key_file} was not written"
    assert key_file.read_text().strip() == server.api_key

    # ... and the database has the admin user, its entity and its key's hash, not the key.
    user = store.user(ENTITY)
    assert user is not None, "no user named admin"
    assert user["admin"] == 1
    entity = store.entity(ENTITY)
    assert entity is not None, "no entity named admin"
    assert entity["is_team"] == 0
    members = store.query(
        "SELECT * FROM members WHERE entity_id = ? AND user_id = ?", (entity["id"], user["id"])
    )
    assert len(members) == 1, "admin is not a member of the admin entity"
    keys = store.api_keys(ENTITY)
    assert [k["hash"] for k in keys] == [hashlib.sha256(server.api_key.encode()).hexdigest()]
    for table in ("users", "api_keys", "entities"):
        for row in store.query(f"SELECT * FROM {table}"):
            assert server.api_key not in repr(row), f"the plain API key is stored in {table}"


def test_cli_login_verify(client):
    env = client.env()
    del env["WANDB_API_KEY"]
    del env["WANDB_BASE_URL"]
    res = client.cli(
        "login", "--host", client.server.base_url, "--verify", client.server.api_key, env=env
    )
    assert res.returncode == 0, f"wandb login failed\nstdout: {res.stdout}\nstderr: {res.stderr}"
    netrc = (client.home / ".netrc").read_text()
    assert client.server.api_key in netrc
    assert f"127.0.0.1:{client.server.port}" in netrc
    settings = (client.home / ".config" / "wandb" / "settings").read_text()
    assert client.server.base_url in settings

    # The stored credentials (no WANDB_API_KEY, no WANDB_BASE_URL) are enough for a run.
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        run.log({"a": 1})
        report(id=run.id, entity=run.entity)
        run.finish()
        """,
        project,
        env=env,
    )
    assert res.result["entity"] == ENTITY
    row = client.server.store.run(ENTITY, project, res.result["id"])
    assert row is not None and row["state"] == "finished"


def test_cli_login_wrong_key_fails(client):
    env = client.env()
    del env["WANDB_API_KEY"]
    del env["WANDB_BASE_URL"]
    res = client.cli("login", "--host", client.server.base_url, "--verify", make_api_key(), env=env)
    out = res.stdout + res.stderr
    assert res.returncode != 0, f"wandb login with an unknown key succeeded:\n{out}"
    assert any(w in out.lower() for w in ("invalid", "auth", "401", "credentials")), out


def test_python_login_verify(client):
    res = client.run(
        """
        ok = wandb.login(key=os.environ["WANDB_API_KEY"], verify=True)
        report(ok=ok)
        """,
        client.project(),
    )
    assert res.result == {"ok": True}


def test_python_login_wrong_key_raises(client):
    res = client.run(
        """
        try:
            wandb.login(key=ARGS["key"], verify=True, relogin=True)
            report(raised=None)
        except Exception as e:
            report(raised=type(e).__name__, message=str(e))
        """,
        client.project(),
        args={"key": make_api_key()},
        env=client.env(api_key=make_api_key()),
    )
    assert res.result.get("raised"), (
        f"wandb.login(verify=True) accepted an unknown key: {res.result}"
    )
    message = res.result["message"].lower()
    assert any(w in message for w in ("invalid", "auth", "401", "credentials")), res.result


def test_init_with_wrong_key_fails(client):
    project = client.project()
    res = client.run(
        """
        try:
            run = wandb.init(project=PROJECT)
            report(raised=None, id=run.id)
            run.finish()
        except Exception as e:
            report(raised=type(e).__name__, message=str(e))
        """,
        project,
        env=client.env(api_key=make_api_key()),
        expect_rc=None,
    )
    assert res.result.get("raised"), f"wandb.init with an unknown key succeeded: {res.result}"
    assert client.server.store.project(ENTITY, project) is None
