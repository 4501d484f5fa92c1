"""cairn's own SDK and `cairn sync` with artifacts against `cairn server`: log and wait,
same content again (no new version), one file changed (only it uploaded), use + download
(byte-identical, through the cache), offline + `cairn sync` (cairn's runs and W&B's), a
2 GiB file in parts, and interop with W&B's client in both directions.

The driver is cairn's `artifacts` example (crates/cairn-sdk/examples/artifacts.rs); every
test checks the server's artifact tables (schema_v2.sql), as test_artifacts.py does for
W&B's client.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ENTITY, REPO
from test_artifacts import (
    entries,
    aliases,
    assert_blobs_stored,
    assert_entries,
    blobs,
    collection,
    committed,
    entity_id,
    file_md5,
    files_digest,
    read_tree,
    unique,
    usage,
)
from test_cairn_online import cairn_sync
from test_faults_wandb import faulty, setup  # noqa: F401 (fixtures)

ARTIFACTS_BIN = Path(
    os.environ.get("CAIRN_ARTIFACTS_BIN", REPO / "target" / "debug" / "examples" / "artifacts")
).resolve()


def artifacts(client, *args, timeout=600, **env):
    """Runs cairn's `artifacts` example; returns its JSON answer."""
    assert ARTIFACTS_BIN.exists(), (
        f"build it: cargo build -p cairn-sdk --example artifacts ({ARTIFACTS_BIN})"
    )
    full_env = client.env(**env)
    full_env.setdefault("WANDB_CACHE_DIR", str(client.tmp / "cache"))
    out = subprocess.run(
        [str(ARTIFACTS_BIN), *map(str, args)],
        cwd=client.tmp,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, f"artifacts {args}: {out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def run_pk(store, project, run_id):
    row = store.run(ENTITY, project, run_id)
    assert row is not None, f"no run {project}/{run_id}"
    return row["id"]


def test_log_dedup_version_use_download(client, store):
    project = client.project()
    src = write_tree(
        client.tmp / "src",
        {"a.txt": unique("a"), "b.bin": unique("b", 500), "sub/c.csv": unique("c")},
    )
    files = read_tree(src)

    first = artifacts(client, "log", "ds", src, "first", WANDB_PROJECT=project)
    assert first["name"] == "ds:v0" and first["version"] == 0, first
    assert first["digest"] == files_digest(files), first
    assert first["deduplicated"] is False
    coll = collection(store, project, "ds")
    assert coll is not None and coll["type_name"] == "dataset", coll
    (v0,) = committed(store, coll["id"])
    assert v0["version_index"] == 0 and v0["digest"] == files_digest(files)
    assert v0["run_id"] == run_pk(store, project, first["run"]), "lineage: the logging run"
    assert json.loads(v0["metadata"]) == {"source": str(src)}
    assert v0["size"] == sum(len(d) for d in files.values()) and v0["file_count"] == 3
    assert aliases(store, coll["id"]) == {"latest": v0["id"], "first": v0["id"]}
    assert_entries(store, v0["id"], files, "v0")
    assert_blobs_stored(store, files, "v0")
    blobs_before = len(blobs(store, entity_id(store)))

    again = artifacts(client, "log", "ds", src, WANDB_PROJECT=project)
    assert again["deduplicated"] is True and again["name"] == "ds:v0", again
    assert len(committed(store, coll["id"])) == 1
    assert len(blobs(store, entity_id(store))) == blobs_before

    (src / "a.txt").write_bytes(unique("a2"))
    files2 = read_tree(src)
    second = artifacts(client, "log", "ds", src, WANDB_PROJECT=project)
    assert second["name"] == "ds:v1" and second["digest"] == files_digest(files2), second
    v0, v1 = committed(store, coll["id"])
    assert aliases(store, coll["id"]) == {"latest": v1["id"], "first": v0["id"]}
    assert len(blobs(store, entity_id(store))) == blobs_before + 1, "only a.txt is new"
    e1 = assert_entries(store, v1["id"], files2, "v1")
    assert e1["b.bin"]["birth_artifact_id"] == v0["id"], "unchanged files were not re-uploaded"
    assert e1["a.txt"]["birth_artifact_id"] == v1["id"]

    dest = client.tmp / "dl"
    used = artifacts(client, "use", "ds:first", dest, WANDB_PROJECT=project)
    assert used["name"] == "ds:v0" and used["fetched"] == 3, used
    assert read_tree(dest) == files
    assert usage(store, run_pk(store, project, used["run"])) == {v0["id"]}

    # Into the same folder: two files are already right; a.txt comes from the server.
    used = artifacts(client, "use", f"{ENTITY}/{project}/ds:latest", dest, WANDB_PROJECT=project)
    assert used["name"] == "ds:v1", used
    assert (used["kept"], used["fetched"], used["from_cache"]) == (2, 1, 0), used
    assert read_tree(dest) == files2
    # A fresh folder with a warm cache: linked, nothing fetched.
    used = artifacts(client, "use", "ds:v1", client.tmp / "dl2", WANDB_PROJECT=project)
    assert (used["fetched"], used["from_cache"]) == (0, 3), used
    assert read_tree(client.tmp / "dl2") == files2


def test_offline_then_cairn_sync(client, store):
    project = client.project()
    src = write_tree(client.tmp / "src", {"x.txt": unique("x"), "d/y.txt": unique("y")})
    files = read_tree(src)
    logged = artifacts(client, "log", "offds", src, WANDB_PROJECT=project, WANDB_MODE="offline")
    assert logged["version"] is None and logged["name"] == "offds", logged
    assert collection(store, project, "offds") is None, "offline: nothing reaches the server"
    (run_dir,) = (client.wandb_dir / "wandb").glob(f"offline-run-*-{logged['run']}")
    out = cairn_sync(client, run_dir)
    assert out.returncode == 0, out.stderr
    coll = collection(store, project, "offds")
    (v0,) = committed(store, coll["id"])
    assert v0["digest"] == files_digest(files)
    assert v0["run_id"] == run_pk(store, project, logged["run"])
    assert_entries(store, v0["id"], files, "synced")
    # Syncing again makes no new version.
    out = cairn_sync(client, run_dir)
    assert out.returncode == 0, out.stderr
    assert len(committed(store, coll["id"])) == 1


WANDB_OFFLINE_ARTIFACT = """
run = wandb.init(project=PROJECT, mode="offline")
art = wandb.Artifact("wbds", type="model", metadata={"k": 1})
art.add_dir(ARGS["src"])
run.log_artifact(art, aliases=["best"])
report(id=run.id, run_dir=str(Path(run.dir).parent))
run.finish()
"""


def test_wandb_offline_artifact_cairn_sync(client, store):
    project = client.project()
    src = write_tree(client.tmp / "src", {"m.bin": unique("m", 200), "cfg.json": b"{}"})
    files = read_tree(src)
    res = client.run(
        "from pathlib import Path\n" + WANDB_OFFLINE_ARTIFACT, project, args={"src": str(src)}
    )
    out = cairn_sync(client, res.result["run_dir"])
    assert out.returncode == 0, out.stderr
    coll = collection(store, project, "wbds")
    assert coll is not None and coll["type_name"] == "model"
    (v0,) = committed(store, coll["id"])
    assert v0["digest"] == files_digest(files)
    assert json.loads(v0["metadata"]) == {"k": 1}
    assert set(aliases(store, coll["id"])) == {"latest", "best"}
    assert_entries(store, v0["id"], files, "W&B offline, cairn sync")


WANDB_LOGS = """
run = wandb.init(project=PROJECT)
art = wandb.Artifact("fromwb", type="dataset")
art.add_dir(ARGS["src"])
run.log_artifact(art).wait()
run.finish()
"""

WANDB_USES = """
run = wandb.init(project=PROJECT)
path = run.use_artifact(ARGS["name"]).download(root=ARGS["dest"])
report(path=path)
run.finish()
"""


def test_interop_with_wandb_client(client, store):
    """W&B's client logs, cairn's downloads; cairn's logs, W&B's downloads."""
    project = client.project()
    src = write_tree(client.tmp / "src", {"w.txt": unique("w"), "s/v.txt": unique("v")})
    client.run(WANDB_LOGS, project, args={"src": str(src)})
    used = artifacts(client, "use", "fromwb:latest", client.tmp / "dl", WANDB_PROJECT=project)
    assert used["name"] == "fromwb:v0" and read_tree(client.tmp / "dl") == read_tree(src)

    src2 = write_tree(client.tmp / "src2", {"r.txt": unique("r"), "q/p.txt": unique("p")})
    artifacts(client, "log", "fromcairn", src2, WANDB_PROJECT=project)
    dest = client.tmp / "wbdl"
    client.run(
        WANDB_USES,
        project,
        args={"name": "fromcairn:latest", "dest": str(dest)},
        env=client.env(WANDB_CACHE_DIR=str(client.tmp / "wbcache")),
    )
    assert read_tree(dest) == read_tree(src2)


def sparse_big_file(path: Path, size: int) -> str:
    """A file of `size` bytes, mostly a hole, with unique head and random tail; its MD5."""
    with open(path, "wb") as f:
        f.write(unique("head", 1000))
        f.truncate(size - (1 << 20))
        f.seek(size - (1 << 20))
        f.write(os.urandom(1 << 20))
    return file_md5(path)[0]


def test_large_file_in_parts(client, store, server):
    """A 2 GiB + 3 MiB file goes up in parts and comes back byte-identical."""
    if server.backend != "sqlite":
        pytest.skip("the multipart path does not depend on the database; once is enough")
    project = client.project()
    src = client.tmp / "big"
    src.mkdir()
    big = src / "weights.bin"
    size = (2 << 30) + (3 << 20)
    want_md5 = sparse_big_file(big, size)
    try:
        logged = artifacts(client, "log", "bigds", src, WANDB_PROJECT=project, timeout=900)
        coll = collection(store, project, "bigds")
        (v0,) = committed(store, coll["id"])
        assert v0["size"] == size, v0
        assert store.query("SELECT * FROM artifact_uploads") == [], "multipart left over"
        assert blobs(store, entity_id(store))[want_md5]["size"] == size
        dest = client.tmp / "bigdl"
        used = artifacts(client, "use", "bigds:latest", dest, WANDB_PROJECT=project, timeout=900)
        assert used["name"] == logged["name"] == "bigds:v0"
        assert file_md5(dest / "weights.bin") == (want_md5, size)
    finally:
        for path in (big, client.tmp / "bigdl" / "weights.bin"):
            path.unlink(missing_ok=True)
        cache = client.tmp / "cache"
        if cache.exists():
            subprocess.run(["rm", "-rf", str(cache)], check=False)


def test_large_upload_resumes_after_failure(setup, faulty):  # noqa: F811
    """Parts stored before an upload failed are not sent again (cairn server's
    CAIRN_RESUMABLE_MULTIPART): the first attempt gives up when a part PUT fails, the
    second sends only the parts the server lacks, and the content is whole."""
    client, proxy, env = setup
    store = faulty.server.store
    if faulty.server.backend != "sqlite":
        pytest.skip("the multipart path does not depend on the database; once is enough")
    project = client.project()
    src = client.tmp / "big"
    src.mkdir()
    big = src / "weights.bin"
    size = (2 << 30) + (3 << 20)  # 21 parts of 100 MiB
    want_md5 = sparse_big_file(big, size)
    env = dict(env, WANDB_PROJECT=project, WANDB_CACHE_DIR=str(client.tmp / "cache"))

    def run_log(**extra):
        return subprocess.run(
            [str(ARTIFACTS_BIN), "log", "resumed", str(src)],
            cwd=client.tmp, env=dict(env, **extra), capture_output=True, text=True,
            timeout=900,
        )

    def part_puts():
        return [
            e for e in proxy.events()
            if e["method"] == "PUT" and "/uploads/" in e["path"]
        ]

    try:
        proxy.set_mode("status", status=503, method="PUT", path="/uploads/", every=5)
        first = run_log(WANDB__FILE_TRANSFER_RETRY_MAX="0")
        assert first.returncode != 0, "the first attempt should fail on the refused part"
        stored_first = [e for e in part_puts() if e["action"] == "forwarded" and e["status"] == 200]
        assert stored_first, "no part reached the server on the first attempt"
        assert len(stored_first) < 21
        proxy.set_mode("pass")
        proxy.reset_stats()

        second = run_log()
        assert second.returncode == 0, second.stderr
        sent_second = part_puts()
        assert len(sent_second) == 21 - len(stored_first), (
            f"second attempt sent {len(sent_second)} parts; {len(stored_first)} were stored"
        )
        coll = collection(store, project, "resumed")
        (v0,) = committed(store, coll["id"])
        assert v0["size"] == size
        assert blobs(store, entity_id(store))[want_md5]["size"] == size
        assert store.query("SELECT * FROM artifact_uploads") == []
        assert store.query("SELECT * FROM artifact_upload_parts") == []
    finally:
        proxy.set_mode("pass")
        big.unlink(missing_ok=True)


READ_TABLE = """
api = wandb.Api()
run = api.run(f"{ARGS['entity']}/{PROJECT}/{ARGS['run']}")
(art,) = run.logged_artifacts()
report(name=art.name, type=art.type, data=art.get("tbl").data)
"""


def test_rust_table_and_image(client, store):
    """cairn's `log_table`/`log_image` make what W&B's `wandb.Table`/`wandb.Image` make: run
    files under media/, descriptors in the row, and a run_table artifact W&B's API reads."""
    project = client.project()
    out = artifacts(client, "media", WANDB_PROJECT=project)
    run = store.run(ENTITY, project, out["run"])
    assert run is not None and run["state"] == "finished", run
    history = store.history(run["id"])
    assert [h["_step"] for h in history] == [0, 1, 2], history
    tbl, img = history[1]["tbl"], history[2]["img"]
    assert tbl["_type"] == "table-file" and tbl["path"].startswith("media/table/tbl_1_"), tbl
    assert (tbl["ncols"], tbl["nrows"]) == (2, 2), tbl
    assert img["_type"] == "image-file" and img["path"].startswith("media/images/img_2_"), img
    assert (img["width"], img["height"], img["format"]) == (1, 1, "png"), img
    files = store.files(run["id"])
    for descriptor in (tbl, img):
        assert files.get(descriptor["path"], {}).get("uploaded") == 1, sorted(files)
        assert files[descriptor["path"]]["size"] == descriptor["size"]

    coll = collection(store, project, f"run-{out['run']}-tbl")
    assert coll is not None and coll["type_name"] == "run_table", coll
    (v0,) = committed(store, coll["id"])
    assert set(entries(store, v0["id"])) == {"tbl.table.json"}
    assert tbl["artifact_path"] == f"wandb-client-artifact://{v0['client_id']}/tbl.table.json"
    assert tbl["_latest_artifact_path"] == (
        f"wandb-client-artifact://{coll['client_id']}:latest/tbl.table.json"
    )
    res = client.run(READ_TABLE, project, args={"run": out["run"], "entity": ENTITY})
    assert res.result["type"] == "run_table", res.result
    assert res.result["data"] == [[1, "x"], [2, "y"]], res.result


def test_many_files_references_and_client_ids(client, store):
    """File URLs come in pages (the client follows `endCursor`), references are kept as
    entries without bytes, and `clientIDMapping` resolves the version's client id."""
    from test_artifacts import gql_ok

    project = client.project()
    src = write_tree(client.tmp / "many", {f"f{i:03}.txt": unique(f"f{i}", 1) for i in range(120)})
    ref = client.tmp / "outside.txt"
    ref.write_bytes(unique("outside"))
    refs = f"file://{ref} s3://some-bucket/data/remote.bin"
    logged = artifacts(client, "log", "many", src, WANDB_PROJECT=project, ARTIFACT_REFS=refs)
    coll = collection(store, project, "many")
    (v0,) = committed(store, coll["id"])
    got = entries(store, v0["id"])
    assert len(got) == 122 and v0["file_count"] == 122
    assert got["outside.txt"]["ref"] == f"file://{ref}" and got["outside.txt"]["md5"] is None
    assert got["remote.bin"]["ref"] == "s3://some-bucket/data/remote.bin"
    assert v0["size"] == sum(len(d) for d in read_tree(src).values()) + len(ref.read_bytes())

    query = """query GetArtifactMembershipFileUrls($entity: String!, $project: String!,
      $collection: String!, $alias: String!, $cursor: String, $perPage: Int) {
      project(name: $project, entityName: $entity) { artifactCollection(name: $collection) {
        artifactMembership(aliasName: $alias) { files(after: $cursor, first: $perPage) {
          pageInfo { endCursor hasNextPage } edges { node { name directUrl } } } } } } }"""
    names, cursor, pages = [], None, 0
    while True:
        data = gql_ok(client.server, query, {
            "entity": ENTITY, "project": project, "collection": "many", "alias": "v0",
            "cursor": cursor, "perPage": 50,
        })
        files = data["project"]["artifactCollection"]["artifactMembership"]["files"]
        names += [e["node"]["name"] for e in files["edges"]]
        assert all(e["node"]["directUrl"] for e in files["edges"])
        pages += 1
        if not files["pageInfo"]["hasNextPage"]:
            break
        cursor = files["pageInfo"]["endCursor"]
    assert pages == 3, pages
    assert sorted(names) == sorted(read_tree(src)), "every stored file once; no references"

    mapping = gql_ok(
        client.server,
        "query ClientIDMapping($clientID: ID!) { clientIDMapping(clientID: $clientID) { serverID } }",
        {"clientID": v0["client_id"]},
    )
    assert mapping["clientIDMapping"]["serverID"] == logged["id"], mapping
