"""Artifacts end to end: the real wandb==0.31.0 client logs, deduplicates, versions, uses and
downloads artifacts through `cairn server`, and every test checks what the server stored in
its artifact tables (schema_v2.sql), not only what the client saw.

Downloads run with a fresh wandb cache (`WANDB_CACHE_DIR`), so the bytes really come from the
server and not from the cache the uploading run filled.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from conftest import ENTITY, md5_forms

# --------------------------------------------------------------------------------------
# Digests


def b64md5(data: bytes) -> str:
    """W&B's file digest: base64 of the raw MD5."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def hexmd5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def manifest_digest(entries: dict[str, str]) -> str:
    """The artifact (content) digest: hex MD5 over the sorted `path:b64md5` lines."""
    h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
    for path in sorted(entries):
        h.update(f"{path}:{entries[path]}\n".encode())
    return h.hexdigest()


def files_digest(files: dict[str, bytes]) -> str:
    return manifest_digest({p: b64md5(d) for p, d in files.items()})


def file_md5(path: Path, chunk: int = 8 << 20) -> tuple[str, int]:
    """(hex MD5, size) of a file, read in chunks (big files never sit in memory)."""
    h = hashlib.md5()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def unique(tag: str, repeat: int = 20) -> bytes:
    """Content no other test has (artifact blobs are shared per entity)."""
    return (f"{tag} {secrets.token_hex(8)}\n" * repeat).encode()


def enc(files: dict[str, bytes]) -> dict[str, str]:
    """Files for a script's ARGS (JSON): base64 of the bytes."""
    return {p: base64.b64encode(d).decode() for p, d in files.items()}


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` by its `/`-separated relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------
# The server's artifact tables


def entity_id(store, name: str = ENTITY) -> int:
    row = store.entity(name)
    assert row is not None, f"no entity {name!r}"
    return row["id"]


def collection(store, project: str, name: str, entity: str = ENTITY) -> dict[str, Any] | None:
    return store.one(
        "SELECT c.* FROM artifact_collections c JOIN projects p ON p.id = c.project_id"
        " JOIN entities e ON e.id = p.entity_id"
        " WHERE e.name = ? AND p.name = ? AND c.name = ?",
        (entity, project, name),
    )


def collections(store, project: str, entity: str = ENTITY) -> dict[str, dict[str, Any]]:
    rows = store.query(
        "SELECT c.* FROM artifact_collections c JOIN projects p ON p.id = c.project_id"
        " JOIN entities e ON e.id = p.entity_id WHERE e.name = ? AND p.name = ? ORDER BY c.id",
        (entity, project),
    )
    return {r["name"]: r for r in rows}


def artifact_rows(store, collection_id: int) -> list[dict[str, Any]]:
    """Every version row of a collection (any state), in creation order."""
    return store.query(
        "SELECT * FROM artifacts WHERE collection_id = ? ORDER BY id", (collection_id,)
    )


def committed(store, collection_id: int) -> list[dict[str, Any]]:
    return store.query(
        "SELECT * FROM artifacts WHERE collection_id = ? AND state = 'COMMITTED'"
        " ORDER BY version_index",
        (collection_id,),
    )


def aliases(store, collection_id: int) -> dict[str, int]:
    rows = store.query(
        "SELECT alias, artifact_id FROM artifact_aliases WHERE collection_id = ?",
        (collection_id,),
    )
    return {r["alias"]: r["artifact_id"] for r in rows}


def entries(store, artifact_id: int) -> dict[str, dict[str, Any]]:
    rows = store.query(
        "SELECT * FROM artifact_entries WHERE artifact_id = ? ORDER BY path", (artifact_id,)
    )
    return {r["path"]: r for r in rows}


def blobs(store, entity: int) -> dict[str, dict[str, Any]]:
    rows = store.query("SELECT * FROM artifact_blobs WHERE entity_id = ?", (entity,))
    return {r["md5_hex"]: r for r in rows}


def usage(store, run_pk: int) -> set[int]:
    rows = store.query("SELECT artifact_id FROM artifact_usage WHERE run_id = ?", (run_pk,))
    return {r["artifact_id"] for r in rows}


def the_version(store, project: str, name: str, index: int) -> dict[str, Any]:
    coll = collection(store, project, name)
    assert coll is not None, f"no artifact collection {name!r} in {ENTITY}/{project}"
    rows = [r for r in committed(store, coll["id"]) if r["version_index"] == index]
    assert len(rows) == 1, (
        f"expected one COMMITTED {name}:v{index}, got {rows};"
        f" all rows: {artifact_rows(store, coll['id'])}"
    )
    return rows[0]


def assert_entries(store, artifact_id: int, files: dict[str, bytes], what: str) -> dict:
    """The version's entries are exactly `files`: base64 MD5 and size each, no reference."""
    got = entries(store, artifact_id)
    assert set(got) == set(files), (
        f"{what}: artifact_entries paths {sorted(got)}, expected {sorted(files)}"
    )
    for path, data in files.items():
        e = got[path]
        assert e["md5"] == b64md5(data), (
            f"{what}: entry {path!r} md5 {e['md5']!r}, expected base64 {b64md5(data)!r}"
        )
        assert e["size"] == len(data), f"{what}: entry {path!r} size {e['size']} != {len(data)}"
        assert e["ref"] is None, f"{what}: entry {path!r} has a ref: {e}"
    return got


def assert_blobs_stored(store, files: dict[str, bytes], what: str) -> dict:
    have = blobs(store, entity_id(store))
    for path, data in files.items():
        blob = have.get(hexmd5(data))
        assert blob is not None, f"{what}: no artifact_blobs row for {path!r} ({hexmd5(data)})"
        assert blob["stored"] == 1, f"{what}: blob of {path!r} not stored: {blob}"
        assert blob["size"] == len(data), f"{what}: blob of {path!r} size: {blob}"
    return have


# --------------------------------------------------------------------------------------
# wandb scripts

# Logs ARGS["files"] ({path: base64 bytes}) as one artifact in a new run and waits for it.
# With ARGS["read_manifest"], reads the committed manifest back from the server (after
# `.wait()`, `art.manifest` is fetched with FetchArtifactManifest + GET).
LOG_SCRIPT = """
import base64, tempfile
src = tempfile.mkdtemp(prefix="art-src-")
art = wandb.Artifact(
    ARGS["name"],
    type=ARGS.get("type", "dataset"),
    description=ARGS.get("description"),
    metadata=ARGS.get("metadata"),
)
for path, data in ARGS["files"].items():
    local = os.path.join(src, path.replace("/", "__"))
    with open(local, "wb") as f:
        f.write(base64.b64decode(data))
    art.add_file(local, name=path)
run = wandb.init(project=PROJECT, job_type="log")
run.log_artifact(art, aliases=ARGS.get("aliases"))
art.wait()
out = dict(
    run_id=run.id, art_id=art.id, version=art.version, digest=art.digest, name=art.name,
    state=art.state, type=art.type, size=art.size,
)
if ARGS.get("read_manifest"):
    out["manifest"] = {
        path: {"digest": e.digest, "size": e.size, "birth": e.birth_artifact_id}
        for path, e in art.manifest.entries.items()
    }
report(**out)
run.finish()
"""


def log_artifact(
    client,
    project: str,
    name: str,
    files: dict[str, bytes],
    aliases: list[str] | None = None,
    env: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Logs `files` as artifact `name` from a new run; returns what the script reported."""
    args = {"name": name, "files": enc(files), "aliases": aliases, **extra}
    return client.run(LOG_SCRIPT, project, args=args, env=env).result


def fresh_env(client, tag: str, **extra: str) -> dict[str, str]:
    """The client's environment with an empty wandb cache (a different machine, as far as
    the artifact cache goes)."""
    cache = client.tmp / f"cache-{tag}"
    cache.mkdir(exist_ok=True)
    return client.env(WANDB_CACHE_DIR=str(cache), **extra)


# --------------------------------------------------------------------------------------
# Plain HTTP and raw GraphQL (for the checks the wandb client cannot make)


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"api:{key}".encode()).decode()


def request(
    server, method: str, target: str, body: bytes = b"", headers: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def target_of(server, url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    assert parts.port == server.port, f"URL not on the server ({server.base_url}): {url}"
    return parts.path + ("?" + parts.query if parts.query else "")


def get(server, url: str) -> tuple[int, bytes]:
    status, _, body = request(server, "GET", target_of(server, url))
    return status, body


def put(server, url: str, data: bytes) -> tuple[int, bytes]:
    status, _, body = request(server, "PUT", target_of(server, url), data)
    return status, body


def with_query(url: str, **changes: str | None) -> str:
    """`url` with query parameters replaced (None: removed)."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    for k, v in changes.items():
        if v is None:
            query.pop(k, None)
        else:
            query[k] = v
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def gql(server, query: str, variables: dict | None = None, key: str | None = None):
    """POST /graphql; returns (HTTP status, JSON body). Never a 5xx."""
    op = re.search(r"(?:query|mutation)\s+(\w+)", query)
    body = {"operationName": op and op.group(1), "query": query, "variables": variables or {}}
    status, _, raw = request(
        server,
        "POST",
        "/graphql",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": basic(key or server.api_key)},
    )
    assert status < 500, f"server error on {op and op.group(1)}: {status} {raw[:800]!r}"
    try:
        return status, json.loads(raw)
    except ValueError:
        raise AssertionError(f"HTTP {status}: body is not JSON: {raw[:500]!r}") from None


def gql_ok(server, query: str, variables: dict | None = None, key: str | None = None) -> dict:
    """A request that must succeed; returns `data`."""
    status, body = gql(server, query, variables, key)
    if status != 200 or body.get("errors"):
        pytest.fail(f"expected success, got HTTP {status}: {json.dumps(body)[:1500]}")
    return body["data"]


def gql_error(server, query: str, variables: dict | None = None, key: str | None = None) -> str:
    """A request that must be refused: a GraphQL error (at 200, or a 400); its message."""
    status, body = gql(server, query, variables, key)
    errors = body.get("errors") if isinstance(body, dict) else None
    if status not in (200, 400) or not errors:
        pytest.fail(f"expected a GraphQL error, got HTTP {status}: {json.dumps(body)[:1500]}")
    message = errors[0].get("message")
    assert isinstance(message, str) and message.strip(), body
    return message


UPSERT_BUCKET = """
mutation UpsertBucket($name: String, $project: String, $entity: String, $config: JSONString) {
  upsertBucket(input: {name: $name, modelName: $project, entityName: $entity, config: $config}) {
    bucket { id name project { id name entity { id name } } }
  }
}
"""

CREATE_ARTIFACT = """
mutation CreateArtifact ($input: CreateArtifactInput!) {
	createArtifact(input: $input) {
		... CreatedArtifact
	}
}
fragment CreatedArtifact on CreateArtifactPayload {
	artifact {
		id
		state
		artifactSequence {
			latestArtifact {
				id
			}
		}
	}
}
"""

CREATE_ARTIFACT_MANIFEST = """
mutation CreateArtifactManifest ($artifactID: ID!, $baseArtifactID: ID, $name: String!, $digest: String!, $entityName: String!, $projectName: String!, $runName: String!, $manifestType: ArtifactManifestType!, $includeUpload: Boolean!) {
	createArtifactManifest(input: {artifactID:$artifactID,baseArtifactID:$baseArtifactID,name:$name,digest:$digest,entityName:$entityName,projectName:$projectName,runName:$runName,type:$manifestType}) {
		artifactManifest {
			id
			file {
				id
				uploadUrl @include(if: $includeUpload)
				uploadHeaders @include(if: $includeUpload)
			}
		}
	}
}
"""

CREATE_ARTIFACT_FILES = """
mutation CreateArtifactFiles ($input: CreateArtifactFilesInput!) {
	createArtifactFiles(input: $input) {
		files {
			edges {
				node {
					storagePath
					uploadUrl
					uploadHeaders
					uploadMultipartUrls {
						uploadID
						uploadUrlParts {
							partNumber
							uploadUrl
						}
					}
					artifact {
						id
					}
				}
			}
		}
	}
}
"""

COMMIT_ARTIFACT = """
mutation CommitArtifact ($artifactID: ID!) {
	commitArtifact(input: {artifactID:$artifactID}) {
		artifact {
			id
			digest
		}
	}
}
"""

ARTIFACT_TYPE = """
query ArtifactType($entity: String, $project: String, $name: String!) {
  project(name: $project, entityName: $entity) {
    artifact(name: $name) {
      artifactType {
        name
      }
    }
  }
}
"""

ARTIFACT_BY_ID = """
query ArtifactByID($id: ID!) {
  artifact(id: $id) { id state digest versionIndex }
}
"""

FETCH_ARTIFACT_MANIFEST = """
query FetchArtifactManifest($id: ID!) {
  artifact(id: $id) {
    currentManifest {
      file {
        directUrl
      }
    }
  }
}
"""

GET_FILE_URLS = """
query GetArtifactMembershipFileUrls($entity: String!, $project: String!, $collection: String!, $alias: String!, $cursor: String, $perPage: Int) {
  project(name: $project, entityName: $entity) {
    artifactCollection(name: $collection) {
      __typename
      artifactMembership(aliasName: $alias) {
        files(after: $cursor, first: $perPage) {
          pageInfo { __typename endCursor hasNextPage }
          edges { node { __typename name directUrl } }
        }
      }
    }
  }
}
"""

USE_ARTIFACT = """
mutation UseArtifact($entityName: String!, $projectName: String!, $runName: String!, $artifactID: ID!) {
  useArtifact(input: {entityName: $entityName, projectName: $projectName, runName: $runName, artifactID: $artifactID}) {
    artifact { id digest }
  }
}
"""


def raw_run(server, project: str, key: str | None = None) -> str:
    """A run created over GraphQL as the client does (entity: the key's own); its name."""
    name = "raw" + secrets.token_hex(4)
    data = gql_ok(
        server, UPSERT_BUCKET, {"name": name, "project": project, "config": "{}"}, key
    )
    assert data["upsertBucket"]["bucket"]["name"] == name, data
    return name


def create_artifact_input(
    project: str, run: str, name: str, digest: str, type_: str = "dataset", entity=ENTITY
) -> dict:
    """CreateArtifactInput with every key core sends."""
    return {
        "entityName": entity,
        "projectName": project,
        "runName": run,
        "artifactTypeName": type_,
        "artifactCollectionName": name,
        "artifactCollectionNames": None,
        "digest": digest,
        "digestAlgorithm": "MANIFEST_MD5",
        "description": None,
        "metadata": None,
        "aliases": [{"alias": "latest", "artifactCollectionName": name}],
        "labels": None,
        "historyStep": None,
        "ttlDurationSeconds": None,
        "distributedID": None,
        "enableDigestDeduplication": True,
        "clientID": secrets.token_hex(32),
        "sequenceClientID": secrets.token_hex(32),
        "storageRegion": None,
        "clientMutationId": None,
    }


def manifest_bytes(contents: dict[str, tuple[str, int]], birth: str) -> bytes:
    """A wandb_manifest.json for {path: (b64 md5, size)}."""
    return json.dumps(
        {
            "version": 1,
            "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": {
                path: {"digest": md5, "size": size, "birthArtifactID": birth}
                for path, (md5, size) in contents.items()
            },
        }
    ).encode()


class RawUpload:
    """One artifact version uploaded step by step over GraphQL, as core does."""

    def __init__(self, server, project: str, run: str, name: str, contents: dict[str, tuple]):
        """`contents`: the manifest entries {path: (b64 md5, size)} (decides the digest)."""
        self.server, self.project, self.run, self.name = server, project, run, name
        self.contents = contents
        digest = manifest_digest({p: md5 for p, (md5, _) in contents.items()})
        data = gql_ok(
            server, CREATE_ARTIFACT, {"input": create_artifact_input(project, run, name, digest)}
        )
        artifact = data["createArtifact"]["artifact"]
        assert artifact["state"] == "PENDING", f"CreateArtifact of a new {name}: {artifact}"
        self.id = artifact["id"]
        self.manifest_id = self.manifest(include_upload=False)["id"]

    def manifest(self, include_upload: bool, digest: str = "") -> dict:
        data = gql_ok(
            self.server,
            CREATE_ARTIFACT_MANIFEST,
            {
                "artifactID": self.id,
                "baseArtifactID": None,
                "name": "wandb_manifest.json",
                "digest": digest,
                "entityName": ENTITY,
                "projectName": self.project,
                "runName": self.run,
                "manifestType": "FULL",
                "includeUpload": include_upload,
            },
        )
        return data["createArtifactManifest"]["artifactManifest"]

    def files_request(self, names_md5: list[tuple[str, str]]):
        variables = {
            "input": {
                "artifactFiles": [
                    {
                        "artifactID": self.id,
                        "artifactManifestID": self.manifest_id,
                        "name": name,
                        "md5": md5,
                        "mimetype": None,
                        "uploadPartsInput": None,
                    }
                    for name, md5 in names_md5
                ],
                "storageLayout": "V2",
                "cloudRegionID": None,
                "clientMutationId": None,
            }
        }
        return CREATE_ARTIFACT_FILES, variables

    def upload_files(self, files: dict[str, bytes]) -> None:
        data = gql_ok(self.server, *self.files_request([(p, b64md5(d)) for p, d in files.items()]))
        edges = data["createArtifactFiles"]["files"]["edges"]
        assert len(edges) == len(files), f"expected {len(files)} upload URLs, got {edges}"
        for (path, content), edge in zip(files.items(), edges):
            node = edge["node"]
            assert node["artifact"]["id"], f"{path}: no birth artifact id: {node}"
            if node["uploadUrl"] is not None:
                status, body = put(self.server, node["uploadUrl"], content)
                assert status in (200, 201, 204), f"PUT {path}: {status} {body[:300]!r}"

    def put_manifest(self) -> tuple[int, bytes]:
        """Uploads the manifest of `contents`; returns the PUT's (status, body)."""
        body = manifest_bytes(self.contents, self.id)
        digest = base64.b64encode(hashlib.md5(body).digest()).decode()
        url = self.manifest(include_upload=True, digest=digest)["file"]["uploadUrl"]
        assert url, "CreateArtifactManifest(includeUpload: true) gave no uploadUrl"
        return put(self.server, url, body)

    def commit(self):
        return gql(self.server, COMMIT_ARTIFACT, {"artifactID": self.id})


def named_in(message: str, name: str) -> bool:
    """Whether an error message names `name` (NUL written as \\0, \\u0000 or \\x00)."""
    if not name:
        return "empty" in message.lower() or '""' in message
    forms = {name, json.dumps(name)[1:-1], name.replace("\x00", "\\0")}
    forms.add(name.replace("\x00", "\\x00"))
    return any(f in message for f in forms)


@pytest.fixture(autouse=True)
def _server_log_on_failure(client):
    """Every test uses `client`, so a failure shows the server's log lines (conftest)."""


# --------------------------------------------------------------------------------------
# 1. Log an artifact


def test_log_artifact_commits_version(client, store):
    """log_artifact(aliases=["first"]).wait(): v0 COMMITTED with its entries, aliases and
    blobs; the client's version and digest agree with the server."""
    project = client.project()
    name = "ds-" + secrets.token_hex(3)
    files = {
        "a.txt": unique("file a"),
        "sub/b.csv": b"x,y\n" + unique("b.csv"),
        "tree/c.json": json.dumps({"c": secrets.token_hex(8)}).encode(),
    }
    expected_digest = files_digest(files)
    res = client.run(
        """
        import base64, tempfile
        src = tempfile.mkdtemp(prefix="art-src-")
        def write(rel, data):
            path = os.path.join(src, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(base64.b64decode(data))
            return path
        files = ARGS["files"]
        art = wandb.Artifact(
            ARGS["name"], type="dataset", description="three files", metadata={"k": "v", "n": 3}
        )
        art.add_file(write("a.txt", files["a.txt"]))
        art.add_file(write("b.csv", files["sub/b.csv"]), name="sub/b.csv")
        write("tree/c.json", files["tree/c.json"])
        art.add_dir(os.path.join(src, "tree"), name="tree")
        run = wandb.init(project=PROJECT)
        run.log_artifact(art, aliases=["first"])
        art.wait()
        report(
            run_id=run.id, art_id=art.id, version=art.version, digest=art.digest,
            name=art.name, state=art.state, type=art.type, size=art.size,
        )
        run.finish()
        """,
        project,
        args={"name": name, "files": enc(files)},
    )
    r = res.result
    assert r["version"] == "v0", f"client-side version {r['version']!r}, expected v0"
    assert r["name"] == f"{name}:v0", r
    assert r["state"] == "COMMITTED", r
    assert r["digest"] == expected_digest, (
        f"client-side digest {r['digest']!r}, W&B manifest digest {expected_digest!r}"
    )
    assert r["size"] == sum(len(d) for d in files.values()), r

    run = store.run(ENTITY, project, r["run_id"])
    assert run is not None and run["state"] == "finished", run

    colls = collections(store, project)
    assert set(colls) == {name}, f"artifact collections in the project: {sorted(colls)}"
    coll = colls[name]
    assert coll["type_name"] == "dataset", coll
    assert coll["client_id"], f"the collection's sequenceClientID was not kept: {coll}"

    rows = artifact_rows(store, coll["id"])
    assert len(rows) == 1, f"expected one artifacts row, got {rows}"
    v0 = rows[0]
    assert v0["state"] == "COMMITTED", v0
    assert v0["version_index"] == 0, v0
    assert v0["digest"] == expected_digest, (
        f"stored digest {v0['digest']!r}, expected hex manifest digest {expected_digest!r}"
    )
    assert v0["run_id"] == run["id"], f"artifact's run_id {v0['run_id']}, run {run['id']}"
    assert v0["size"] == sum(len(d) for d in files.values()), v0
    assert v0["file_count"] == 3, v0
    assert v0["description"] == "three files", v0
    assert json.loads(v0["metadata"]) == {"k": "v", "n": 3}, v0["metadata"]
    assert v0["committed_at"], v0
    assert v0["manifest_key"], f"no manifest stored for a committed version: {v0}"
    assert v0["client_id"], f"the version's clientID was not kept: {v0}"

    assert aliases(store, coll["id"]) == {"latest": v0["id"], "first": v0["id"]}, (
        f"aliases: {aliases(store, coll['id'])}, expected latest and first on {v0['id']}"
    )
    got = assert_entries(store, v0["id"], files, "v0")
    for path, e in got.items():
        assert e["birth_artifact_id"] == v0["id"], f"{path}: birth should be v0: {e}"
    have = assert_blobs_stored(store, files, "v0")
    for path, data in files.items():
        assert have[hexmd5(data)]["birth_artifact_id"] == v0["id"], have[hexmd5(data)]


def test_api_edits_aliases_metadata_tags_and_deletes_versions(client, store):
    """`wandb.Api()` artifact edits: `artifact.save()` after changing aliases (addAliases,
    deleteAliases), description, metadata, tags and TTL (updateArtifact); `delete()` refused
    while aliases remain, then with `delete_aliases=True` (deleteArtifact): `latest` moves
    back, and a new version never takes a deleted one's number."""
    project = client.project()
    name = "edit-" + secrets.token_hex(3)
    log_artifact(client, project, name, {"a.txt": unique("edit v0")})
    log_artifact(client, project, name, {"a.txt": unique("edit v1")})
    res = client.run(
        """
        api = wandb.Api(timeout=60)
        base = f"{ARGS['entity']}/{PROJECT}/{ARGS['name']}"
        a = api.artifact(base + ":v0")
        a.aliases.append("prod")
        a.save()
        prod = api.artifact(base + ":prod").version
        a = api.artifact(base + ":v0")
        a.aliases.remove("prod")
        a.metadata["k"] = 1
        a.description = "edited"
        a.tags = ["t1", "t-2"]
        a.ttl = None
        a.save()
        b = api.artifact(base + ":v0")
        edited = [b.aliases, b.metadata, b.description, sorted(b.tags), b.ttl]
        c = api.artifact(base + ":v1")
        def error(call):
            try:
                call()
            except Exception as e:
                return str(e)
        c.aliases.remove("latest")
        kept_latest = error(c.save)
        c = api.artifact(base + ":v1")
        refused = error(c.delete)
        c.delete(delete_aliases=True)
        report(prod=prod, prod_left=api.artifact_exists(base + ":prod"), edited=edited,
               kept_latest=kept_latest, refused=refused,
               latest=api.artifact(base + ":latest").version,
               v1=api.artifact_exists(base + ":v1"),
               versions=[x.version for x in api.artifacts("dataset", base)])
        """,
        project,
        args={"entity": ENTITY, "name": name},
    ).result
    assert res["prod"] == "v0" and res["prod_left"] is False, res
    assert res["edited"] == [[], {"k": 1}, "edited", ["t-2", "t1"], None], res
    assert "latest" in (res["kept_latest"] or "") and "moves by itself" in res["kept_latest"], res
    assert "has aliases (latest)" in (res["refused"] or ""), res
    assert res["latest"] == "v0" and res["v1"] is False, res
    assert res["versions"] == ["v0"], res
    coll = collection(store, project, name)
    rows = {r["version_index"]: r for r in artifact_rows(store, coll["id"])}
    assert rows[1]["state"] == "DELETED" and rows[0]["state"] == "COMMITTED", rows
    assert aliases(store, coll["id"]) == {"latest": rows[0]["id"]}

    third = log_artifact(client, project, name, {"a.txt": unique("edit v2")})
    assert third["version"] == "v2", third


# --------------------------------------------------------------------------------------
# 2. Same content again


def test_named_files_past_the_first_page(client, store):
    """`artifact.files(names=[…])` finds names anywhere in a 120-file artifact: the server
    looks the names up before paging (the SDK stops at the first empty page)."""
    project = client.project()
    name = "many-" + secrets.token_hex(3)
    files = {f"f{i:03}.txt": unique(f"file {i}") for i in range(120)}
    logged = log_artifact(client, project, name, files)
    assert logged["version"] == "v0", logged
    res = client.run(
        """
        api = wandb.Api(timeout=60)
        a = api.artifact(f"{ARGS['entity']}/{PROJECT}/{ARGS['name']}:v0")
        report(
            named=sorted(f.name for f in a.files(names=["f117.txt", "f003.txt", "nope.txt"])),
            one_per_page=[f.name for f in a.files(names=["f119.txt", "f060.txt"], per_page=1)],
            all=sum(1 for _ in a.files()),
        )
        """,
        project,
        args={"entity": ENTITY, "name": name},
    ).result
    assert res["named"] == ["f003.txt", "f117.txt"], res
    assert res["one_per_page"] == ["f060.txt", "f119.txt"], res
    assert res["all"] == 120, res


def test_same_content_is_not_a_new_version(client, store):
    """Identical files logged from a second run: no new version, the client gets v0 back
    (W&B's dedup by content digest)."""
    project = client.project()
    name = "dedup-" + secrets.token_hex(3)
    files = {"a.txt": unique("dedup a"), "sub/b.csv": unique("dedup b")}
    first = log_artifact(client, project, name, files, aliases=["first"])
    assert first["version"] == "v0", first
    eid = entity_id(store)
    blobs_before = len(blobs(store, eid))

    second = log_artifact(client, project, name, files)
    assert second["run_id"] != first["run_id"]
    assert second["version"] == "v0", (
        f"identical content came back as {second['version']!r}, expected the existing v0"
    )
    assert second["art_id"] == first["art_id"], (second, first)
    assert second["digest"] == files_digest(files), second

    coll = collection(store, project, name)
    assert coll is not None
    rows = artifact_rows(store, coll["id"])
    assert [r["state"] for r in rows].count("COMMITTED") == 1, (
        f"identical content made a new committed version: {rows}"
    )
    assert len(rows) == 1, f"identical content left an extra artifacts row: {rows}"
    v0 = rows[0]
    assert v0["version_index"] == 0
    assert v0["run_id"] == store.run(ENTITY, project, first["run_id"])["id"], v0
    assert aliases(store, coll["id"]) == {"latest": v0["id"], "first": v0["id"]}
    assert len(blobs(store, eid)) == blobs_before, "identical content announced new blobs"


# --------------------------------------------------------------------------------------
# 3. A new version with one file changed


def test_new_version_uploads_only_changed_files(client, store):
    """v1 changes one of three files: version_index 1, `latest` moves, `first` stays; one new
    blob; the unchanged entries keep v0 as their birth artifact (server and manifest)."""
    project = client.project()
    name = "ver-" + secrets.token_hex(3)
    v0_files = {"a.txt": unique("ver a"), "b.txt": unique("ver b"), "sub/c.txt": unique("c0")}
    first = log_artifact(client, project, name, v0_files, aliases=["first"])
    assert first["version"] == "v0", first
    eid = entity_id(store)
    blobs_before = blobs(store, eid)

    v1_files = dict(v0_files, **{"sub/c.txt": unique("c1")})
    second = log_artifact(client, project, name, v1_files, read_manifest=True)
    assert second["version"] == "v1", f"changed content logged as {second['version']!r}"
    assert second["digest"] == files_digest(v1_files), second
    assert second["art_id"] != first["art_id"]

    # The manifest the client reads back: birth IDs from CreateArtifactFiles.
    manifest = second["manifest"]
    assert set(manifest) == set(v1_files), manifest
    for path in ("a.txt", "b.txt"):
        assert manifest[path]["birth"] == first["art_id"], (
            f"{path} is unchanged: its birthArtifactID should be v0's {first['art_id']!r},"
            f" manifest says {manifest[path]}"
        )
    assert manifest["sub/c.txt"]["birth"] == second["art_id"], manifest["sub/c.txt"]
    for path, data in v1_files.items():
        assert manifest[path]["digest"] == b64md5(data), (path, manifest[path])
        assert manifest[path]["size"] == len(data), (path, manifest[path])

    coll = collection(store, project, name)
    rows = committed(store, coll["id"])
    assert [r["version_index"] for r in rows] == [0, 1], rows
    v0, v1 = rows
    assert v1["digest"] == files_digest(v1_files), v1
    assert v1["run_id"] == store.run(ENTITY, project, second["run_id"])["id"], v1
    assert aliases(store, coll["id"]) == {"latest": v1["id"], "first": v0["id"]}, (
        f"aliases {aliases(store, coll['id'])}: latest should be v1 ({v1['id']}),"
        f" first v0 ({v0['id']})"
    )

    blobs_after = blobs(store, eid)
    new = set(blobs_after) - set(blobs_before)
    assert new == {hexmd5(v1_files["sub/c.txt"])}, (
        f"expected exactly one new blob (the changed file), got {len(new)}: {new}"
    )
    assert len(blobs_after) == len(blobs_before) + 1
    blob = blobs_after[hexmd5(v1_files["sub/c.txt"])]
    assert blob["stored"] == 1 and blob["birth_artifact_id"] == v1["id"], blob

    e1 = assert_entries(store, v1["id"], v1_files, "v1")
    assert e1["a.txt"]["birth_artifact_id"] == v0["id"], e1["a.txt"]
    assert e1["b.txt"]["birth_artifact_id"] == v0["id"], e1["b.txt"]
    assert e1["sub/c.txt"]["birth_artifact_id"] == v1["id"], e1["sub/c.txt"]
    # v0 is untouched.
    assert_entries(store, v0["id"], v0_files, "v0 after v1")


# --------------------------------------------------------------------------------------
# 4. Use and download; the read API


def test_use_and_download_artifact(client, store):
    """use_artifact by latest, vN and user aliases in a second run, download byte for byte
    (fresh cache), lineage in artifact_usage; then wandb.Api() run↔artifact links and
    api.artifact() attributes."""
    project = client.project()
    name = "use-" + secrets.token_hex(3)
    v0_files = {"a.txt": unique("use a"), "sub/b.csv": unique("use b")}
    v1_files = {
        "a.txt": v0_files["a.txt"],
        "sub/b.csv": unique("use b v1"),
        "data/c.bin": secrets.token_bytes(3000) + b"\x00\xff" * 100,
    }
    meta1 = {"epoch": 3, "nested": {"x": [1, 2]}}
    p0 = log_artifact(client, project, name, v0_files, aliases=["first"])
    p1 = log_artifact(
        client, project, name, v1_files, aliases=["best"], description="v1 desc", metadata=meta1
    )
    assert (p0["version"], p1["version"]) == ("v0", "v1"), (p0, p1)

    roots = {k: client.tmp / f"dl-{k}" for k in ("latest", "v0", "first")}
    res = client.run(
        """
        run = wandb.init(project=PROJECT, job_type="consume")
        out = {"run_id": run.id}
        for key, alias in (("latest", "latest"), ("v0", "v0"), ("first", "first")):
            art = run.use_artifact(f"{ARGS['name']}:{alias}")
            out[key] = {"version": art.version, "id": art.id, "digest": art.digest}
            out[key]["root"] = art.download(root=ARGS["roots"][key])
        best = run.use_artifact(f"{ARGS['name']}:best")
        out["best"] = {"version": best.version, "id": best.id}
        report(**out)
        run.finish()
        """,
        project,
        args={"name": name, "roots": {k: str(v) for k, v in roots.items()}},
        env=fresh_env(client, "consumer"),
    )
    r = res.result
    assert r["latest"]["version"] == "v1", r["latest"]
    assert r["v0"]["version"] == "v0", r["v0"]
    assert r["first"]["version"] == "v0", f"alias first resolved to {r['first']}"
    assert r["best"]["version"] == "v1", f"alias best resolved to {r['best']}"
    assert r["latest"]["id"] == p1["art_id"] and r["v0"]["id"] == p0["art_id"], r
    assert r["latest"]["digest"] == files_digest(v1_files), r["latest"]

    for key, expected in (("latest", v1_files), ("v0", v0_files), ("first", v0_files)):
        got = read_tree(roots[key])
        assert set(got) == set(expected), f"download of :{key}: files {sorted(got)}"
        for path, data in expected.items():
            assert got[path] == data, f"download of :{key}: {path} differs from what was logged"

    # Lineage: the consumer run used v0 and v1 (one row each, whatever the alias).
    v0 = the_version(store, project, name, 0)
    v1 = the_version(store, project, name, 1)
    consumer = store.run(ENTITY, project, r["run_id"])
    assert consumer is not None
    assert usage(store, consumer["id"]) == {v0["id"], v1["id"]}, (
        f"artifact_usage of the consumer run: {usage(store, consumer['id'])},"
        f" expected v0 {v0['id']} and v1 {v1['id']}"
    )
    for producer in (p0, p1):
        row = store.run(ENTITY, project, producer["run_id"])
        assert usage(store, row["id"]) == set(), "a logging run was recorded as a user"

    api = client.run(
        """
        api = wandb.Api(timeout=60)
        base = f"{ARGS['entity']}/{PROJECT}"
        out = {}
        for key in ("p0", "p1", "consumer"):
            run = api.run(f"{base}/{ARGS[key]}")
            # The SDK's RunOutputArtifacts/RunInputArtifacts declare
            # `$includeAliases: Boolean = true` and do not send it: aliases must come back.
            out[key] = {
                "logged": sorted(a.name for a in run.logged_artifacts()),
                "used": sorted(a.name for a in run.used_artifacts()),
                "logged_aliases": sorted(sorted(a.aliases) for a in run.logged_artifacts()),
                "used_aliases": sorted(sorted(a.aliases) for a in run.used_artifacts()),
            }
        a = api.artifact(f"{base}/{ARGS['name']}:v1")
        out["v1"] = {
            "name": a.name, "version": a.version, "aliases": sorted(a.aliases), "size": a.size,
            "file_count": a.file_count, "metadata": a.metadata, "description": a.description,
            "type": a.type, "digest": a.digest, "state": a.state,
            "files": sorted(f.name for f in a.files()),
        }
        b = api.artifact(f"{base}/{ARGS['name']}:first")
        out["first"] = {"version": b.version, "aliases": sorted(b.aliases)}
        c = api.artifact(f"{base}/{ARGS['name']}:latest")
        out["latest"] = {"version": c.version, "source_name": c.source_name}
        report(**out)
        """,
        project,
        args={
            "entity": ENTITY,
            "name": name,
            "p0": p0["run_id"],
            "p1": p1["run_id"],
            "consumer": r["run_id"],
        },
    ).result
    assert api["p0"] == {
        "logged": [f"{name}:v0"], "used": [], "logged_aliases": [["first"]], "used_aliases": [],
    }, api["p0"]
    assert api["p1"] == {
        "logged": [f"{name}:v1"],
        "used": [],
        "logged_aliases": [["best", "latest"]],
        "used_aliases": [],
    }, api["p1"]
    assert api["consumer"] == {
        "logged": [],
        "used": sorted([f"{name}:v0", f"{name}:v1"]),
        "logged_aliases": [],
        "used_aliases": [["best", "latest"], ["first"]],
    }, api["consumer"]
    a1 = api["v1"]
    assert a1["version"] == "v1" and a1["name"] == f"{name}:v1", a1
    assert a1["aliases"] == ["best", "latest"], f"v1 aliases {a1['aliases']}"
    assert a1["size"] == sum(len(d) for d in v1_files.values()), a1
    assert a1["file_count"] == len(v1_files), a1
    assert a1["metadata"] == meta1, a1
    assert a1["description"] == "v1 desc", a1
    assert a1["type"] == "dataset" and a1["state"] == "COMMITTED", a1
    assert a1["digest"] == files_digest(v1_files), a1
    assert a1["files"] == sorted(v1_files), a1
    assert api["first"] == {"version": "v0", "aliases": ["first"]}, api["first"]
    assert api["latest"] == {"version": "v1", "source_name": f"{name}:v1"}, api["latest"]


# --------------------------------------------------------------------------------------
# 5. Media: wandb.Table and wandb.Image

# wandb.Image reads the PNG's size with Pillow (scripts/python-env installs it); the PNG is
# written here byte by byte and uploaded as is.
MEDIA_SCRIPT = """
import struct, zlib

def png(w, h):
    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    rows = b"".join(
        b"\\x00" + bytes(v for x in range(w) for v in ((x * 31) % 256, (y * 31) % 256, 200))
        for y in range(h)
    )
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))

with open("tiny.png", "wb") as f:
    f.write(png(8, 6))
run = wandb.init(project=PROJECT)
run.log({"x": 0})
# At step 1, as in the capture (s7): core may leave a historyStep of 0 out.
table = wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])
run.log({"tbl": table, "img": wandb.Image("tiny.png", caption="tiny")})
report(id=run.id, run_dir=run.dir)
run.finish()
"""


def test_media_table_and_image(client, store):
    """A wandb.Table becomes a run_table artifact `run-<id>-tbl` with `tbl.table.json`; the
    history row holds the table-file descriptor; a wandb.Image is a run file."""
    project = client.project()
    res = client.run(MEDIA_SCRIPT, project)
    run_id = res.result["id"]
    run_dir = Path(res.result["run_dir"])
    run = store.run(ENTITY, project, run_id)
    assert run is not None and run["state"] == "finished", run

    history = store.history(run["id"])
    assert [h["_step"] for h in history] == [0, 1], history
    row = history[1]
    tbl, img = row.get("tbl"), row.get("img")
    assert isinstance(tbl, dict) and tbl.get("_type") == "table-file", f"history tbl: {tbl}"
    assert tbl["path"].startswith("media/table/tbl_1_") and tbl["path"].endswith(".table.json")
    assert tbl["ncols"] == 2 and tbl["nrows"] == 2, tbl
    m = re.fullmatch(r"wandb-client-artifact://([^/]+)/tbl\.table\.json", tbl["artifact_path"])
    assert m, f"table descriptor artifact_path: {tbl['artifact_path']!r}"
    client_id = m.group(1)
    m = re.fullmatch(
        r"wandb-client-artifact://([^/:]+):latest/tbl\.table\.json", tbl["_latest_artifact_path"]
    )
    assert m, f"table descriptor _latest_artifact_path: {tbl['_latest_artifact_path']!r}"
    sequence_client_id = m.group(1)

    # The table: a run file, and a run_table artifact whose one entry is the table in the
    # artifact's own serialization (not byte-identical to the run file).
    files = store.files(run["id"])
    table_file = (run_dir / tbl["path"]).read_bytes()
    assert tbl["size"] == len(table_file), tbl
    assert tbl["path"] in files, f"table not among the run files: {sorted(files)}"
    assert files[tbl["path"]]["uploaded"] == 1, files[tbl["path"]]
    assert files[tbl["path"]]["size"] == len(table_file), files[tbl["path"]]

    coll_name = f"run-{run_id}-tbl"
    colls = collections(store, project)
    assert set(colls) == {coll_name}, f"collections {sorted(colls)}, expected {coll_name}"
    coll = colls[coll_name]
    assert coll["type_name"] == "run_table", coll
    assert coll["client_id"] == sequence_client_id, (
        f"collection client_id {coll['client_id']!r} is not the sequenceClientID the history"
        f" refers to ({sequence_client_id!r})"
    )
    rows = artifact_rows(store, coll["id"])
    assert len(rows) == 1, rows
    art = rows[0]
    assert art["state"] == "COMMITTED" and art["version_index"] == 0, art
    assert art["run_id"] == run["id"], art
    assert art["history_step"] == 1, f"CreateArtifact.historyStep not kept: {art}"
    assert art["client_id"] == client_id, (
        f"artifact client_id {art['client_id']!r} is not the clientID the history refers to"
        f" ({client_id!r})"
    )
    assert aliases(store, coll["id"]).get("latest") == art["id"]
    got = entries(store, art["id"])
    assert set(got) == {"tbl.table.json"}, f"run table entries: {sorted(got)}"
    entry = got["tbl.table.json"]
    assert entry["md5"] and entry["size"] > 0 and entry["ref"] is None, entry
    assert art["digest"] == manifest_digest({"tbl.table.json": entry["md5"]}), (art, entry)
    blob = blobs(store, entity_id(store)).get(base64.b64decode(entry["md5"]).hex())
    assert blob and blob["stored"] == 1 and blob["size"] == entry["size"], blob

    # It downloads back as the logged table.
    root = client.tmp / "dl-table"
    client.run(
        """
        api = wandb.Api(timeout=60)
        report(root=api.artifact(ARGS["path"]).download(root=ARGS["root"]))
        """,
        project,
        args={"path": f"{ENTITY}/{project}/{coll_name}:v0", "root": str(root)},
        env=fresh_env(client, "table"),
    )
    downloaded = read_tree(root)
    assert set(downloaded) == {"tbl.table.json"}, sorted(downloaded)
    data = downloaded["tbl.table.json"]
    assert b64md5(data) == entry["md5"] and len(data) == entry["size"], entry
    table = json.loads(data)
    assert table["columns"] == ["a", "b"] and table["data"] == [[1, "x"], [2, "y"]], table

    # The image: a run file, not an artifact.
    assert isinstance(img, dict) and img.get("_type") == "image-file", f"history img: {img}"
    assert img["path"].startswith("media/images/img_1_") and img["path"].endswith(".png"), img
    png = (run_dir / img["path"]).read_bytes()
    assert png.startswith(b"\x89PNG") and img["size"] == len(png), img
    assert img["path"] in files, f"image not among the run files: {sorted(files)}"
    f = files[img["path"]]
    assert f["uploaded"] == 1 and f["size"] == len(png), f
    if f["md5"] is not None:
        assert f["md5"] in md5_forms(png), f


# --------------------------------------------------------------------------------------
# 6. Offline run + wandb sync


def test_offline_artifact_then_sync(client, store):
    """An artifact logged offline arrives with `wandb sync` (entityName ""):
    committed, right entries, lineage to the synced run; it downloads back intact."""
    project = client.project()
    name = "offline-" + secrets.token_hex(3)
    files = {"a.txt": unique("offline a"), "deep/er/b.bin": secrets.token_bytes(5000)}
    res = client.run(
        """
        import base64, tempfile
        src = tempfile.mkdtemp(prefix="art-src-")
        run = wandb.init(project=PROJECT)
        art = wandb.Artifact(ARGS["name"], type="dataset", metadata={"offline": True})
        for path, data in ARGS["files"].items():
            local = os.path.join(src, path.replace("/", "__"))
            with open(local, "wb") as f:
                f.write(base64.b64decode(data))
            art.add_file(local, name=path)
        run.log_artifact(art, aliases=["offline"])
        run.log({"x": 1})
        report(id=run.id, run_dir=os.path.dirname(run.dir))
        run.finish()
        """,
        project,
        args={"name": name, "files": enc(files)},
        env=client.env(WANDB_MODE="offline"),
    )
    run_id, run_dir = res.result["id"], res.result["run_dir"]
    assert store.run(ENTITY, project, run_id) is None, "an offline run reached the server"
    assert collection(store, project, name) is None

    sync = client.cli("sync", "--project", project, run_dir, timeout=300)
    assert sync.returncode == 0, f"wandb sync failed\nstdout: {sync.stdout}\nstderr: {sync.stderr}"

    run = store.run(ENTITY, project, run_id)
    assert run is not None, f"no run after wandb sync:\n{sync.stdout}{sync.stderr}"
    assert run["state"] == "finished", run
    coll = collection(store, project, name)
    assert coll is not None, (
        f"no collection {name!r} after wandb sync; have {sorted(collections(store, project))}"
        f"\n{sync.stdout}{sync.stderr}"
    )
    assert coll["type_name"] == "dataset", coll
    rows = artifact_rows(store, coll["id"])
    assert len(rows) == 1, rows
    art = rows[0]
    assert art["state"] == "COMMITTED" and art["version_index"] == 0, art
    assert art["run_id"] == run["id"], f"lineage: artifact run_id {art['run_id']}, run {run['id']}"
    assert art["digest"] == files_digest(files), art
    assert json.loads(art["metadata"]) == {"offline": True}, art["metadata"]
    assert aliases(store, coll["id"]) == {"latest": art["id"], "offline": art["id"]}, (
        aliases(store, coll["id"])
    )
    assert_entries(store, art["id"], files, "synced artifact")
    assert_blobs_stored(store, files, "synced artifact")

    root = client.tmp / "dl-synced"
    client.run(
        """
        api = wandb.Api(timeout=60)
        art = api.artifact(ARGS["path"])
        report(root=art.download(root=ARGS["root"]), version=art.version)
        """,
        project,
        args={"path": f"{ENTITY}/{project}/{name}:offline", "root": str(root)},
        env=fresh_env(client, "sync-dl"),
    )
    assert read_tree(root) == files, "the synced artifact downloads back different bytes"


# --------------------------------------------------------------------------------------
# 8. Security (before the big multipart test so that a quick failure shows first)


def test_other_user_cannot_read_artifact(client, store, server):
    """A second user can neither read admin's artifact through wandb.Api() nor use it in a
    run; nor get its manifest, files or record a use of it by ID over raw GraphQL."""
    project = client.project()
    name = "private-" + secrets.token_hex(3)
    secret = unique("top secret")
    logged = log_artifact(client, project, name, {"secret.txt": secret})
    assert logged["version"] == "v0", logged
    art = the_version(store, project, name, 0)

    user = "mallory" + secrets.token_hex(3)
    key = server.add_user(user)
    path = f"{ENTITY}/{project}/{name}"
    res = client.run(
        """
        out = {}
        api = wandb.Api(timeout=60)
        for alias in ("v0", "latest"):
            try:
                a = api.artifact(f"{ARGS['path']}:{alias}")
                out[alias] = {"ok": a.version, "files": [f.name for f in a.files()]}
            except Exception as e:
                out[alias] = {"error": f"{type(e).__name__}: {e}"}
        try:
            out["exists"] = api.artifact_exists(f"{ARGS['path']}:v0")
        except Exception as e:
            out["exists"] = f"{type(e).__name__}: {e}"
        run = wandb.init(project=PROJECT)
        out["run_id"], out["entity"] = run.id, run.entity
        try:
            a = run.use_artifact(f"{ARGS['path']}:latest")
            out["use"] = {"ok": a.version, "root": a.download(root=ARGS["root"])}
        except Exception as e:
            out["use"] = {"error": f"{type(e).__name__}: {e}"}
        report(**out)
        run.finish()
        """,
        project,
        args={"path": path, "root": str(client.tmp / "mallory-dl")},
        env=fresh_env(client, "mallory", WANDB_API_KEY=key),
    )
    out = res.result
    assert out["entity"] == user, f"mallory's run went to entity {out['entity']!r}"
    for alias in ("v0", "latest"):
        assert "error" in out[alias], f"mallory read {path}:{alias} through wandb.Api(): {out}"
    # False, or an error (wandb 0.31 re-raises a GraphQL error here rather than answer False).
    assert out["exists"] is not True, "artifact_exists is True for mallory"
    assert "error" in out["use"], f"mallory used admin's artifact in a run: {out['use']}"
    assert not (client.tmp / "mallory-dl").exists() or not read_tree(client.tmp / "mallory-dl")
    mallory_run = store.run(user, project, out["run_id"])
    assert mallory_run is not None
    assert usage(store, mallory_run["id"]) == set(), "a use by mallory was recorded"

    # Raw GraphQL with admin's artifact ID or names: nothing comes back.
    leaks = []
    for what, query, variables in (
        ("ArtifactByID", ARTIFACT_BY_ID, {"id": logged["art_id"]}),
        ("FetchArtifactManifest", FETCH_ARTIFACT_MANIFEST, {"id": logged["art_id"]}),
        (
            "GetArtifactMembershipFileUrls",
            GET_FILE_URLS,
            {"entity": ENTITY, "project": project, "collection": name, "alias": "v0",
             "cursor": None, "perPage": 100},
        ),
        (
            "ArtifactType",
            ARTIFACT_TYPE,
            {"entity": ENTITY, "project": project, "name": f"{name}:latest"},
        ),
    ):
        status, body = gql(server, query, variables, key)
        text = json.dumps(body)
        if "/storage/" in text or logged["digest"] in text or '"dataset"' in text:
            leaks.append(f"{what}: HTTP {status} {text[:600]}")
        elif what in ("ArtifactByID", "FetchArtifactManifest"):
            if ((body.get("data") or {}).get("artifact")) is not None:
                leaks.append(f"{what} returned admin's artifact: {text[:600]}")
    assert not leaks, "mallory got admin's artifact over GraphQL:\n" + "\n".join(leaks)

    status, body = gql(
        server,
        USE_ARTIFACT,
        {"entityName": user, "projectName": project, "runName": out["run_id"],
         "artifactID": logged["art_id"]},
        key,
    )
    used = ((body.get("data") or {}).get("useArtifact") or {}).get("artifact")
    assert body.get("errors") or used is None, f"mallory's UseArtifact of admin's artifact: {body}"
    assert usage(store, mallory_run["id"]) == set(), "UseArtifact by mallory was recorded"
    assert store.query("SELECT * FROM artifact_usage WHERE artifact_id = ?", (art["id"],)) == []


def test_download_url_tampering(client, store, server):
    """Download URLs (GetArtifactMembershipFileUrls, FetchArtifactManifest) with a changed
    signature, expiry or object are refused with 403; the genuine ones work."""
    project = client.project()
    name = "urls-" + secrets.token_hex(3)
    files = {"a.txt": unique("url a"), "b.txt": unique("url b")}
    logged = log_artifact(client, project, name, files)
    assert logged["version"] == "v0", logged

    data = gql_ok(
        server,
        GET_FILE_URLS,
        {"entity": ENTITY, "project": project, "collection": name, "alias": "v0",
         "cursor": None, "perPage": 100},
    )
    coll = data["project"]["artifactCollection"]
    assert coll["__typename"] in ("ArtifactSequence", "ArtifactPortfolio", "ArtifactCollection")
    conn = coll["artifactMembership"]["files"]
    assert conn["pageInfo"]["hasNextPage"] is False, conn["pageInfo"]
    urls = {e["node"]["name"]: e["node"]["directUrl"] for e in conn["edges"]}
    assert set(urls) == set(files), f"file URLs for {sorted(urls)}"
    for path, content in files.items():
        status, body = get(server, urls[path])
        assert status == 200 and body == content, f"genuine GET {path}: {status} {body[:200]!r}"

    manifest_url = gql_ok(server, FETCH_ARTIFACT_MANIFEST, {"id": logged["art_id"]})[
        "artifact"
    ]["currentManifest"]["file"]["directUrl"]
    status, body = get(server, manifest_url)
    assert status == 200, f"genuine manifest GET: {status} {body[:300]!r}"
    manifest = json.loads(body)
    assert {p: e["digest"] for p, e in manifest["contents"].items()} == {
        p: b64md5(d) for p, d in files.items()
    }, manifest

    url = urls["a.txt"]
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert {"exp", "sig"} <= set(q), f"download URL has no exp/sig: {url}"
    sig, exp = q["sig"], int(q["exp"])
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    b_parts = urllib.parse.urlsplit(urls["b.txt"])
    a_parts = urllib.parse.urlsplit(url)
    assert a_parts.path != b_parts.path, "two different blobs share a download path"
    mq = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(manifest_url).query))
    bad = {
        "flipped-sig": with_query(url, sig=flipped),
        "reversed-sig": with_query(url, sig=sig[::-1]),
        "short-sig": with_query(url, sig=sig[:10]),
        "empty-sig": with_query(url, sig=""),
        "no-sig": with_query(url, sig=None),
        "expired-exp": with_query(url, exp=str(int(time.time()) - 10)),
        "zero-exp": with_query(url, exp="0"),
        "extended-exp": with_query(url, exp=str(exp + 3600)),
        "no-exp": with_query(url, exp=None),
        "a-sig-on-b": urllib.parse.urlunsplit(b_parts._replace(query=a_parts.query)),
        "manifest-flipped-sig": with_query(manifest_url, sig=mq.get("sig", "")[::-1] or "00"),
        "manifest-expired": with_query(manifest_url, exp=str(int(time.time()) - 10)),
        "manifest-sig-on-a": urllib.parse.urlunsplit(
            a_parts._replace(query=urllib.parse.urlsplit(manifest_url).query)
        ),
    }
    for what, bad_url in bad.items():
        status, body = get(server, bad_url)
        assert status == 403, f"{what}: GET {bad_url} → {status} {body[:200]!r}"
        assert files["a.txt"] not in body and files["b.txt"] not in body, what
    # A path that climbs out of the storage prefix is refused too, whatever the signature.
    status, _, body = request(
        server, "GET", a_parts.path.rsplit("/", 1)[0] + "/../../../cairn.db?" + a_parts.query
    )
    assert status in (400, 403, 404), f"dot-dot GET → {status} {body[:200]!r}"
    assert b"SQLite" not in body

    # A download URL is not an upload URL; the blob is unchanged.
    status, _ = put(server, url, b"overwritten")
    assert status == 403, f"PUT with a download URL → {status}"
    assert get(server, url) == (200, files["a.txt"])


def test_download_url_honours_range(client, store, server):
    """Files of 2 GiB and more are downloaded with parallel ranged GETs (`bytes=S-E`, and
    `bytes=S-` for the last part): a directUrl answers 206 with exactly
    those bytes. (The small version of the multipart download in test_multipart_large_file.)
    """
    project = client.project()
    name = "range-" + secrets.token_hex(3)
    data = secrets.token_bytes(10_000)
    logged = log_artifact(client, project, name, {"r.bin": data})
    assert logged["version"] == "v0", logged
    urls = gql_ok(
        server,
        GET_FILE_URLS,
        {"entity": ENTITY, "project": project, "collection": name, "alias": "v0",
         "cursor": None, "perPage": 100},
    )["project"]["artifactCollection"]["artifactMembership"]["files"]["edges"]
    (url,) = [e["node"]["directUrl"] for e in urls]
    target = target_of(server, url)
    for header, start, end in (("bytes=100-1099", 100, 1099), ("bytes=9000-", 9000, 9999)):
        status, headers, body = request(server, "GET", target, headers={"Range": header})
        assert status == 206, (
            f"GET with Range: {header} → {status} ({len(body)} bytes); a ranged download of"
            " a big artifact file needs 206 and the range only"
        )
        assert body == data[start : end + 1], f"Range {header}: wrong bytes ({len(body)})"
        assert headers.get("content-range") == f"bytes {start}-{end}/{len(data)}", headers
    # Without Range, the whole file.
    status, headers, body = request(server, "GET", target)
    assert status == 200 and body == data, status


BAD_NAMES = ["../x", "/etc/passwd", "a/../../b", "a\x00b", "..", ""]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_create_artifact_files_bad_names(client, store, server, bad):
    """CreateArtifactFiles with a path trick among good names is a GraphQL error naming it;
    the good files then upload and commit normally."""
    project = client.project()
    run = raw_run(server, project)
    good = {"good-before.txt": unique("before"), "sub/good-after.txt": unique("after")}
    name = "badfiles-" + secrets.token_hex(3)
    up = RawUpload(
        server, project, run, name, {p: (b64md5(d), len(d)) for p, d in good.items()}
    )
    bad_content = unique("refused")
    names = [
        ("good-before.txt", b64md5(good["good-before.txt"])),
        (bad, b64md5(bad_content)),
        ("sub/good-after.txt", b64md5(good["sub/good-after.txt"])),
    ]
    message = gql_error(server, *up.files_request(names))
    assert named_in(message, bad), f"the error does not name the file {bad!r}: {message!r}"
    assert hexmd5(bad_content) not in blobs(store, entity_id(store)), (
        "the refused file was announced as a blob"
    )

    # The good files alone go through, and the version commits with exactly them.
    up.upload_files(good)
    status, body = up.put_manifest()
    assert status in (200, 201, 204), f"manifest PUT: {status} {body[:300]!r}"
    status, reply = up.commit()
    assert status == 200 and not reply.get("errors"), f"CommitArtifact: {reply}"
    coll = collection(store, project, name)
    (row,) = artifact_rows(store, coll["id"])
    assert row["state"] == "COMMITTED" and row["version_index"] == 0, row
    assert_entries(store, row["id"], good, "raw upload")
    assert_blobs_stored(store, good, "raw upload")


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_manifest_bad_entry_names(client, store, server, bad):
    """A manifest whose entries include a path trick is refused (at its PUT or at
    CommitArtifact): the version is not committed and no such entry is stored."""
    project = client.project()
    run = raw_run(server, project)
    ok = unique("manifest ok")
    contents = {"ok.txt": (b64md5(ok), len(ok))}

    # Control: the same steps with a clean manifest commit.
    control = RawUpload(server, project, run, "control-" + secrets.token_hex(3), contents)
    control.upload_files({"ok.txt": ok})
    status, body = control.put_manifest()
    assert status in (200, 201, 204), f"control manifest PUT: {status} {body[:300]!r}"
    status, reply = control.commit()
    assert status == 200 and not reply.get("errors"), f"control CommitArtifact: {reply}"
    (crow,) = artifact_rows(store, collection(store, project, control.name)["id"])
    assert crow["state"] == "COMMITTED", crow

    # The bad entry points at stored bytes (ok.txt's), so only its name is wrong.
    name = "badmanifest-" + secrets.token_hex(3)
    up = RawUpload(server, project, run, name, dict(contents, **{bad: (b64md5(ok), len(ok))}))
    up.upload_files({"ok.txt": ok})
    put_status, put_body = up.put_manifest()
    assert put_status < 500, f"manifest PUT with {bad!r}: server error {put_status} {put_body!r}"
    if 200 <= put_status < 300:
        status, reply = up.commit()
        assert reply.get("errors"), (
            f"a manifest with the entry {bad!r} was committed: HTTP {status} {reply}"
        )
    else:
        assert 400 <= put_status < 500, f"manifest PUT → {put_status} {put_body[:300]!r}"
        up.commit()  # must not commit a version whose manifest never arrived
    coll = collection(store, project, name)
    rows = artifact_rows(store, coll["id"])
    assert all(r["state"] != "COMMITTED" for r in rows), f"committed with {bad!r}: {rows}"
    for r in rows:
        assert bad not in entries(store, r["id"]), f"entry {bad!r} stored"
    assert "latest" not in aliases(store, coll["id"]), aliases(store, coll["id"])


@pytest.mark.parametrize("bad", ["../x", "a/b", "a\x00b", ""], ids=repr)
def test_create_artifact_bad_collection_names(client, store, server, bad):
    """CreateArtifact with a collection name W&B does not allow is a GraphQL error and
    creates no collection."""
    project = client.project()
    run = raw_run(server, project)
    # Control: the same request with a good name creates a PENDING version.
    good = "good-name_1.0-" + secrets.token_hex(3)
    data = gql_ok(
        server, CREATE_ARTIFACT, {"input": create_artifact_input(project, run, good, "0" * 32)}
    )
    assert data["createArtifact"]["artifact"]["state"] == "PENDING", data
    before = collections(store, project)
    assert set(before) == {good}, before

    gql_error(
        server,
        CREATE_ARTIFACT,
        {"input": create_artifact_input(project, run, bad, manifest_digest({}))},
    )
    assert collections(store, project) == before, collections(store, project)


def test_log_artifact_with_other_type_refused(client, store, server):
    """ArtifactType answers the existing collection's type, so log_artifact with another
    type raises in the client; a raw CreateArtifact with another type is refused too."""
    project = client.project()
    name = "typed-" + secrets.token_hex(3)
    first = log_artifact(client, project, name, {"a.txt": unique("typed")})
    assert first["version"] == "v0", first

    data = gql_ok(
        server, ARTIFACT_TYPE, {"entity": ENTITY, "project": project, "name": f"{name}:latest"}
    )
    assert data["project"]["artifact"]["artifactType"]["name"] == "dataset", data
    data = gql_ok(
        server, ARTIFACT_TYPE, {"entity": ENTITY, "project": project, "name": "nosuch:latest"}
    )
    assert data["project"] is None or data["project"]["artifact"] is None, data

    res = client.run(
        """
        art = wandb.Artifact(ARGS["name"], type="model")
        with open("m.bin", "wb") as f:
            f.write(os.urandom(100))
        art.add_file("m.bin")
        run = wandb.init(project=PROJECT)
        try:
            run.log_artifact(art).wait()
            report(outcome="logged", version=art.version)
        except ValueError as e:
            report(outcome="refused", error=str(e))
        run.finish()
        """,
        project,
        args={"name": name},
    )
    assert res.result["outcome"] == "refused", (
        f"log_artifact with type 'model' for a 'dataset' collection: {res.result}"
    )
    assert "already exists with type 'dataset'" in res.result["error"], res.result

    coll = collection(store, project, name)
    assert coll["type_name"] == "dataset", coll
    assert len(artifact_rows(store, coll["id"])) == 1, artifact_rows(store, coll["id"])

    # The server does not rely on the client's check.
    run = raw_run(server, project)
    digest = manifest_digest({"m.bin": b64md5(b"x")})
    gql_error(
        server,
        CREATE_ARTIFACT,
        {"input": create_artifact_input(project, run, name, digest, type_="model")},
    )
    coll = collection(store, project, name)
    assert coll["type_name"] == "dataset", coll
    assert [r["state"] for r in artifact_rows(store, coll["id"])] == ["COMMITTED"], (
        artifact_rows(store, coll["id"])
    )


# --------------------------------------------------------------------------------------
# 7. A file of 2 GiB and more: multipart upload, ranged download

BIG_SIZE = (2 << 30) + (5 << 20)  # 2 GiB + 5 MiB: 21 parts of 100 MiB


# Alone: the server joins the 2 GiB inside the SDK's CompleteMultipartUploadArtifact call,
# which W&B's client gives 60 s; beside other tests on a 2-core machine it can take longer.
@pytest.mark.serial
def test_multipart_large_file(client, store, server):
    """A sparse 2 GiB + 5 MiB file: uploaded in parts, joined into one stored blob, no
    upload left over; a second run downloads it back with the same MD5."""
    project = client.project()
    name = "big-" + secrets.token_hex(3)
    src = client.tmp / "big.bin"
    root = client.tmp / "dl-big"
    try:
        with open(src, "wb") as f:
            f.write(secrets.token_bytes(1 << 20))  # unique head: no dedup with older blobs
            f.truncate(BIG_SIZE - (1 << 20))
            f.seek(0, os.SEEK_END)
            f.write(secrets.token_bytes(1 << 20))
        expected_md5, size = file_md5(src)
        assert size == BIG_SIZE

        res = client.run(
            """
            art = wandb.Artifact(ARGS["name"], type="dataset")
            # immutable + skip_cache: no staging or cache copy of 2 GiB.
            art.add_file(ARGS["path"], name="big.bin", policy="immutable", skip_cache=True)
            run = wandb.init(project=PROJECT)
            run.log_artifact(art)
            art.wait()
            report(run_id=run.id, art_id=art.id, version=art.version, size=art.size)
            run.finish()
            """,
            project,
            args={"name": name, "path": str(src)},
            timeout=1200,
        )
        assert res.result["version"] == "v0" and res.result["size"] == BIG_SIZE, res.result

        v0 = the_version(store, project, name, 0)
        assert v0["size"] == BIG_SIZE and v0["file_count"] == 1, v0
        (entry,) = entries(store, v0["id"]).values()
        assert entry["path"] == "big.bin" and entry["size"] == BIG_SIZE, entry
        expected_b64 = base64.b64encode(bytes.fromhex(expected_md5)).decode()
        assert entry["md5"] == expected_b64, entry
        blob = blobs(store, entity_id(store)).get(expected_md5)
        assert blob is not None, f"no blob {expected_md5}"
        assert blob["stored"] == 1 and blob["size"] == BIG_SIZE, blob
        left = store.query(
            "SELECT * FROM artifact_uploads WHERE md5_hex = ?", (expected_md5,)
        )
        assert left == [], f"multipart upload rows left after completion: {left}"
        all_left = store.query("SELECT upload_id, md5_hex FROM artifact_uploads")
        assert all_left == [], f"artifact_uploads is not empty: {all_left}"
        # With local storage, no part files are left behind either.
        uploads = [
            p
            for d in (server.data_dir / "files" / "artifacts").glob("*/uploads")
            for p in d.rglob("*")
            if p.is_file()
        ]
        assert not uploads, f"multipart parts left in storage: {uploads[:5]}"

        src.unlink()  # free the disk before the download (the sparse file takes ~2 MiB)
        res = client.run(
            """
            run = wandb.init(project=PROJECT)
            art = run.use_artifact(ARGS["name"] + ":latest")
            path = art.download(root=ARGS["root"], skip_cache=True)
            report(run_id=run.id, root=path, version=art.version)
            run.finish()
            """,
            project,
            args={"name": name, "root": str(root)},
            env=fresh_env(client, "big"),
            timeout=1200,
        )
        got = root / "big.bin"
        assert got.exists(), f"nothing downloaded: {sorted(p.name for p in root.glob('*'))}"
        got_md5, got_size = file_md5(got)
        assert got_size == BIG_SIZE, (
            f"downloaded {got_size} bytes, expected {BIG_SIZE} (the client fetches files of"
            " 2 GiB and more with parallel Range GETs: see test_download_url_honours_range)"
        )
        assert got_md5 == expected_md5, "the downloaded big file differs from the uploaded one"
        consumer = store.run(ENTITY, project, res.result["run_id"])
        assert usage(store, consumer["id"]) == {v0["id"]}
    finally:
        # Free the disk: the source, the download and anything big in the client's dirs.
        src.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        for p in client.tmp.rglob("*"):
            try:
                if p.is_file() and not p.is_symlink() and p.stat().st_size > (64 << 20):
                    p.unlink()
            except OSError:
                pass
