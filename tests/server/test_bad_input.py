"""Bad input over plain HTTP: malformed GraphQL and filestream bodies, wrong keys, oversized
bodies, forged storage URLs, file names with path tricks, other users' runs; and values the
real client sends that strict JSON lacks (NaN, Infinity).

Every bad request must get a clear error (a 4xx with `{"errors":[{"message":...}]}`, or a
GraphQL error at 200), never a 500, a hang or a crash; and the server must go on serving.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import secrets
import select
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pytest

from conftest import ENTITY, make_api_key

UPSERT_BUCKET = """
mutation UpsertBucket ($id: String, $name: String, $project: String, $entity: String, $groupName: String, $description: String, $displayName: String, $notes: String, $commit: String, $config: JSONString, $host: String, $debug: Boolean, $program: String, $repo: String, $jobType: String, $state: String, $sweep: String, $tags: [String!], $summaryMetrics: JSONString) {
\tupsertBucket(input: {id:$id,name:$name,groupName:$groupName,modelName:$project,entityName:$entity,description:$description,displayName:$displayName,notes:$notes,config:$config,commit:$commit,host:$host,debug:$debug,jobProgram:$program,jobRepo:$repo,jobType:$jobType,state:$state,sweep:$sweep,tags:$tags,summaryMetrics:$summaryMetrics}) {
\t\tbucket {
\t\t\tid
\t\t\tname
\t\t\tdisplayName
\t\t\tproject {
\t\t\t\tid
\t\t\t\tname
\t\t\t\tentity {
\t\t\t\t\tid
\t\t\t\t\tname
\t\t\t\t}
\t\t\t}
\t\t\thistoryLineCount
\t\t}
\t\tinserted
\t}
}
"""

CREATE_RUN_FILES = """
mutation CreateRunFiles ($entity: String!, $project: String!, $run: String!, $files: [String!]!) {
\tcreateRunFiles(input: {entityName:$entity,projectName:$project,runName:$run,files:$files}) {
\t\trunID
\t\tuploadHeaders
\t\tfiles {
\t\t\tname
\t\t\tuploadUrl
\t\t}
\t}
}
"""

RUN_FILES = """
query RunFiles($project: String!, $entity: String!, $name: String!, $fileNames: [String] = []) {
  project(name: $project, entityName: $entity) {
    run(name: $name) {
      files(names: $fileNames, first: 100) {
        edges { node { name directUrl sizeBytes md5 } }
      }
    }
  }
}
"""


# --------------------------------------------------------------------------------------
# Plain HTTP


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"HTTP {self.status}: body is not JSON: {self.body[:500]!r}")

    def error_message(self) -> str:
        """`errors[0].message` of a JSON error body (fails when there is none)."""
        body = self.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        assert isinstance(errors, list) and errors, f"HTTP {self.status}: no errors: {body}"
        message = errors[0].get("message")
        assert isinstance(message, str) and message.strip(), f"HTTP {self.status}: {body}"
        return message

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:600]!r})"


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"api:{key}".encode()).decode()


def http(
    server,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> Reply:
    """One HTTP/1.1 request on a fresh connection, over a raw socket.

    The body is sent in pieces; when the server answers before it has read all of it (an
    oversized body), sending stops and the answer is read. A reset after the answer is
    fine; an answer that never comes fails the test.
    """
    body = body or b""
    head = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    all_headers = {"Content-Length": str(len(body)), "Connection": "close"}
    all_headers.update(headers or {})
    head += [f"{k}: {v}" for k, v in all_headers.items()]
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    deadline = time.monotonic() + timeout
    received = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        view = memoryview(body)
        sent = 0
        try:
            while sent < len(body):
                readable, writable, _ = select.select([sock], [sock], [], 5)
                if readable:
                    break  # the server answered early
                if writable:
                    sent += sock.send(view[sent : sent + (256 << 10)])
                if time.monotonic() > deadline:
                    raise AssertionError(f"{method} {target}: could not send the body in time")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                received += chunk
                if _complete(received):
                    break
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError(
                f"{method} {target}: no complete answer within {timeout} s; got {received[:300]!r}"
            ) from None
    assert received, f"{method} {target}: the server closed the connection without answering"
    return _parse(received, f"{method} {target}")


def _split(raw: bytes) -> tuple[bytes, bytes] | None:
    i = raw.find(b"\r\n\r\n")
    return None if i < 0 else (raw[:i], raw[i + 4 :])


def _complete(raw: bytes) -> bool:
    parts = _split(raw)
    if parts is None:
        return False
    head, rest = parts
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(rest) >= int(v.strip())
    return False  # chunked or close-delimited: read to EOF


def _parse(raw: bytes, what: str) -> Reply:
    parts = _split(raw)
    assert parts is not None, f"{what}: incomplete answer {raw[:300]!r}"
    head, rest = parts
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        rest = rest[: int(headers["content-length"])]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        out, pos = b"", 0
        while True:
            end = rest.index(b"\r\n", pos)
            size = int(rest[pos:end].split(b";")[0], 16)
            if size == 0:
                break
            out += rest[end + 2 : end + 2 + size]
            pos = end + 2 + size + 2
        rest = out
    return Reply(status, headers, rest)


def graphql_raw(server, body: bytes, key: str | None = None, **kw) -> Reply:
    headers = {"Content-Type": "application/json"}
    if key is not False:
        headers["Authorization"] = basic(key or server.api_key)
    return http(server, "POST", "/graphql", body, headers, **kw)


def graphql(server, query: str, variables: dict | None = None, key: str | None = None) -> dict:
    """A well-formed GraphQL request; returns the JSON body (HTTP 200 asserted)."""
    body = {"query": query}
    if variables is not None:
        body["variables"] = variables
    reply = graphql_raw(server, json.dumps(body).encode(), key)
    assert reply.status == 200, reply
    return reply.json()


def filestream(server, path: str, body: bytes, key: str | None = None, **headers) -> Reply:
    h = {"Content-Type": "application/json", "Authorization": basic(key or server.api_key)}
    h.update(headers)
    return http(server, "POST", f"/files/{path}/file_stream", body, h)


def assert_alive(server) -> None:
    reply = http(server, "GET", "/healthz")
    assert reply.status == 200, f"/healthz after bad input: {reply}"
    assert server.proc.poll() is None, f"the server exited with {server.proc.returncode}"


def assert_client_error(reply: Reply, *statuses: int) -> str:
    """A 4xx JSON error (one of `statuses` when given); returns its message."""
    assert reply.status < 500, f"server error on bad input: {reply}"
    if statuses:
        assert reply.status in statuses, f"expected HTTP {statuses}, got {reply}"
    assert 400 <= reply.status < 500, f"expected a 4xx, got {reply}"
    return reply.error_message()


def assert_graphql_error(reply: Reply) -> str:
    """Refused with a message: a 4xx JSON error, or a GraphQL error at 200."""
    assert reply.status in (200, 400), f"expected 400 or a GraphQL error, got {reply}"
    return reply.error_message()


def new_run(server, project: str, name: str | None = None, key: str | None = None) -> dict:
    """Creates a run over GraphQL as the client does; returns the bucket."""
    name = name or secrets.token_hex(4)
    body = graphql(
        server,
        UPSERT_BUCKET,
        {"name": name, "project": project, "entity": None, "config": "{}", "host": "h"},
        key,
    )
    assert not body.get("errors"), body
    return body["data"]["upsertBucket"]["bucket"]


def create_run_files(server, project: str, run: str, files: list[str], key=None) -> dict:
    return graphql(
        server,
        CREATE_RUN_FILES,
        {"entity": ENTITY, "project": project, "run": run, "files": files},
        key,
    )


def put(server, url: str, data: bytes) -> Reply:
    parts = urllib.parse.urlsplit(url)
    assert parts.port == server.port, url
    target = parts.path + ("?" + parts.query if parts.query else "")
    return http(server, "PUT", target, data)


def get(server, url: str) -> Reply:
    parts = urllib.parse.urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    return http(server, "GET", target)


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


def history_line(step: int, **values: Any) -> str:
    return json.dumps({"_step": step, "_timestamp": time.time(), "_runtime": 0.1, **values})


@pytest.fixture(autouse=True)
def _server_log_on_failure(client):
    """Every test uses `client`, so a failure shows the server's log lines (conftest)."""


@pytest.fixture
def project(client) -> str:
    return client.project()


# --------------------------------------------------------------------------------------
# GraphQL


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"this is not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe{\x00", id="not-utf8"),
        pytest.param(b'[{"query": "{ viewer { id } }"}]', id="json-array"),
        pytest.param(b'"query"', id="json-string"),
        pytest.param(b"null", id="json-null"),
        pytest.param(b'{"query": 5}', id="query-not-string"),
        pytest.param(b'{"variables": {}}', id="no-query"),
        pytest.param(b'{"query": "{ viewer { id } }", "variables": "x"}', id="variables-string"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-json"),
        pytest.param(b'{"query": "{ viewer { id } }"', id="truncated"),
    ],
)
def test_graphql_malformed_request(server, body):
    reply = graphql_raw(server, body)
    message = assert_graphql_error(reply)
    assert len(message) < 2000, message
    assert_alive(server)


@pytest.mark.parametrize(
    "query, needle",
    [
        pytest.param("query { viewer { id ", None, id="syntax-unclosed"),
        pytest.param("mutation { ) }", None, id="syntax-bad-token"),
        pytest.param("{ viewer { noSuchField } }", "noSuchField", id="unknown-field"),
        pytest.param("{ noSuchRoot { id } }", "noSuchRoot", id="unknown-root"),
        pytest.param(
            "mutation { upsertBucket(input: {noSuchArg: 1}) { inserted } }",
            "noSuchArg",
            id="unknown-input-field",
        ),
        pytest.param('{ viewer(id: "x") { id } }', None, id="unknown-argument"),
        pytest.param("query A { viewer { id } } query A { viewer { id } }", None, id="dup-op"),
        pytest.param("{ viewer { ...Missing } }", "Missing", id="unknown-fragment"),
        pytest.param("fragment F on User { ...F } { viewer { ...F } }", None, id="fragment-cycle"),
        pytest.param("{ viewer " + "{ teams " * 5000 + "}" * 5001, None, id="deep-query"),
    ],
)
def test_graphql_bad_document(server, query, needle):
    reply = graphql_raw(server, json.dumps({"query": query}).encode())
    message = assert_graphql_error(reply)
    if needle:
        assert needle in message, f"the error does not name {needle!r}: {reply}"
    assert_alive(server)


def test_graphql_wide_query(server):
    """A valid but huge selection: answered (data or a limit error), not a crash."""
    query = "{ viewer { " + " ".join(f"a{i}: id" for i in range(20000)) + " } }"
    reply = graphql_raw(server, json.dumps({"query": query}).encode())
    assert reply.status in (200, 400), reply
    body = reply.json()
    assert body.get("data") or body.get("errors"), reply
    assert_alive(server)


def test_graphql_unknown_operation_name(server):
    body = {"query": "query A { viewer { id } }", "operationName": "B"}
    reply = graphql_raw(server, json.dumps(body).encode())
    assert_graphql_error(reply)


def test_graphql_bad_variables(server, project):
    # A JSONString that is not JSON, and a variable of the wrong type.
    reply = graphql_raw(
        server,
        json.dumps(
            {
                "query": UPSERT_BUCKET,
                "variables": {"name": "badconfig1", "project": project, "config": "{not json"},
            }
        ).encode(),
    )
    assert_graphql_error(reply)
    reply = graphql_raw(
        server,
        json.dumps(
            {"query": UPSERT_BUCKET, "variables": {"name": ["x"], "project": project}}
        ).encode(),
    )
    assert_graphql_error(reply)
    assert server.store.run(ENTITY, project, "badconfig1") is None


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param("wrong", id="wrong-key"),
        pytest.param(None, id="no-header"),
        pytest.param("Basic !!!not-base64!!!", id="bad-base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon").decode(), id="no-colon"),
        pytest.param("Bearer abc.def.ghi", id="bearer"),
        pytest.param("Basic " + base64.b64encode(b"api:\xff\xfe").decode(), id="not-utf8"),
        pytest.param("Basic " + base64.b64encode(b"api:").decode(), id="empty-key"),
    ],
)
def test_wrong_api_key(server, auth):
    headers = {"Content-Type": "application/json"}
    if auth == "wrong":
        headers["Authorization"] = basic(make_api_key())
    elif auth is not None:
        headers["Authorization"] = auth
    body = json.dumps({"query": "{ viewer { id username } }"}).encode()
    reply = http(server, "POST", "/graphql", body, headers)
    assert_client_error(reply, 401)
    # The filestream checks the key too, before anything else.
    reply = http(server, "POST", f"/files/{ENTITY}/p/r/file_stream", b"{}", headers)
    assert_client_error(reply, 401)
    # And a malformed body with a bad key is still a 401, not a parse error.
    reply = http(server, "POST", "/graphql", b"not json", headers)
    assert_client_error(reply, 401)
    assert_alive(server)


def test_graphql_body_too_large(server):
    # A valid JSON request of 33 MiB: the limit is 32 MiB.
    pad = "x" * (33 << 20)
    body = json.dumps({"query": "{ viewer { id } }", "variables": {"pad": pad}}).encode()
    too_large = graphql_raw(server, body, timeout=120)
    assert too_large.status == 413, too_large
    # Just under the limit is not refused for its size.
    pad = "x" * ((32 << 20) - 1024)
    body = json.dumps({"query": "{ viewer { id } }", "variables": {"pad": pad}}).encode()
    reply = graphql_raw(server, body, timeout=120)
    assert reply.status == 200, reply
    assert reply.json()["data"]["viewer"]["id"], reply
    assert_alive(server)
    # The 413 is a JSON error like every other one.
    assert_client_error(too_large, 413)


# --------------------------------------------------------------------------------------
# Filestream


@pytest.mark.parametrize(
    "body, headers",
    [
        pytest.param(b"this is not json", {}, id="not-json"),
        pytest.param(b"[1, 2]", {}, id="json-array"),
        pytest.param(b'{"files": "x"}', {}, id="files-not-object"),
        pytest.param(
            b'{"files": {"wandb-history.jsonl": {"content": ["{}"]}}}', {}, id="no-offset"
        ),
        pytest.param(
            b'{"files": {"wandb-history.jsonl": {"offset": -1, "content": ["{}"]}}}',
            {},
            id="negative-offset",
        ),
        pytest.param(
            b'{"files": {"wandb-history.jsonl": {"offset": 1e300, "content": ["{}"]}}}',
            {},
            id="huge-offset",
        ),
        pytest.param(
            b'{"files": {"wandb-history.jsonl": {"offset": 9223372036854775807,'
            b' "content": ["{}", "{}"]}}}',
            {},
            id="max-offset",
        ),
        pytest.param(
            b'{"files": {"wandb-history.jsonl": {"offset": 0, "content": ["not an object"]}}}',
            {},
            id="history-line-not-object",
        ),
        pytest.param(
            b'{"files": {"wandb-history.jsonl": {"offset": 0, "content": [1]}}}',
            {},
            id="history-line-not-string",
        ),
        pytest.param(b'{"exitcode": "zero", "complete": true}', {}, id="exitcode-string"),
        pytest.param(b"not gzip at all", {"Content-Encoding": "gzip"}, id="bad-gzip"),
    ],
)
def test_filestream_malformed_body(server, project, body, headers):
    bucket = new_run(server, project)
    path = f"{ENTITY}/{project}/{bucket['name']}"
    message = assert_client_error(filestream(server, path, body, **headers), 400)
    assert len(message) < 2000, message
    # Nothing was written, and the run still takes good data.
    row = server.store.run(ENTITY, project, bucket["name"])
    assert server.store.history_rows(row["id"]) == []
    assert row["state"] == "running", row
    good = {"files": {"wandb-history.jsonl": {"offset": 0, "content": [history_line(0, x=1)]}}}
    reply = filestream(server, path, json.dumps(good).encode())
    assert reply.status == 200, reply
    assert [h["x"] for h in server.store.history(row["id"])] == [1]


def test_filestream_gzip_bomb(server, project):
    bucket = new_run(server, project)
    path = f"{ENTITY}/{project}/{bucket['name']}"
    # 300 MiB of spaces around an empty object: fine JSON, too large once decompressed.
    text = b" " * (300 << 20) + b"{}"
    bomb = gzip.compress(text, compresslevel=9)
    reply = filestream(server, path, bomb, **{"Content-Encoding": "gzip"})
    assert_client_error(reply, 413, 400)
    assert_alive(server)


def test_filestream_body_too_large(server, project):
    bucket = new_run(server, project)
    path = f"{ENTITY}/{project}/{bucket['name']}"
    line = history_line(0, pad="x" * (65 << 20))
    body = json.dumps({"files": {"wandb-history.jsonl": {"offset": 0, "content": [line]}}})
    too_large = filestream(server, path, body.encode())
    assert too_large.status == 413, too_large
    row = server.store.run(ENTITY, project, bucket["name"])
    assert server.store.history_rows(row["id"]) == []
    assert_alive(server)
    # The 413 is a JSON error like every other one.
    assert_client_error(too_large, 413)


def test_filestream_unknown_run(server, project):
    new_run(server, project)
    for path in (
        f"{ENTITY}/{project}/nosuchrun",
        f"{ENTITY}/nosuchproject-{secrets.token_hex(4)}/nosuchrun",
        f"nosuchentity-{secrets.token_hex(4)}/{project}/nosuchrun",
        f"{ENTITY}/{project}/..%2F..%2Fx",
        f"{ENTITY}/{project}/%00",
    ):
        reply = filestream(server, path, b"{}")
        assert_client_error(reply, 404, 400)
    assert_alive(server)


def test_filestream_other_users_run(server, project):
    """mallory (a plain user) may not stream into, or get upload URLs for, admin's run."""
    bucket = new_run(server, project)
    path = f"{ENTITY}/{project}/{bucket['name']}"
    mallory = server.add_user(f"mallory{secrets.token_hex(3)}")
    body = {
        "files": {"wandb-history.jsonl": {"offset": 0, "content": [history_line(0, x=666)]}},
        "complete": True,
        "exitcode": 1,
    }
    reply = filestream(server, path, json.dumps(body).encode(), key=mallory)
    assert_client_error(reply, 403, 404)
    row = server.store.run(ENTITY, project, bucket["name"])
    assert server.store.history_rows(row["id"]) == [], "mallory's history landed"
    assert row["state"] == "running", row

    reply = create_run_files(server, project, bucket["name"], ["evil.txt"], key=mallory)
    assert reply.get("errors"), f"mallory got upload URLs for admin's run: {reply}"
    assert not (reply.get("data") or {}).get("createRunFiles"), reply
    assert "evil.txt" not in server.store.files(row["id"])

    # Nor rename it through UpsertBucket with its id.
    reply = graphql(
        server, UPSERT_BUCKET, {"id": bucket["id"], "displayName": "pwned"}, key=mallory
    )
    assert reply.get("errors"), f"mallory updated admin's run: {reply}"
    assert server.store.run(ENTITY, project, bucket["name"])["display_name"] != "pwned"


# --------------------------------------------------------------------------------------
# Signed storage URLs


def test_signed_url_tampering(server, project):
    bucket = new_run(server, project)
    run = bucket["name"]
    other = new_run(server, project)["name"]
    reply = create_run_files(server, project, run, ["target.txt"])
    assert not reply.get("errors"), reply
    (entry,) = reply["data"]["createRunFiles"]["files"]
    url = entry["uploadUrl"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert {"exp", "sig"} <= set(query), f"upload URL has no exp/sig: {url}"
    sig, exp = query["sig"], int(query["exp"])
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    # The same URL for another run's file, signed for this one.
    other_url = url.replace(
        f"/runs/{server.store.run(ENTITY, project, run)['id']}/",
        f"/runs/{server.store.run(ENTITY, project, other)['id']}/",
    )
    assert other_url != url
    bad_urls = {
        "flipped-sig": with_query(url, sig=flipped),
        "short-sig": with_query(url, sig=sig[:10]),
        "non-hex-sig": with_query(url, sig="z" * len(sig)),
        "empty-sig": with_query(url, sig=""),
        "no-sig": with_query(url, sig=None),
        "expired-exp": with_query(url, exp=str(int(time.time()) - 10)),
        "zero-exp": with_query(url, exp="0"),
        "extended-exp": with_query(url, exp=str(exp + 3600)),
        "non-numeric-exp": with_query(url, exp="soon"),
        "no-exp": with_query(url, exp=None),
        "other-key": other_url,
        "other-name": url.replace("target.txt", "other.txt"),
        "dotdot-name": url.replace("target.txt", "../target.txt"),
    }
    for what, bad in bad_urls.items():
        reply = put(server, bad, b"forged bytes")
        assert reply.status == 403, f"{what}: PUT {bad} → {reply}"
        assert_client_error(reply, 403)
    # A signed PUT URL is not a GET URL.
    reply = get(server, url)
    assert reply.status == 403, f"GET with a PUT signature → {reply}"
    assert_alive(server)

    row = server.store.run(ENTITY, project, run)
    files = server.store.files(row["id"])
    assert files["target.txt"]["uploaded"] == 0, f"a forged PUT stored the file: {files}"
    assert "other.txt" not in files

    # The genuine URL still works, and the download URL gives the bytes back; tampered
    # download URLs do not.
    data = b"genuine bytes\n" * 100
    reply = put(server, url, data)
    assert reply.status in (200, 201, 204), reply
    listing = graphql(
        server,
        RUN_FILES,
        {"project": project, "entity": ENTITY, "name": run, "fileNames": ["target.txt"]},
    )
    edges = listing["data"]["project"]["run"]["files"]["edges"]
    assert [e["node"]["name"] for e in edges] == ["target.txt"], listing
    node = edges[0]["node"]
    assert node["sizeBytes"] == len(data)
    download = node["directUrl"]
    reply = get(server, download)
    assert reply.status == 200 and reply.body == data, reply
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(download).query))
    for what, bad in {
        "flipped-sig": with_query(download, sig=q["sig"][::-1]),
        "expired-exp": with_query(download, exp=str(int(time.time()) - 10)),
        "no-sig": with_query(download, sig=None),
        "other-name": download.replace("target.txt", "wandb-metadata.json"),
    }.items():
        reply = get(server, bad)
        assert reply.status == 403, f"{what}: GET {bad} → {reply}"
        assert data not in reply.body
    # A download URL is not an upload URL.
    reply = put(server, download, b"overwrite")
    assert reply.status == 403, reply
    assert get(server, download).body == data


# --------------------------------------------------------------------------------------
# File names


BAD_NAMES = [
    "../x",
    "/etc/passwd",
    "a/../../b",
    "a\x00b",
    "..",
    ".",
    "",
    "a//b",
    "./a",
    "a/./b",
    "a/",
    "..\\..\\x",
    "x" * 2000,
]


def named_in(message: str, name: str) -> bool:
    """Whether an error message names `name` (NUL written as \\0, \\u0000 or \\x00)."""
    if not name:
        return "empty" in message.lower() or '""' in message
    if len(name) > 100:
        return name[:40] in message or "long" in message.lower()
    forms = {name, json.dumps(name)[1:-1], name.replace("\x00", "\\0")}
    forms.add(name.replace("\x00", "\\x00"))
    forms.add(name.replace("\\", "\\\\"))
    return any(f in message for f in forms)


@pytest.mark.parametrize("bad", BAD_NAMES, ids=lambda n: repr(n)[:20])
def test_create_run_files_path_tricks(server, project, bad):
    bucket = new_run(server, project)
    run = bucket["name"]
    row = server.store.run(ENTITY, project, run)

    reply = create_run_files(server, project, run, ["good-before.txt", bad, "good-after.txt"])
    assert reply.get("errors"), f"{bad!r} was accepted: {reply}"
    message = reply["errors"][0]["message"]
    assert named_in(message, bad), f"the error does not name the file {bad!r}: {message!r}"
    urls = [
        f["uploadUrl"]
        for f in ((reply.get("data") or {}).get("createRunFiles") or {}).get("files", [])
    ]
    assert all(bad not in u for u in urls), urls
    assert bad not in server.store.files(row["id"])

    # A later request for good files works, and their bytes land.
    reply = create_run_files(server, project, run, ["good-before.txt", "sub/good-after.txt"])
    assert not reply.get("errors"), reply
    for f in reply["data"]["createRunFiles"]["files"]:
        r = put(server, f["uploadUrl"], f["name"].encode())
        assert r.status in (200, 201, 204), r
    files = server.store.files(row["id"])
    assert files["good-before.txt"]["uploaded"] == 1
    assert files["sub/good-after.txt"]["uploaded"] == 1
    assert set(files) <= {"good-before.txt", "good-after.txt", "sub/good-after.txt"}, files

    # Nothing was written outside the server's storage folder.
    root = server.data_dir.parent
    for name in ("x", "b", "passwd"):
        stray = [p for p in root.rglob(name) if p.is_file()]
        assert not stray, f"files written outside the storage: {stray}"


ODD_BUT_FINE = [
    "weird name ü ✓.txt",
    "pct%2F..%2Fx.txt",
    "q?x=1&sig=0#frag.txt",
    "media/images/step 1/a+b.png",
    "...txt",
    "a..b/..c",
    "-leading-dash",
]


def test_odd_file_names_round_trip(server, project):
    """Names that look like tricks but are plain relative paths are stored under that name."""
    bucket = new_run(server, project)
    run = bucket["name"]
    reply = create_run_files(server, project, run, ODD_BUT_FINE)
    assert not reply.get("errors"), reply
    files = reply["data"]["createRunFiles"]["files"]
    assert [f["name"] for f in files] == ODD_BUT_FINE
    for f in files:
        r = put(server, f["uploadUrl"], f["name"].encode() + b"\n")
        assert r.status in (200, 201, 204), (f["name"], r)
    listing = graphql(server, RUN_FILES, {"project": project, "entity": ENTITY, "name": run})
    nodes = {
        e["node"]["name"]: e["node"] for e in listing["data"]["project"]["run"]["files"]["edges"]
    }
    assert set(nodes) == set(ODD_BUT_FINE), sorted(nodes)
    for name, node in nodes.items():
        r = get(server, node["directUrl"])
        assert r.status == 200 and r.body == name.encode() + b"\n", (name, r)


# --------------------------------------------------------------------------------------
# Odd values


def test_nul_and_control_characters(server, project):
    """NUL and other control characters in run fields, console and history: stored, or
    refused with a message that says why; never a server error. Problems are collected so
    that one failure shows every entry point."""
    problems = []
    run = "nulrun" + secrets.token_hex(3)
    fields = {
        "displayName": "nul\x00name\x01\x7f",
        "notes": "notes\x00here",
        "tags": ["t\x00ag"],
        "host": "h\x00st",
        "config": json.dumps({"k": {"value": "v\x00v"}}),
    }
    for field, value in fields.items():
        name = f"{run}-{field.lower()}"
        reply = graphql_raw(
            server,
            json.dumps(
                {
                    "query": UPSERT_BUCKET,
                    "variables": {"name": name, "project": project, field: value},
                }
            ).encode(),
        )
        body = reply.json() if reply.status < 500 else {}
        if reply.status != 200 or (body.get("errors") and "internal" in json.dumps(body).lower()):
            problems.append(f"UpsertBucket with a NUL in {field}: {reply}")
        elif not body.get("errors"):
            stored = server.store.run(ENTITY, project, name)
            column = {"displayName": "display_name"}.get(field, field)
            if field != "config" and stored[column] != value:
                problems.append(f"{field} stored as {stored[column]!r}, sent {value!r}")
            if field == "config" and stored["config"]["k"] != {"value": "v\x00v"}:
                problems.append(f"config stored as {stored['config']!r}")

    bucket = new_run(server, project, run)
    path = f"{ENTITY}/{project}/{bucket['name']}"
    row = server.store.run(ENTITY, project, bucket["name"])
    chunks = {
        "wandb-history.jsonl": {"offset": 0, "content": [history_line(0, s="a\x00b")]},
        "wandb-summary.json": {"offset": 0, "content": [json.dumps({"s": "a\x00b"})]},
        "output.log": {"offset": 0, "content": ["2026-01-01T00:00:00.000000 out\x00put\x1b[0m"]},
    }
    for name, chunk in chunks.items():
        reply = filestream(server, path, json.dumps({"files": {name: chunk}}).encode())
        if reply.status == 400:
            reply.error_message()
        elif reply.status != 200:
            problems.append(f"filestream {name} with a NUL: {reply}")
    row = server.store.run(ENTITY, project, bucket["name"])
    history = server.store.history(row["id"])
    if history and [h["s"] for h in history] != ["a\x00b"]:
        problems.append(f"history stored as {history}")
    if row["summary"] and row["summary"].get("s") != "a\x00b":
        problems.append(f"summary stored as {row['summary']}")
    console = server.store.console(row["id"])
    if console and not ("out" in console[0] and "put" in console[0]):
        problems.append(f"console stored as {console}")
    assert not problems, "\n".join(problems)
    assert_alive(server)


def test_console_nul_from_the_client(client, store):
    """A program that prints a NUL byte: the real client streams it as is; the run's data
    must still land (a refused batch is retried forever and stalls the whole stream)."""
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        print("before nul", flush=True)
        print("a\\x00b binary-ish \\x01\\x1b[31mred\\x1b[0m", flush=True)
        time.sleep(2)
        for i in range(5):
            run.log({"i": i})
        print("after nul", flush=True)
        report(id=run.id)
        run.finish()
        """,
        project,
    )
    row = store.run(ENTITY, project, res.result["id"])
    assert row["state"] == "finished", row
    assert [h["i"] for h in store.history(row["id"])] == list(range(5))
    console = store.console(row["id"])
    text = "\n".join(console)
    assert "before nul" in text and "after nul" in text, console
    assert any("binary-ish" in line for line in console), console


def test_history_nan_and_infinity_from_the_client(client, store):
    """NaN and ±Infinity logged by the real client land and read back through wandb.Api()."""
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        run.log({"x": float("nan"), "y": float("inf"), "z": float("-inf"), "ok": 1.5})
        run.log({"x": 2.0, "y": 3.0, "z": 4.0, "ok": 2.5})
        report(id=run.id)
        run.finish()
        """,
        project,
    )
    run_id = res.result["id"]
    row = store.run(ENTITY, project, run_id)
    assert row["state"] == "finished", row
    history = store.history(row["id"])
    assert len(history) == 2, history
    assert math.isnan(history[0]["x"]) and history[0]["y"] == math.inf, history
    assert history[0]["z"] == -math.inf and history[1]["x"] == 2.0, history

    r = client.run(
        """
        import math
        def enc(v):
            # NaN and Infinity as W&B's API spells them in history: numbers or strings.
            if isinstance(v, float) and not math.isfinite(v):
                return {"float": repr(v)}
            return v
        api = wandb.Api(timeout=60)
        run = api.run(ARGS["path"])
        rows = run.history(pandas=False)
        scanned = list(run.scan_history())
        report(
            history=[{k: enc(v) for k, v in row.items()} for row in rows],
            scanned=[{k: enc(v) for k, v in row.items()} for row in scanned],
            summary={k: enc(run.summary.get(k)) for k in ("x", "y", "z", "ok")},
        )
        """,
        project,
        args={"path": f"{ENTITY}/{project}/{run_id}"},
    ).result

    nan = ({"float": "nan"}, "NaN")
    inf = ({"float": "inf"}, "Infinity")
    ninf = ({"float": "-inf"}, "-Infinity")
    for what in ("history", "scanned"):
        rows = sorted(r[what], key=lambda h: h["_step"])
        assert [h["_step"] for h in rows] == [0, 1], rows
        first, second = rows
        assert first["x"] in nan, f"{what}: x = {first['x']!r}"
        assert first["y"] in inf, f"{what}: y = {first['y']!r}"
        assert first["z"] in ninf, f"{what}: z = {first['z']!r}"
        assert first["ok"] == 1.5
        assert (second["x"], second["y"], second["z"], second["ok"]) == (2.0, 3.0, 4.0, 2.5)
    assert r["summary"] == {"x": 2.0, "y": 3.0, "z": 4.0, "ok": 2.5}, r["summary"]


# --------------------------------------------------------------------------------------
# Afterwards


def test_server_still_serves_after_bad_input(client, store):
    """Run last in this file: the server is alive and a normal run logs fine."""
    assert_alive(client.server)
    project = client.project()
    res = client.run(
        """
        run = wandb.init(project=PROJECT, config={"lr": 0.1})
        for i in range(10):
            run.log({"loss": 1.0 / (i + 1)})
        print("still fine", flush=True)
        report(id=run.id)
        run.finish()
        """,
        project,
    )
    row = store.run(ENTITY, project, res.result["id"])
    assert row["state"] == "finished" and row["exitcode"] == 0, row
    assert [h["loss"] for h in store.history(row["id"])] == [1.0 / (i + 1) for i in range(10)]
    assert any("still fine" in line for line in store.console(row["id"]))
    assert row["config"]["lr"] == {"value": 0.1}
    assert_alive(client.server)
