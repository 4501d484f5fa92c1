"""Run files in S3: `cairn server --storage s3://bucket/prefix` against a real S3-compatible
server (moto's, from PyPI, pinned in scripts/python-env), written and read by the real
wandb client.

Nothing here is skipped: when moto cannot start, the tests fail.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
from dataclasses import dataclass, field

import pytest

from conftest import BACKENDS, ENTITY, Client, Server, free_port, make_server, md5_forms

BUCKET = "cairn-test-bucket"
PREFIX = "some/prefix"
ACCESS_KEY = "cairntestaccesskey"
SECRET_KEY = "cairntestsecretkey"
REGION = "us-east-1"

# A small file, and one over the server's single-PUT limit (8 MiB), which goes to S3 as a
# multipart upload (object_store's parts are 5 MiB, the smallest part S3 accepts).
SMALL = b"small saved file\n" + bytes(range(256)) * 4
BIG_SIZE = 9 * 1024 * 1024 + 12345


def big_bytes() -> bytes:
    block = hashlib.sha256(b"cairn").digest() * 2048  # 64 KiB, not all one byte
    data = block * (BIG_SIZE // len(block) + 1)
    return data[:BIG_SIZE]


@dataclass
class StorageServer(Server):
    """A `Server` with `--storage URL` and extra environment variables."""

    storage: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def db_args(self) -> list[str]:
        return super().db_args + ["--storage", self.storage]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in super().env().items() if not k.startswith("AWS_")}
        env.update(self.extra_env)
        return env


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on a free port, with an empty bucket; yields a boto3 client."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )
        client.create_bucket(Bucket=BUCKET)
        client.endpoint = f"http://127.0.0.1:{port}"
        yield client
    finally:
        moto.stop()


@pytest.fixture(params=BACKENDS)
def s3_server(request, s3, tmp_path_factory) -> StorageServer:
    """A cairn server (one per backend) whose files go to s3://BUCKET/PREFIX/<unique>."""
    base = make_server(request.param, tmp_path_factory.mktemp(f"s3-server-{request.param}"))
    prefix = f"{PREFIX}/{secrets.token_hex(4)}"
    init = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
    srv = StorageServer(
        **init,
        storage=f"s3://{BUCKET}/{prefix}",
        extra_env={
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT": s3.endpoint,
            "AWS_ALLOW_HTTP": "true",
        },
    )
    srv.prefix = prefix
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


def bucket_objects(s3, prefix: str) -> dict[str, int]:
    """Key → size of every object under `prefix/`."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["Size"]
    return out


def test_run_files_in_s3(s3, s3_server, tmp_path, request):
    client = Client(s3_server, tmp_path, "run-files-in-s3")
    client.log_start = s3_server.log_size()
    request.node._cairn_client = client
    big = big_bytes()
    (tmp_path / "small.bin").write_bytes(SMALL)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "big.bin").write_bytes(big)
    project = client.project("s3")

    res = client.run(
        """
        run = wandb.init(project=PROJECT, config={"lr": 0.1})
        run.log({"loss": 0.5})
        run.save(os.path.abspath("small.bin"), base_path=os.getcwd(), policy="now")
        run.save(os.path.abspath("sub/big.bin"), base_path=os.getcwd(), policy="now")
        report(id=run.id)
        run.finish()
        """,
        project,
        timeout=300,
    )
    run_id = res.result["id"]
    store = s3_server.store
    row = store.run(ENTITY, project, run_id)
    assert row is not None and row["state"] == "finished", row

    # The server recorded the uploads.
    files = store.files(row["id"])
    for name, data in (("small.bin", SMALL), ("sub/big.bin", big)):
        assert name in files, f"{name} not in run_files: {sorted(files)}"
        assert files[name]["uploaded"] == 1, files[name]
        assert files[name]["size"] == len(data), files[name]
        assert files[name]["md5"] in md5_forms(data), files[name]

    # The bytes are in the bucket, under the prefix, at runs/{id}/files/{name}.
    run_prefix = f"{s3_server.prefix}/runs/{row['id']}/files"
    objects = bucket_objects(s3, s3_server.prefix)
    for name, data in (("small.bin", SMALL), ("sub/big.bin", big)):
        key = f"{run_prefix}/{name}"
        assert key in objects, f"{key} not in the bucket; it holds {sorted(objects)}"
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert len(body) == len(data), f"{key}: {len(body)} bytes, want {len(data)}"
        assert body == data, f"{key}: the bytes differ from the uploaded file"
    # The standard run files went there too, and nothing lies outside runs/{id}/files.
    for name in ("wandb-metadata.json", "config.yaml", "wandb-summary.json"):
        assert f"{run_prefix}/{name}" in objects, f"{name} not in the bucket: {sorted(objects)}"
    stray = [k for k in objects if not k.startswith(run_prefix + "/")]
    assert not stray, f"objects outside {run_prefix}/: {stray}"
    # And nothing went to the local default storage.
    local = [
        p
        for p in (s3_server.data_dir).rglob("*")
        if p.is_file() and p.name in ("small.bin", "big.bin")
    ]
    assert not local, f"run files were written to the data dir too: {local}"

    # wandb.Api() downloads the same bytes (through the server's signed URLs).
    dl = tmp_path / "dl"
    r = client.run(
        """
        api = wandb.Api(timeout=60)
        run = api.run(ARGS["path"])
        files = {f.name: f.size for f in run.files()}
        paths = {}
        for name in ("small.bin", "sub/big.bin"):
            with run.file(name).download(root=ARGS["root"], replace=True) as fh:
                paths[name] = fh.name
        report(files=files, paths=paths)
        """,
        project,
        args={"path": f"{ENTITY}/{project}/{run_id}", "root": str(dl)},
    ).result
    assert r["files"].get("small.bin") == len(SMALL), r["files"]
    assert r["files"].get("sub/big.bin") == len(big), r["files"]
    assert (dl / "small.bin").read_bytes() == SMALL
    got = (dl / "sub" / "big.bin").read_bytes()
    assert len(got) == len(big) and got == big, "the downloaded sub/big.bin differs"
    assert os.path.realpath(r["paths"]["sub/big.bin"]) == os.path.realpath(dl / "sub" / "big.bin")

    # Deleting an object behind the server's back: the download URL answers 404, not 500.
    s3.delete_object(Bucket=BUCKET, Key=f"{run_prefix}/small.bin")
    r = client.run(
        """
        import requests
        api = wandb.Api(timeout=60)
        url = api.run(ARGS["path"]).file("small.bin").url
        resp = requests.get(url, timeout=60)
        report(status=resp.status_code, body=resp.text[:500])
        """,
        project,
        args={"path": f"{ENTITY}/{project}/{run_id}"},
    ).result
    assert r["status"] == 404, r
