"""The fault proxy itself, against a trivial upstream (http.server on a thread).

    <venv>/bin/python -m pytest tests/faults -q      (standard library + pytest only)
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy import Proxy, remote, remote_set_mode, remote_stats  # noqa: E402

MiB = 1024 * 1024


def payload(n: int) -> bytes:
    block = hashlib.sha256(b"proxy").digest() * 2048  # 64 KiB, not all one byte
    return (block * (n // len(block) + 1))[:n]


# --------------------------------------------------------------------------------------
# The upstream: echoes what it received, records every request it saw.


class Upstream:
    def __init__(self):
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> tuple[bytes, bool]:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out), True
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n), False

            def _serve(self):
                body, chunked = self._body()
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                info = {
                    "method": self.command,
                    "path": self.path,
                    "len": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "chunked": chunked,
                    "host": self.headers.get("Host"),
                    "headers": dict(self.headers.items()),
                    "t": time.monotonic(),
                }
                with upstream.lock:
                    upstream.requests.append(info)
                if "sleep" in q:
                    time.sleep(float(q["sleep"]))
                status = int(q.get("status", 200))
                if "size" in q:
                    out = payload(int(q["size"]))
                    ctype = "application/octet-stream"
                else:
                    out = json.dumps({k: v for k, v in info.items() if k != "t"}).encode()
                    ctype = "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("X-Upstream", "yes")
                self.send_header("Set-Cookie", "a=1")
                self.send_header("Set-Cookie", "b=2")
                if self.command == "HEAD":
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                elif q.get("truncate"):  # promise more than is sent, then hang up
                    self.send_header("Content-Length", str(len(out) + 1000))
                    self.end_headers()
                    self.wfile.write(out)
                    self.close_connection = True
                elif q.get("chunked"):
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(out), 100_000):
                        piece = out[i : i + 100_000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_HEAD = _serve

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seen(self, path_part: str = "") -> list[dict]:
        with self.lock:
            return [r for r in self.requests if path_part in r["path"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def proxy(upstream):
    p = Proxy(upstream.url).start()
    yield p
    p.stop()


def conn(p: Proxy, timeout: float = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", p.port, timeout=timeout)


def request(p: Proxy, method: str, path: str, body=None, headers=None, c=None):
    """(status, headers, body) through the proxy; `c` reuses a connection."""
    own = c is None
    c = c or conn(p)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        if own:
            c.close()


def raw_exchange(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, read until the peer closes (or resets)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = bytearray()
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
        return bytes(out)


def is_cut(p: Proxy, method: str, path: str, body=None) -> bool:
    """True when the proxy closed the connection without a (complete) answer."""
    try:
        request(p, method, path, body=body)
    except (http.client.RemoteDisconnected, http.client.IncompleteRead,
            http.client.BadStatusLine, ConnectionResetError, BrokenPipeError):
        return True
    return False


# --------------------------------------------------------------------------------------
# pass


@pytest.mark.parametrize("size", [0, 1, 1 * MiB + 17])
def test_pass_content_length_bodies(proxy, upstream, size):
    body = payload(size)
    status, headers, out = request(proxy, "POST", f"/echo/{size}?q=1", body=body)
    assert status == 200
    info = json.loads(out)
    assert info["len"] == size
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert info["chunked"] is False
    assert info["path"] == f"/echo/{size}?q=1"
    assert info["method"] == "POST"
    # The client's Host reaches the upstream unchanged (the proxy is transparent).
    assert info["host"] == f"127.0.0.1:{proxy.port}"
    assert headers["X-Upstream"] == "yes"
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_pass_chunked_request_body(proxy):
    pieces = [payload(10), payload(100_000), b"", payload(3)]  # http.client skips empty ones
    body = b"".join(pieces)
    with contextlib.closing(conn(proxy)) as c:
        c.request("PUT", "/chunked", body=iter(pieces), encode_chunked=True)
        r = c.getresponse()
        info = json.loads(r.read())
    assert r.status == 200
    assert info["chunked"] is True
    assert info["len"] == len(body)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert "Transfer-Encoding" in info["headers"]


def test_pass_chunked_request_with_trailers_raw(proxy, upstream):
    data = (
        b"POST /trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n"
    )
    out = raw_exchange(proxy.port, data)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), out
    assert json.loads(body)["len"] == 11
    assert upstream.seen("/trailers")[-1]["sha256"] == hashlib.sha256(b"hello world").hexdigest()


@pytest.mark.parametrize("size", [0, 1 * MiB + 5])
@pytest.mark.parametrize("chunked", [False, True])
def test_pass_response_bodies(proxy, size, chunked):
    q = f"size={size}" + ("&chunked=1" if chunked else "")
    status, headers, out = request(proxy, "GET", f"/download?{q}")
    assert status == 200
    assert out == payload(size)
    if chunked:
        assert headers["Transfer-Encoding"] == "chunked"
    else:
        assert headers["Content-Length"] == str(size)


def test_pass_status_head_and_keep_alive(proxy):
    c = conn(proxy)
    try:
        for i in range(5):
            status, headers, out = request(proxy, "GET", f"/ka/{i}?status=404", c=c)
            assert status == 404
            assert json.loads(out)["path"] == f"/ka/{i}?status=404"
        status, headers, out = request(proxy, "HEAD", "/head?size=1000", c=c)
        assert (status, out, headers["Content-Length"]) == (200, b"", "1000")
        status, _, out = request(proxy, "POST", "/ka/last", body=b"x" * 10, c=c)
        assert status == 200 and json.loads(out)["len"] == 10
    finally:
        c.close()
    s = proxy.stats()
    assert s["connections"] == 1, s
    assert s["requests"] == s["forwarded"] == s["responses"] == 7, s
    assert s["modes"]["pass"]["seen"] == 7


def test_pass_expect_continue(proxy, upstream):
    data = (
        b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n"
        b"Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(data)
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"abcd")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 200"), out
    assert json.loads(out.partition(b"\r\n\r\n")[2])["len"] == 4
    assert "Expect" not in upstream.seen("/expect")[-1]["headers"]


def test_rewrite_host(upstream):
    with Proxy(upstream.url, rewrite_host=True) as p:
        _, _, out = request(p, "GET", "/host")
    assert json.loads(out)["host"] == f"127.0.0.1:{upstream.port}"


def test_upstream_hangs_up_mid_answer(proxy):
    with contextlib.closing(conn(proxy)) as c, pytest.raises(http.client.IncompleteRead):
        c.request("GET", "/trunc?truncate=1&size=5000")
        r = c.getresponse()
        assert r.status == 200
        r.read()
    assert proxy.stats()["upstream_errors"] == 1


def test_bad_requests(proxy):
    assert raw_exchange(proxy.port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw_exchange(
        proxy.port, b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"
    ).startswith(b"HTTP/1.1 400")
    huge = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n"
    assert raw_exchange(proxy.port, huge).startswith(b"HTTP/1.1 431")
    assert proxy.stats()["bad_requests"] == 3
    # HTTP/1.0 without keep-alive: answered, then closed.
    out = raw_exchange(proxy.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert out.split(b"\r\n")[0].endswith(b" 200 OK") and b"Connection: close" in out


def test_upstream_unreachable_is_502():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with Proxy(f"http://127.0.0.1:{dead}") as p:
        status, _, out = request(p, "POST", "/x", body=b"abc")
        assert status == 502
        assert "unreachable" in json.loads(out)["error"]
        assert p.stats()["upstream_errors"] == 1


# --------------------------------------------------------------------------------------
# down


def test_down_refuses_closes_idle_and_comes_back(proxy):
    idle = conn(proxy)
    assert request(proxy, "GET", "/before", c=idle)[0] == 200
    proxy.set_mode("down")
    # New connections are refused, like a stopped server.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
    # The idle keep-alive connection was closed: its socket reads EOF.
    idle.sock.settimeout(2)
    try:
        assert idle.sock.recv(1) == b""
    except ConnectionResetError:
        pass
    finally:
        idle.close()
    # The control port still answers; the main port comes back on the same number.
    assert remote(proxy.control_url, "GET", "mode")["mode"] == "down"
    port = proxy.port
    proxy.set_mode("pass")
    assert proxy.port == port
    assert request(proxy, "GET", "/after")[0] == 200
    assert proxy.stats()["modes"]["down"]["injected"] >= 1


def test_down_for_a_duration(proxy):
    proxy.set_mode("down", duration=0.5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
    time.sleep(0.8)
    assert proxy.mode()["mode"] == "pass"
    assert request(proxy, "GET", "/back")[0] == 200


def test_down_without_refuse_resets(proxy, upstream):
    proxy.set_mode("down", refuse=False)
    before = len(upstream.seen("/reset"))
    assert is_cut(proxy, "POST", "/reset", body=b"abc")
    assert len(upstream.seen("/reset")) == before
    proxy.set_mode("pass")
    assert request(proxy, "GET", "/reset")[0] == 200


def test_down_switches_between_refuse_and_reset(proxy):
    proxy.set_mode("down")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
    # Accepted and reset, twice (count=2), then passing again.
    proxy.set_mode("down", refuse=False, count=2)
    assert is_cut(proxy, "GET", "/r")
    assert is_cut(proxy, "GET", "/r")
    assert request(proxy, "GET", "/r")[0] == 200


def test_down_lets_an_in_flight_request_finish(proxy, upstream):
    result = {}

    def slow():
        result["r"] = request(proxy, "GET", "/inflight?sleep=0.6")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    proxy.set_mode("down")
    t.join(5)
    assert result["r"][0] == 200
    assert result["r"][1]["Connection"] == "close"
    proxy.set_mode("pass")


# --------------------------------------------------------------------------------------
# status


def test_status_429_for_a_count_then_pass(proxy, upstream):
    proxy.set_mode("status", status=429, retry_after=2, rate_limit_reset=3, count=3)
    before = len(upstream.seen("/limited"))
    c = conn(proxy)
    try:
        for _ in range(3):
            status, headers, out = request(proxy, "POST", "/limited", body=b"data", c=c)
            assert status == 429
            assert headers["Retry-After"] == "2"
            assert headers["RateLimit-Remaining"] == "0"
            assert headers["RateLimit-Reset"] == "3"
            assert "error" in json.loads(out)
        # Same connection (kept alive), the series is over: forwarded.
        status, _, out = request(proxy, "POST", "/limited", body=b"data", c=c)
        assert status == 200 and json.loads(out)["len"] == 4
    finally:
        c.close()
    assert len(upstream.seen("/limited")) == before + 1
    s = proxy.stats()
    assert s["connections"] == 1
    assert s["modes"]["status"]["injected"] == 3
    assert s["mode"]["mode"] == "pass"


def test_status_for_a_duration_with_custom_headers_and_body(proxy):
    proxy.set_mode("status", status=503, headers={"X-Why": "maintenance"}, body="later",
                   duration=0.5)
    status, headers, out = request(proxy, "GET", "/x")
    assert (status, headers["X-Why"], out) == (503, "maintenance", b"later")
    time.sleep(0.7)
    assert request(proxy, "GET", "/x")[0] == 200


def test_path_and_method_filters(proxy):
    proxy.set_mode("status", status=429, path=r"file_stream$", method="POST")
    assert request(proxy, "POST", "/files/a/b/c/file_stream", body=b"{}")[0] == 429
    assert request(proxy, "POST", "/files/a/b/c/file_stream?x=1", body=b"{}")[0] == 429
    assert request(proxy, "GET", "/files/a/b/c/file_stream")[0] == 200
    assert request(proxy, "POST", "/graphql", body=b"{}")[0] == 200
    s = proxy.stats()["modes"]["status"]
    assert (s["seen"], s["matched"], s["injected"]) == (4, 2, 2)


def test_every_nth(proxy):
    proxy.set_mode("status", status=503, every=3)
    got = [request(proxy, "GET", f"/n/{i}")[0] for i in range(9)]
    assert got == [200, 200, 503] * 3


def test_probability_with_seed_is_repeatable(proxy):
    runs = []
    for _ in range(2):
        proxy.set_mode("status", status=503, probability=0.3, seed=42)
        runs.append([request(proxy, "GET", "/p")[0] for _ in range(60)])
    assert runs[0] == runs[1]
    assert 5 <= runs[0].count(503) <= 35, runs[0]


def test_bad_mode_is_refused(proxy):
    with pytest.raises(ValueError):
        proxy.set_mode("explode")
    with pytest.raises(ValueError):
        proxy.set_mode("status", every=0)
    with pytest.raises(ValueError):
        proxy.set_mode("status", colour="red")
    status, _, out = request(proxy, "POST", "/__proxy/mode", body=b'{"mode": "nope"}')
    assert status == 400 and "unknown mode" in json.loads(out)["error"]
    assert proxy.mode()["mode"] == "pass"


# --------------------------------------------------------------------------------------
# cut_request / cut_response


def test_cut_request_never_reaches_upstream(proxy, upstream):
    proxy.set_mode("cut_request", count=1)
    before = len(upstream.seen("/cutreq"))
    assert is_cut(proxy, "POST", "/cutreq", body=payload(200_000))
    assert len(upstream.seen("/cutreq")) == before
    # count=1: the retry goes through.
    status, _, out = request(proxy, "POST", "/cutreq", body=payload(200_000))
    assert status == 200 and json.loads(out)["len"] == 200_000
    assert proxy.stats()["modes"]["cut_request"]["injected"] == 1


def test_cut_request_chunked(proxy, upstream):
    proxy.set_mode("cut_request", after_bytes=5)
    before = len(upstream.seen("/cutchunk"))
    with contextlib.closing(conn(proxy)) as c, pytest.raises(
        (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
    ):
        c.request("POST", "/cutchunk", body=iter([b"abc", b"defgh"]), encode_chunked=True)
        c.getresponse()
    assert len(upstream.seen("/cutchunk")) == before


def test_cut_response_applies_upstream_but_client_gets_nothing(proxy, upstream):
    proxy.set_mode("cut_response", path=r"^/apply", count=2)
    before = len(upstream.seen("/apply"))
    assert is_cut(proxy, "POST", "/apply", body=b"row")
    assert is_cut(proxy, "POST", "/apply", body=b"row")
    # The upstream DID get (and answer) both.
    assert len(upstream.seen("/apply")) == before + 2
    assert request(proxy, "POST", "/apply", body=b"row")[0] == 200
    s = proxy.stats()
    assert s["modes"]["cut_response"]["injected"] == 2
    assert [(e["action"], e["request_bytes"]) for e in proxy.events() if e["path"] == "/apply"] == [
        ("cut_response", 3), ("cut_response", 3), ("forwarded", 3)
    ]


def test_cut_response_after_some_bytes(proxy, upstream):
    proxy.set_mode("cut_response", send_bytes=40, rst=True)
    with contextlib.closing(conn(proxy)) as c, pytest.raises(
        (http.client.IncompleteRead, ConnectionResetError, http.client.RemoteDisconnected)
    ):
        c.request("GET", "/partial?size=100000")
        r = c.getresponse()  # the status line made it
        assert r.status == 200
        r.read()


# --------------------------------------------------------------------------------------
# delay


def test_delay_before_and_after(proxy, upstream):
    proxy.set_mode("delay", seconds=0.4, path="^/slow")
    t0 = time.monotonic()
    assert request(proxy, "GET", "/slow/before")[0] == 200
    assert time.monotonic() - t0 >= 0.4
    t0 = time.monotonic()
    assert request(proxy, "GET", "/fast")[0] == 200
    assert time.monotonic() - t0 < 0.3

    proxy.set_mode("delay", seconds=0.4, when="after")
    t0 = time.monotonic()
    assert request(proxy, "GET", "/slow/after")[0] == 200
    done = time.monotonic()
    # The upstream got it at once; the answer was held back.
    assert upstream.seen("/slow/after")[-1]["t"] - t0 < 0.3
    assert done - t0 >= 0.4


# --------------------------------------------------------------------------------------
# control endpoint and the script


def test_control_endpoint_on_the_main_port(proxy):
    status, _, out = request(
        proxy, "POST", "/__proxy/mode",
        body=json.dumps({"mode": "status", "status": 429, "count": 1, "path": "x$"}),
    )
    assert status == 200
    assert json.loads(out)["mode"] == "status"
    assert request(proxy, "GET", "/x")[0] == 429
    stats = json.loads(request(proxy, "GET", "/__proxy/stats")[2])
    assert stats["modes"]["status"]["injected"] == 1
    assert stats["mode"]["mode"] == "pass"
    assert stats["requests"] == 1  # control requests are not counted
    events = json.loads(request(proxy, "GET", "/__proxy/events")[2])
    assert [(e["path"], e["action"], e["status"]) for e in events] == [("/x", "status", 429)]
    info = json.loads(request(proxy, "GET", "/__proxy/info")[2])
    assert info["port"] == proxy.port and info["control_port"] == proxy.control_port
    reset = json.loads(request(proxy, "POST", "/__proxy/reset")[2])
    assert reset["requests"] == 0 and proxy.events() == []
    # The control port serves nothing else.
    c = http.client.HTTPConnection("127.0.0.1", proxy.control_port, timeout=5)
    c.request("GET", "/x")
    assert c.getresponse().status == 404
    c.close()


def test_script(upstream, tmp_path):
    port_file, control_file = tmp_path / "port", tmp_path / "control"
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("proxy.py")), "--listen", "127.0.0.1:0",
         "--upstream", upstream.url, "--port-file", str(port_file),
         "--control-port-file", str(control_file)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not control_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        port, control = int(port_file.read_text()), int(control_file.read_text())
        control_url = f"http://127.0.0.1:{control}"
        url = f"http://127.0.0.1:{port}"

        def get(path):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                c.request("GET", path)
                return c.getresponse().status
            finally:
                c.close()

        assert get("/s") == 200
        remote_set_mode(control_url, "status", status=503, count=1)
        assert get("/s") == 503
        remote_set_mode(control_url, "down")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        remote_set_mode(control_url, "pass")
        assert get("/s") == 200
        stats = remote_stats(control_url)
        assert stats["requests"] == 3 and stats["modes"]["status"]["injected"] == 1
        assert json.loads(proc.stdout.readline())["url"] == url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc.stdout.close()
