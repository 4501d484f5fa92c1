"""The web UI's JSON API (`/api/…`, crates/cairn-server/ui/README.md) over plain HTTP: sign-in,
the session cookie and its CSRF rule, the listings the pages read, and above all the chart
series reduction — a spike must survive any reduction and zoom, a reduced series must fit
its budget, and every point it returns must be a real, unaltered point of the run.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pytest

import seed
from conftest import ADMIN_PASSWORD, ENTITY


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"HTTP {self.status}: not JSON: {self.body[:300]!r}") from None

    def __repr__(self) -> str:
        return f"HTTP {self.status} {self.body[:400]!r}"


def request(ui_server, method: str, path: str, body: Any = None, *, key: str | None = None,
            cookie: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if key is not None:
        h["Authorization"] = "Basic " + base64.b64encode(f"api:{key}".encode()).decode()
    if cookie is not None:
        h["Cookie"] = cookie
    conn = http.client.HTTPConnection("127.0.0.1", ui_server.server.port, timeout=120)
    try:
        conn.request(method, path, data, h)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def get(ui_server, path: str, **kw) -> Any:
    """GET with the admin API key; asserts 200 and returns the JSON."""
    kw.setdefault("key", ui_server.api_key)
    reply = request(ui_server, "GET", path, **kw)
    assert reply.status == 200, f"GET {path}: {reply}"
    return reply.json()


def assert_error(reply: Reply, status: int, what: str) -> None:
    assert reply.status == status, f"{what}: expected HTTP {status}, got {reply}"
    body = reply.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (
        f"{what}: the error body is not {{\"error\": \"message\"}}: {body}"
    )


def session_cookie(reply: Reply) -> tuple[str, str]:
    """(`cairn_session=…` to send back, the full Set-Cookie header)."""
    for header in reply.headers.get_all("Set-Cookie") or []:
        if header.startswith("cairn_session="):
            return header.split(";", 1)[0], header
    raise AssertionError(f"no cairn_session cookie set: {reply.headers.get_all('Set-Cookie')}")


def require_password(ui_server) -> None:
    if ui_server.password_error:
        pytest.fail(f"the admin password could not be set: {ui_server.password_error}")


# --------------------------------------------------------------------------------------
# Sign-in, the session cookie, CSRF


def test_unauthenticated_is_401(ui_server):
    for path in ("/api/projects", "/api/me", f"/api/projects/{ENTITY}/{seed.DEMO}/runs"):
        assert_error(request(ui_server, "GET", path), 401, f"GET {path} without credentials")
    assert_error(
        request(ui_server, "GET", "/api/projects", key="local-" + "0" * 40),
        401,
        "GET /api/projects with an unknown API key",
    )


def test_password_login_cookie_and_csrf(ui_server, seeded):
    require_password(ui_server)
    bad = request(ui_server, "POST", "/api/login", {"username": ENTITY, "password": "wrong password"})
    assert bad.status in (400, 401, 403), f"a wrong password: {bad}"
    assert not [c for c in bad.headers.get_all("Set-Cookie") or [] if re.match(r"cairn_session=[^;]", c)], (
        f"a wrong password set a session cookie: {bad.headers.get_all('Set-Cookie')}"
    )

    reply = request(ui_server, "POST", "/api/login", {"username": ENTITY, "password": ADMIN_PASSWORD})
    assert reply.status == 200, f"POST /api/login with the admin password: {reply}"
    body = reply.json()
    assert body.get("user", {}).get("name") == ENTITY, body
    assert body["user"].get("admin") is True, body
    csrf = body.get("csrf")
    assert isinstance(csrf, str) and len(csrf) >= 16, f"no usable csrf token: {body}"
    cookie, header = session_cookie(reply)
    attrs = header.lower()
    assert "httponly" in attrs, f"the session cookie is not HttpOnly: {header}"
    assert "samesite=strict" in attrs, f"the session cookie is not SameSite=Strict: {header}"

    me = get(ui_server, "/api/me", key=None, cookie=cookie)
    assert me["user"]["name"] == ENTITY and me["csrf"] == csrf, me
    projects = get(ui_server, "/api/projects", key=None, cookie=cookie)
    assert {p["name"] for p in projects["projects"]} >= set(seeded.expectations()["projects"])

    # A cookie-authenticated POST needs the session's CSRF token.
    assert_error(request(ui_server, "POST", "/api/logout", {}, cookie=cookie), 403,
                 "POST /api/logout with the cookie but no X-CSRF-Token")
    assert_error(
        request(ui_server, "POST", "/api/logout", {}, cookie=cookie,
                headers={"X-CSRF-Token": "wrong-" + csrf}),
        403,
        "POST /api/logout with a wrong X-CSRF-Token",
    )
    # The rejected POSTs changed nothing: still signed in.
    get(ui_server, "/api/me", key=None, cookie=cookie)

    out = request(ui_server, "POST", "/api/logout", {}, cookie=cookie,
                  headers={"X-CSRF-Token": csrf})
    assert out.status == 200, f"POST /api/logout with the CSRF token: {out}"
    assert_error(request(ui_server, "GET", "/api/me", cookie=cookie), 401,
                 "GET /api/me with the cookie of a signed-out session")


def test_api_key_login(ui_server, seeded):
    bad = request(ui_server, "POST", "/api/login", {"apiKey": "local-" + "1" * 40})
    assert bad.status in (400, 401, 403), f"an unknown API key: {bad}"
    reply = request(ui_server, "POST", "/api/login", {"apiKey": ui_server.api_key})
    assert reply.status == 200, f"POST /api/login with the admin API key: {reply}"
    assert reply.json()["user"]["name"] == ENTITY
    cookie, _ = session_cookie(reply)
    assert get(ui_server, "/api/me", key=None, cookie=cookie)["user"]["name"] == ENTITY


# --------------------------------------------------------------------------------------
# Listings


def test_projects_and_run_counts(ui_server, seeded):
    projects = {p["name"]: p for p in get(ui_server, "/api/projects")["projects"]}
    counts = {seed.DEMO: 3, seed.STREAM: 2, seed.MANY: seed.MANY_RUNS}
    for name, count in counts.items():
        assert name in projects, f"project {name} missing from /api/projects: {sorted(projects)}"
        assert projects[name]["entity"] == ENTITY, projects[name]
        assert projects[name]["runCount"] == count, projects[name]


def test_runs_listing(ui_server, seeded):
    runs = get(ui_server, f"/api/projects/{ENTITY}/{seed.MANY}/runs")["runs"]
    assert len(runs) == seed.MANY_RUNS
    assert len({r["name"] for r in runs}) == seed.MANY_RUNS
    created = [r["createdAt"] for r in runs]
    assert created == sorted(created, reverse=True), "runs are not newest first"

    demo = {r["name"]: r for r in get(ui_server, f"/api/projects/{ENTITY}/{seed.DEMO}/runs")["runs"]}
    assert set(demo) == {seeded.main, seeded.other, seeded.rusty}, sorted(demo)
    main = demo[seeded.main]
    assert main["displayName"] == seeded.main_name, main
    assert main["state"] == "finished", main
    assert main["tags"] == seed.MAIN_TAGS, main
    assert main["group"] == seed.MAIN_GROUP, main
    assert main["jobType"] == "train", main
    assert main["config"].get("lr") == seed.MAIN_CONFIG["lr"], main["config"]
    assert main["config"].get("optimizer.name") == "adam", main["config"]
    assert main["config"].get("optimizer.beta1") == 0.9, main["config"]
    assert not any(k.startswith("_") for k in main["config"]), main["config"]
    expected = seeded.expectations()["demo"]["main"]["summary"]
    for key, value in expected.items():
        assert main["summary"].get(key) == value, (key, main["summary"])


def test_run_detail(ui_server, seeded):
    base = f"/api/projects/{ENTITY}/{seed.DEMO}/runs"
    main = get(ui_server, f"{base}/{seeded.main}")
    for key in ("train/loss", "val/acc", "spiky"):
        assert key in main["metrics"], f"{key} not in metrics {main['metrics']}"
    assert main["metrics"] == sorted(main["metrics"]), main["metrics"]
    assert main["historyLines"] == seed.MAIN_STEPS, main["historyLines"]
    assert main["logLines"] == len(seeded.expectations()["demo"]["main"]["console"])
    names = {f["name"] for f in main["files"]}
    assert names >= {"wandb-metadata.json", "config.yaml", "output.log"}, names
    assert names == set(seeded.main_files), (names, seeded.main_files)
    outputs = [a["name"] for a in main["artifacts"]["output"]]
    assert f"{seeded.artifact}:v0" in outputs, main["artifacts"]
    other = get(ui_server, f"{base}/{seeded.other}")
    inputs = [a["name"] for a in other["artifacts"]["input"]]
    assert f"{seeded.artifact}:v0" in inputs, other["artifacts"]

    config = next(f for f in main["files"] if f["name"] == "config.yaml")
    assert config["url"] == f"{base}/{seeded.main}/files/config.yaml", config
    reply = request(ui_server, "GET", config["url"], key=ui_server.api_key)
    assert reply.status == 200, reply
    assert b"batch_size" in reply.body, reply
    reply = request(ui_server, "GET", config["url"] + "?download=1", key=ui_server.api_key)
    assert reply.status == 200, reply
    disposition = reply.headers.get("Content-Disposition", "")
    assert disposition.startswith("attachment"), f"?download=1: Content-Disposition {disposition!r}"


def test_not_found_is_json(ui_server, seeded):
    base = f"/api/projects/{ENTITY}/{seed.DEMO}/runs"
    for path in (f"{base}/no-such-run", f"{base}/{seeded.main}/files/no-such-file.txt",
                 f"/api/projects/{ENTITY}/no-such-project/runs", "/api/no-such-route"):
        assert_error(request(ui_server, "GET", path, key=ui_server.api_key), 404, f"GET {path}")


def test_console_search(ui_server, seeded):
    base = f"/api/projects/{ENTITY}/{seed.DEMO}/runs/{seeded.main}/console"
    every = get(ui_server, base)
    expected = seeded.expectations()["demo"]["main"]["console"]
    assert every["total"] == len(expected), every
    assert [line["text"] for line in every["lines"]] == expected, every
    found = get(ui_server, base + "?q=" + urllib.parse.quote("EPOCH 3"))
    assert [line["text"] for line in found["lines"]] == ["hello from wandb epoch 3"], found


def test_artifacts_listing(ui_server, seeded):
    colls = get(ui_server, f"/api/projects/{ENTITY}/{seed.DEMO}/artifacts")["collections"]
    coll = next((c for c in colls if c["name"] == seeded.artifact), None)
    assert coll is not None, f"no collection {seeded.artifact}: {colls}"
    assert coll["type"] == "dataset", coll
    (version,) = coll["versions"]
    assert version["version"] == "v0" and "latest" in version["aliases"], version
    assert version["createdBy"] == seeded.main, version
    assert version["usedBy"] == [seeded.other], version
    assert version["fileCount"] == 2, version
    detail = get(ui_server, f"/api/artifacts/{version['id']}")
    assert {f["path"] for f in detail["files"]} == {"data.csv", "README.md"}, detail
    assert detail["collection"] == seeded.artifact and detail["project"] == seed.DEMO, detail


# --------------------------------------------------------------------------------------
# Series reduction


def series(ui_server, run: str, keys: str, project: str = seed.STREAM, **params) -> dict:
    query = urllib.parse.urlencode({"keys": keys, **{k: v for k, v in params.items() if v is not None}})
    return get(ui_server, f"/api/projects/{ENTITY}/{project}/runs/{run}/series?{query}")


def check_reduced(s: dict, raw, lo: int, hi: int, points: int, what: str, last_step: int) -> None:
    """`s` (one series) is an exact reduction of raw(x) over the steps [lo, hi] of a series
    with a point at every step 0..last_step. Besides the points in range, the answer may hold
    the raw neighbour on each side (lo - 1, hi + 1), so that a zoomed line runs to the edges:
    hence the budget of 4 points per bucket + 2."""
    xs, ys = s["x"], s["y"]
    assert len(xs) == len(ys) and xs, f"{what}: {len(xs)} x values, {len(ys)} y values"
    n = hi - lo + 1
    assert len(xs) <= 4 * points + 2, f"{what}: {len(xs)} points for a budget of {points}"
    assert xs == sorted(xs), f"{what}: x is not ascending"
    pts = list(zip(xs, ys))
    before = [p for p in pts if p[0] < lo]
    after = [p for p in pts if p[0] > hi]
    inside = [p for p in pts if lo <= p[0] <= hi]
    assert before in ([], [(lo - 1, raw(lo - 1))]) and (lo > 0 or not before), (
        f"{what}: points before the range {before[:3]}: only the raw neighbour {lo - 1} may be there"
    )
    assert after in ([], [(hi + 1, raw(hi + 1))]) and (hi < last_step or not after), (
        f"{what}: points after the range {after[:3]}: only the raw neighbour {hi + 1} may be there"
    )
    assert inside, f"{what}: no point in range"
    if n <= points:
        assert len(inside) == n, f"{what}: {n} raw points fit the budget but {len(inside)} came back"
    # Exact: the ends are the raw ends and every point is a raw point, unaltered.
    assert inside[0] == (lo, raw(lo)), f"{what}: first point {inside[0]}, raw {(lo, raw(lo))}"
    assert inside[-1] == (hi, raw(hi)), f"{what}: last point {inside[-1]}, raw {(hi, raw(hi))}"
    bad = [(x, y) for x, y in pts if x != int(x) or y != raw(int(x))]
    assert not bad, f"{what}: points that are not raw points: {bad[:5]}"
    # Extremes survive: a spike in range is kept, min and max are the raw ones.
    iy = [y for _, y in inside]
    assert max(iy) == max(raw(x) for x in _extreme_candidates(raw, lo, hi)), f"{what}: max {max(iy)}"
    assert min(iy) == min(raw(x) for x in _extreme_candidates(raw, lo, hi)), f"{what}: min {min(iy)}"
    assert s.get("count") == n, f"{what}: count {s.get('count')}, {n} raw points in range"


def _extreme_candidates(raw, lo: int, hi: int):
    """The steps that hold the range's extremes (cheap for the seeded series)."""
    if hi - lo < 5000:
        return range(lo, hi + 1)
    spikes = [s for s in (seed.MILLION_SPIKE_STEP, seed.SPIKE_STEP) if lo <= s <= hi]
    # (step % 1000) / 1000 reaches 0.0 and 0.999 within any 1000 steps.
    return [*range(lo, lo + 1001), *range(hi - 1000, hi + 1), *spikes]


MILLION_RANGES = [
    (None, None),
    (600_000, 620_000),
    (612_000, 612_999),
    (seed.MILLION_SPIKE_STEP - 3, seed.MILLION_SPIKE_STEP + 3),
    (612_346, 900_000),  # just after the spike: it must not show
    (0, 999_999),
    (123_457, 654_321),
]


@pytest.mark.parametrize("points", [1, 7, 100, 640, 1000, 2500])
@pytest.mark.parametrize("lo,hi", MILLION_RANGES, ids=lambda v: str(v))
def test_million_series_reduction(ui_server, seeded, points, lo, hi):
    s = series(ui_server, seeded.million, "m", points=points, **{"from": lo, "to": hi})
    assert s.get("x") == "_step", s.get("x")
    assert s.get("lines") == seed.MILLION, f"lines {s.get('lines')}, expected {seed.MILLION}"
    assert "m" in s.get("series", {}), f"no series m: {list(s.get('series', {}))}"
    lo_, hi_ = (0 if lo is None else lo), (seed.MILLION - 1 if hi is None else hi)
    what = f"million m, points={points}, [{lo}, {hi}]"
    check_reduced(s["series"]["m"], seed.million_value, lo_, hi_, points, what, seed.MILLION - 1)
    spike_in = lo_ <= seed.MILLION_SPIKE_STEP <= hi_
    has_spike = any(
        lo_ <= x <= hi_ and y == seed.MILLION_SPIKE
        for x, y in zip(s["series"]["m"]["x"], s["series"]["m"]["y"])
    )
    assert has_spike == spike_in, f"{what}: spike shown {has_spike}, in range {spike_in}"
    if lo is None:
        assert s.get("xmin") == 0 and s.get("xmax") == seed.MILLION - 1, (s.get("xmin"), s.get("xmax"))


def test_million_series_default_points(ui_server, seeded):
    s = series(ui_server, seeded.million, "m")
    ys = s["series"]["m"]["y"]
    assert len(ys) <= 4 * 1000 + 2, f"default points: {len(ys)} points"
    assert seed.MILLION_SPIKE in ys


@pytest.mark.parametrize("points", [3, 50, 300, 1000, 5000])
def test_wandb_spiky_series(ui_server, seeded, points):
    s = series(ui_server, seeded.main, "spiky,train/loss,val/acc", project=seed.DEMO, points=points)
    assert s.get("lines") == seed.MAIN_STEPS, s.get("lines")
    last = seed.MAIN_STEPS - 1
    spiky = s["series"]["spiky"]
    check_reduced(spiky, lambda x: seed.main_row(x)["spiky"], 0, last, points,
                  f"spiky, points={points}", last)
    assert 1000.0 in spiky["y"], f"the spike at step {seed.SPIKE_STEP} is lost (points={points})"
    i = spiky["y"].index(1000.0)
    assert spiky["x"][i] == seed.SPIKE_STEP, spiky["x"][i]
    loss = s["series"]["train/loss"]
    check_reduced(loss, lambda x: seed.main_row(x)["train/loss"], 0, last, points,
                  f"train/loss, points={points}", last)
    acc = s["series"]["val/acc"]
    assert acc["x"][0] == 99 and acc["x"][-1] == last, (acc["x"][:3], acc["x"][-3:])
    assert all(x % 100 == 99 for x in acc["x"]), "val/acc points at steps it was not logged"
    assert acc["y"][-1] == seed.main_row(last)["val/acc"]


def test_series_other_x_axes(ui_server, seeded):
    s = series(ui_server, seeded.main, "spiky", project=seed.DEMO, x="_runtime", points=200)
    assert s.get("x") == "_runtime", s.get("x")
    xs, ys = s["series"]["spiky"]["x"], s["series"]["spiky"]["y"]
    assert xs and xs == sorted(xs), "x=_runtime is not ascending"
    assert 1000.0 in ys, "the spike is lost against _runtime"
    s = series(ui_server, seeded.main, "spiky", project=seed.DEMO, x="_timestamp", points=200)
    xs = s["series"]["spiky"]["x"]
    assert xs and xs[0] > 1.6e9, f"_timestamp is not Unix seconds: {xs[:3]}"
