"""A second user (`cairn user add`): own entity, own runs, no writes into admin's entity."""

import hashlib

from conftest import ENTITY


def test_second_user_writes_only_to_own_entity(client, store):
    key = client.server.add_user("bob")
    assert store.user("bob") is not None
    assert store.entity("bob") is not None
    assert [k["hash"] for k in store.api_keys("bob")] == [hashlib.sha256(key.encode()).hexdigest()]
    env = client.env(api_key=key)

    # bob's key logs in and runs into bob's entity by default.
    project = client.project()
    res = client.run(
        """
        assert wandb.login(verify=True) is True
        run = wandb.init(project=PROJECT)
        run.log({"x": 1})
        report(id=run.id, entity=run.entity)
        run.finish()
        """,
        project,
        env=env,
    )
    assert res.result["entity"] == "bob"
    row = store.run("bob", project, res.result["id"])
    assert row is not None and row["state"] == "finished"
    assert row["user_id"] == store.user("bob")["id"]
    assert [h["x"] for h in store.history(row["id"])] == [1]

    # bob may not create a run in admin's entity.
    other = client.project()
    res = client.run(
        """
        try:
            run = wandb.init(entity=ARGS["entity"], project=PROJECT, id="intruder01")
            run.log({"x": 1})
            run.finish()
            report(raised=None)
        except Exception as e:
            report(raised=type(e).__name__, message=str(e))
        """,
        other,
        args={"entity": ENTITY},
        env=env,
        expect_rc=None,
    )
    assert res.result.get("raised"), f"bob wrote into {ENTITY}'s entity: {res.result}"
    assert store.run(ENTITY, other, "intruder01") is None
    assert store.runs_named("intruder01") == []
