#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for fault tests (standard library only).

Put it between any HTTP client (the `wandb` SDK, cairn's own uploader, curl) and a server:
it forwards every request to one upstream and, when told to, misbehaves in a controlled way.

    from proxy import Proxy
    with Proxy("http://127.0.0.1:8080") as p:        # p.url is what the client talks to
        p.set_mode("status", status=429, retry_after=1, count=20, path=r"file_stream$")
        ...
        p.stats()["modes"]["status"]["injected"]

or as a process, controlled over HTTP (from any language):

    python tests/faults/proxy.py --listen 127.0.0.1:0 --upstream http://127.0.0.1:8080 \\
        --port-file P --control-port-file C
    curl -X POST localhost:$(cat C)/__proxy/mode -d '{"mode": "down", "duration": 10}'

Modes (one is active at a time; `set_mode` replaces the previous one):

  pass          forward everything (the default).
  down          like a stopped server. With `refuse` (default) the listening socket is closed,
                so connects fail with ECONNREFUSED; with `refuse=False` new connections are
                accepted and reset at once. Idle keep-alive client connections are closed when
                the mode is entered; a request already in flight finishes, then its connection
                is closed. The main port serves nothing in this mode, not even /__proxy/: use
                the control port. Leaving the mode (set_mode, or `duration`) listens again on
                the same port.
  status        answer matching requests with `status` (503 by default) without forwarding
                them; `headers`, `body`, and the shortcuts `retry_after=N` (Retry-After: N)
                and `rate_limit_reset=N` (RateLimit-Remaining: 0, RateLimit-Reset: N).
  cut_request   read the request head and `after_bytes` of the body (default: half of its
                Content-Length, or the first piece of a chunked body), then close the
                connection without an answer. The request never reaches the upstream.
  cut_response  forward the request and read the upstream's whole answer (so the server did
                apply it), then close the client connection after sending only `send_bytes`
                bytes of that answer (default 0).
  delay         wait `seconds` before forwarding (`when="before"`, default) or before
                relaying the answer (`when="after"`).

Every mode but `pass` takes the same selectors:
  path          regex searched in the request path (query string excluded), e.g.
                "file_stream$" or "^/graphql"; default: every path.
  method        regex matched (case-insensitively) against the whole method, e.g. "POST|PUT".
  every         fault only every Nth matching request (the Nth, 2Nth, ...).
  probability   fault a matching request with this probability (`seed` makes it repeatable).
  count         go back to `pass` after this many faults.
  duration      go back to `pass` this many seconds after the mode was set.
  rst           for cut_request/cut_response/down: close with a TCP reset, not a FIN.

Control endpoint, on the main port (every mode but `down`) and on the control port (always);
paths under /__proxy/ are never faulted, forwarded or counted as requests:
  GET  /__proxy/mode     the active fault: {"mode": ..., selectors, parameters,
                         "matched": n, "injected": n, "active_for": seconds}
  POST /__proxy/mode     body: {"mode": "status", "status": 429, "retry_after": 1,
                         "count": 20, "path": "file_stream$"}; answers the new mode
                         (400 {"error": ...} on a bad mode or parameter)
  GET  /__proxy/stats    counters (see `Proxy.stats`)
  POST /__proxy/reset    zero the counters and the event log; answers the stats
  GET  /__proxy/events   the last requests: [{"t", "method", "path", "mode", "action",
                         "status", "request_bytes"}, ...]
  GET  /__proxy/info     {"port", "control_port", "upstream", "pid"}

Forwarding: one fresh upstream connection per request (sent with `Connection: close`), the
request head passed as received (the Host header too, unless `rewrite_host`), bodies streamed
with their own framing (Content-Length or chunked, raw chunks and trailers included).
Responses keep their status line, headers and body; the client connection is kept alive when
the client wants it and the answer is framed. `Expect: 100-continue` is answered by the proxy.
If the upstream cannot be reached the client gets a 502.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

MODES = ("pass", "down", "status", "cut_request", "cut_response", "delay")
CONTROL_PREFIX = "/__proxy/"

_HEAD_LIMIT = 256 * 1024
_PIECE = 64 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection"}


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.x."""


# --------------------------------------------------------------------------------------
# Faults


@dataclass
class Fault:
    """One fault configuration (see the module docstring). `Fault.make` validates."""

    mode: str = "pass"
    path: str | None = None
    method: str | None = None
    every: int | None = None
    probability: float | None = None
    seed: int | None = None
    count: int | None = None
    duration: float | None = None
    # status
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: str | bytes | None = None
    retry_after: float | None = None
    rate_limit_reset: float | None = None
    # delay
    seconds: float = 1.0
    when: str = "before"
    # cut_request / cut_response
    after_bytes: int | None = None
    send_bytes: int = 0
    rst: bool = False
    # down
    refuse: bool = True

    # runtime state (not parameters)
    matched: int = field(default=0, repr=False)
    injected: int = field(default=0, repr=False)
    started: float = field(default_factory=time.monotonic, repr=False)

    _PARAMS = (
        "mode path method every probability seed count duration status headers body"
        " retry_after rate_limit_reset seconds when after_bytes send_bytes rst refuse"
    ).split()

    @classmethod
    def make(cls, mode: str = "pass", **params: Any) -> Fault:
        unknown = set(params) - set(cls._PARAMS)
        if unknown:
            raise ValueError(f"unknown fault parameter(s): {', '.join(sorted(unknown))}")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        params = {k: v for k, v in params.items() if v is not None}
        f = cls(mode=mode, **params)
        f._path_re = re.compile(f.path) if f.path is not None else None
        f._method_re = re.compile(f.method, re.IGNORECASE) if f.method is not None else None
        if f.every is not None and (not isinstance(f.every, int) or f.every < 1):
            raise ValueError("every must be an integer >= 1")
        if f.probability is not None and not 0 <= float(f.probability) <= 1:
            raise ValueError("probability must be in [0, 1]")
        if f.every is not None and f.probability is not None:
            raise ValueError("give every or probability, not both")
        if f.count is not None and (not isinstance(f.count, int) or f.count < 1):
            raise ValueError("count must be an integer >= 1")
        if f.duration is not None and float(f.duration) <= 0:
            raise ValueError("duration must be > 0")
        if not (isinstance(f.status, int) and 100 <= f.status <= 599):
            raise ValueError("status must be an HTTP status code")
        if not isinstance(f.headers, dict):
            raise ValueError("headers must be an object of name: value")
        if f.when not in ("before", "after"):
            raise ValueError('when must be "before" or "after"')
        if float(f.seconds) < 0:
            raise ValueError("seconds must be >= 0")
        if f.after_bytes is not None and f.after_bytes < 0:
            raise ValueError("after_bytes must be >= 0")
        if f.send_bytes < 0:
            raise ValueError("send_bytes must be >= 0")
        f._rng = random.Random(f.seed)
        return f

    def describe(self) -> dict[str, Any]:
        """The parameters that were given, plus the fault's own counters."""
        out: dict[str, Any] = {"mode": self.mode}
        defaults = Fault()
        for name in self._PARAMS[1:]:
            value = getattr(self, name)
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if value != getattr(defaults, name):
                out[name] = value
        out["matched"] = self.matched
        out["injected"] = self.injected
        out["active_for"] = round(time.monotonic() - self.started, 3)
        return out

    def expired(self) -> bool:
        if self.mode == "pass":
            return False
        if self.count is not None and self.injected >= self.count:
            return True
        return self.duration is not None and time.monotonic() - self.started >= self.duration

    def matches(self, method: str, path: str) -> bool:
        """Whether a request passes the path and method filters."""
        if self._path_re is not None and not self._path_re.search(path):
            return False
        return self._method_re is None or bool(self._method_re.fullmatch(method))

    def select(self, method: str, path: str) -> tuple[bool, bool]:
        """(matched, hit): whether the request passes the filters, and whether it gets the
        fault (`every` / `probability`). Updates the fault's own counters."""
        if self.mode == "pass":
            return True, False
        if not self.matches(method, path):
            return False, False
        self.matched += 1
        if self.every is not None:
            hit = self.matched % self.every == 0
        elif self.probability is not None:
            hit = self._rng.random() < float(self.probability)
        else:
            hit = True
        if hit:
            self.injected += 1
        return True, hit

    def status_response(self) -> bytes:
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers.setdefault("Retry-After", _num(self.retry_after))
        if self.rate_limit_reset is not None:
            headers.setdefault("RateLimit-Remaining", "0")
            headers.setdefault("RateLimit-Reset", _num(self.rate_limit_reset))
        if self.body is None:
            body = json.dumps({"error": f"injected by the fault proxy: {self.status}"}).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            body = self.body.encode() if isinstance(self.body, str) else bytes(self.body)
        lines = [f"HTTP/1.1 {self.status} {_reason(self.status)}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Fault"


# --------------------------------------------------------------------------------------
# HTTP/1.x parsing


@dataclass
class _Head:
    start: str  # request line or status line
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        name = name.lower()
        values = [v for k, v in self.headers if k.lower() == name]
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> list[str]:
        value = self.get(name) or ""
        return [t.strip().lower() for t in value.split(",") if t.strip()]

    def body_framing(self) -> tuple[str, int]:
        """("chunked", 0) | ("length", n) | ("none", 0); raises ProtocolError."""
        te = self.tokens("transfer-encoding")
        if te:
            if te[-1] != "chunked":
                raise ProtocolError(f"unsupported Transfer-Encoding {te}")
            return "chunked", 0
        cl = self.get("content-length")
        if cl is None:
            return "none", 0
        values = {v.strip() for v in cl.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise ProtocolError(f"bad Content-Length {cl!r}")
        return "length", int(values.pop())

    def encode(self, drop: set[str] = frozenset(), extra: list[tuple[str, str]] = ()) -> bytes:
        lines = [self.start]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in drop]
        lines += [f"{k}: {v}" for k, v in extra]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_head(raw: bytes) -> _Head:
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ProtocolError("empty head")
    headers = []
    for line in lines[1:]:
        if ":" not in line or line[0] in " \t":
            raise ProtocolError(f"bad header line {line!r}")
        k, v = line.split(":", 1)
        headers.append((k.strip(), v.strip()))
    return _Head(lines[0], headers)


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """One head, up to and including the blank line; skips stray CRLFs before it."""
    while True:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as e:
            raise ProtocolError("head too large") from e
        stripped = raw.lstrip(b"\r\n")
        if stripped:
            return stripped


async def _copy_body(
    reader: asyncio.StreamReader, framing: str, length: int, sink: Callable[[bytes], Any]
) -> int:
    """Copy a body with its framing (raw chunks and trailers for chunked) to `sink`, an
    async callable. Returns the body's payload size. Raises IncompleteReadError on EOF."""
    if framing == "length":
        left = length
        while left:
            piece = await reader.read(min(left, _PIECE))
            if not piece:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(piece)
            await sink(piece)
        return length
    if framing == "chunked":
        total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as e:
                raise ProtocolError(f"bad chunk size line {line!r}") from e
            await sink(line)
            if size == 0:
                while True:  # trailers, then the final CRLF
                    trailer = await reader.readuntil(b"\r\n")
                    await sink(trailer)
                    if trailer == b"\r\n":
                        return total
            left = size
            while left:
                piece = await reader.read(min(left, _PIECE))
                if not piece:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(piece)
                await sink(piece)
            crlf = await reader.readexactly(2)
            if crlf != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
            await sink(crlf)
            total += size
    if framing == "eof":
        total = 0
        while piece := await reader.read(_PIECE):
            total += len(piece)
            await sink(piece)
        return total
    return 0


async def _discard(_: bytes) -> None:
    return None


def _abort(writer: asyncio.StreamWriter, rst: bool = False) -> None:
    if rst:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()


# --------------------------------------------------------------------------------------
# The proxy


@dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    idle: bool = True
    close_after: bool = False


class Proxy:
    """The fault proxy: `start()` runs it on a background thread (its own asyncio loop).

    Proxy(upstream, host="127.0.0.1", port=0, control_port=0, rewrite_host=False)
      upstream      "http://host:port" (a path prefix is not supported)
      port          the main port (0: pick one; read `.port` after start)
      control_port  a second port that only serves /__proxy/ and is never faulted
                    (None: no control port; 0: pick one)
      rewrite_host  send Host: <upstream host:port> instead of the client's Host
    """

    def __init__(
        self,
        upstream: str,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int | None = 0,
        rewrite_host: bool = False,
    ):
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or not u.hostname or u.path not in ("", "/"):
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream = f"http://{u.netloc}"
        self.upstream_host = u.hostname
        self.upstream_port = u.port or 80
        self.host = host
        self.port = port
        self.control_port = control_port
        self.rewrite_host = rewrite_host
        self._fault = Fault.make("pass")
        self._lock = threading.Lock()
        self._stats = self._zero_stats()
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=10000)
        self._conns: set[_Conn] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._control_server: asyncio.base_events.Server | None = None
        self._expiry: asyncio.TimerHandle | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def control_url(self) -> str:
        """The control port's URL (the main port's when there is no control port)."""
        return f"http://{self.host}:{self.control_port or self.port}"

    def start(self) -> Proxy:
        """Listen (on a daemon thread) and return once the ports are open."""
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as e:  # noqa: BLE001 - reported to start()
                failure.append(e)
                loop.run_until_complete(self._close_all())
                loop.close()
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._close_all())
                loop.close()

        self._thread = threading.Thread(target=main, name=f"fault-proxy-{id(self)}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close every port and connection and end the thread."""
        if self._thread is None or self._loop is None:
            return
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _open(self) -> None:
        self._server = await self._listen(self.port, self._handle_client)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.control_port is not None:
            self._control_server = await asyncio.start_server(
                self._handle_control_client, self.host, self.control_port
            )
            self.control_port = self._control_server.sockets[0].getsockname()[1]

    async def _listen(self, port: int, handler: Callable) -> asyncio.base_events.Server:
        # After `down`, the same port is bound again; a connection that happens to hold it
        # as its local port (unlikely) would make this fail for a moment, so retry.
        deadline = time.monotonic() + 10
        while True:
            try:
                return await asyncio.start_server(
                    handler, self.host, port, reuse_address=True, limit=_HEAD_LIMIT
                )
            except OSError:
                if port == 0 or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def _close_all(self) -> None:
        for srv in (self._server, self._control_server):
            if srv is not None:
                srv.close()
        for conn in list(self._conns):
            conn.writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- control (thread-safe)

    def set_mode(self, mode: str = "pass", **params: Any) -> dict[str, Any]:
        """Switch to `mode` with its selectors and parameters (see the module docstring):

        set_mode("pass")
        set_mode("down", refuse=True, duration=None, rst=False)
        set_mode("status", status=503, headers=None, body=None, retry_after=None,
                 rate_limit_reset=None, <selectors>)
        set_mode("cut_request", after_bytes=None, rst=False, <selectors>)
        set_mode("cut_response", send_bytes=0, rst=False, <selectors>)
        set_mode("delay", seconds=1.0, when="before", <selectors>)
        selectors: path=None, method=None, every=None, probability=None, seed=None,
                   count=None, duration=None

        Returns the new mode as `mode()` does. When it returns, the mode is in force (for
        `down`: the port refuses connections and idle connections are closed).
        """
        fault = Fault.make(mode, **params)
        return self._call(self._apply(fault))

    def mode(self) -> dict[str, Any]:
        """The active fault: {"mode", given parameters, "matched", "injected", "active_for"}."""
        return self._call(self._current())

    def stats(self) -> dict[str, Any]:
        """Counters since start (or `reset_stats`):

        {"mode": <mode()>, "connections": accepted client connections,
         "requests": requests read (control requests excluded), "forwarded": sent upstream,
         "responses": upstream answers read in full, "upstream_errors": upstream
         unreachable or failing mid-request (the client gets a 502, or a cut connection),
         "client_errors": clients gone mid-request, "bad_requests": unparsable requests,
         "modes": {mode: {"seen": requests read while it was active,
                          "matched": of those, matching its path/method filters,
                          "injected": faults injected}}}
        For `down`, "injected" counts the connections it closed or reset (refused connects
        never reach the proxy and are not counted).
        """
        return self._call(self._stats_snapshot())

    def reset_stats(self) -> dict[str, Any]:
        """Zero the counters and the event log; returns the (zeroed) stats."""
        return self._call(self._reset())

    def events(self) -> list[dict[str, Any]]:
        """The last (up to 10,000) requests: {"t" (unix time), "method", "path", "mode",
        "action" (forwarded | status | cut_request | cut_response | delayed | down |
        upstream_error | client_error | bad_request), "status" (as answered, or None),
        "request_bytes" (the request body's payload size as read, or None)}."""
        with self._lock:
            return [dict(e) for e in self._events]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict:
        """Poll `stats()` until `predicate(stats)` holds; returns those stats."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            if predicate(s):
                return s
            if time.monotonic() > deadline:
                raise TimeoutError(f"proxy stats did not reach the condition: {s}")
            time.sleep(0.05)

    def _call(self, coro) -> Any:
        if self._loop is None or self._thread is None:
            raise RuntimeError("the proxy is not running")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("use the async methods from inside the proxy's loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    # -- control (in the loop)

    async def _current(self) -> dict[str, Any]:
        await self._expire_if_due()
        return self._fault.describe()

    async def _apply(self, fault: Fault) -> dict[str, Any]:
        self._fault = fault
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if fault.duration is not None:
            self._expiry = self._loop.call_later(
                float(fault.duration), lambda: asyncio.ensure_future(self._expire(fault))
            )
        if fault.mode != "down" or not fault.refuse:
            await self._reopen()  # listening again after `down` (a no-op otherwise)
        if fault.mode == "down":
            await self._enter_down(fault)
        return fault.describe()

    async def _expire(self, fault: Fault) -> None:
        if self._fault is fault:
            await self._apply(Fault.make("pass"))

    async def _expire_if_due(self) -> None:
        if self._fault.expired():
            await self._apply(Fault.make("pass"))

    async def _enter_down(self, fault: Fault) -> None:
        if fault.refuse and self._server is not None:
            self._server.close()
            self._server = None
        closed = 0
        for conn in list(self._conns):
            if conn.idle:
                _abort(conn.writer, fault.rst)
                closed += 1
            else:
                conn.close_after = True
        self._count("down", injected=closed)

    async def _reopen(self) -> None:
        if self._server is None:
            self._server = await self._listen(self.port, self._handle_client)

    async def _reset(self) -> dict[str, Any]:
        with self._lock:
            self._stats = self._zero_stats()
            self._events.clear()
        return await self._stats_snapshot()

    async def _stats_snapshot(self) -> dict[str, Any]:
        mode = await self._current()
        with self._lock:
            s = json.loads(json.dumps(self._stats))
        s["mode"] = mode
        return s

    @staticmethod
    def _zero_stats() -> dict[str, Any]:
        return {
            "connections": 0,
            "requests": 0,
            "forwarded": 0,
            "responses": 0,
            "upstream_errors": 0,
            "bad_requests": 0,
            "client_errors": 0,
            "modes": {m: {"seen": 0, "matched": 0, "injected": 0} for m in MODES},
        }

    def _count(self, mode: str | None = None, **counts: int) -> None:
        with self._lock:
            target = self._stats["modes"][mode] if mode else self._stats
            for k, v in counts.items():
                target[k] += v

    def _event(
        self,
        method: str,
        path: str,
        mode: str,
        action: str,
        status: int | None,
        request_bytes: int | None = None,
    ) -> None:
        with self._lock:
            self._events.append(
                {
                    "t": time.time(),
                    "method": method,
                    "path": path,
                    "mode": mode,
                    "action": action,
                    "status": status,
                    "request_bytes": request_bytes,
                }
            )

    # -- connections

    async def _handle_control_client(self, reader, writer) -> None:
        await self._serve_connection(reader, writer, control_only=True)

    async def _handle_client(self, reader, writer) -> None:
        self._count(connections=1)
        await self._expire_if_due()
        fault = self._fault
        if fault.mode == "down":
            # Reached with refuse=False, or by a connect that raced the listener's close.
            fault.injected += 1
            self._count("down", injected=1)
            _abort(writer, rst=True)
            if fault.count is not None and fault.injected >= fault.count:
                await self._apply(Fault.make("pass"))
            return
        await self._serve_connection(reader, writer, control_only=False)

    async def _serve_connection(self, reader, writer, control_only: bool) -> None:
        conn = _Conn(writer)
        if not control_only:  # `down` leaves the control port's connections alone
            self._conns.add(conn)
        try:
            while not conn.close_after:
                conn.idle = True
                try:
                    raw = await _read_head(reader)
                except (asyncio.IncompleteReadError, ConnectionError, OSError):
                    return
                except ProtocolError as e:
                    self._count(bad_requests=1)
                    await self._simple(writer, 431, {"error": str(e)}, close=True)
                    return
                conn.idle = False
                try:
                    keep = await self._serve_request(conn, reader, raw, control_only)
                except ProtocolError as e:
                    self._count(bad_requests=1)
                    self._event("?", "?", self._fault.mode, "bad_request", 400)
                    await self._simple(writer, 400, {"error": str(e)}, close=True)
                    return
                if not keep:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return
        finally:
            self._conns.discard(conn)
            if not writer.transport.is_closing():
                writer.close()

    async def _simple(self, writer, status: int, obj: Any, close: bool = False) -> None:
        body = json.dumps(obj).encode()
        head = (
            f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            + ("Connection: close\r\n" if close else "")
            + "\r\n"
        )
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(head.encode() + body)
            await writer.drain()

    async def _serve_request(self, conn: _Conn, reader, raw: bytes, control_only: bool) -> bool:
        """Serve one request whose head is `raw`; returns whether to keep the connection."""
        writer = conn.writer
        head = _parse_head(raw)
        parts = head.start.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ProtocolError(f"bad request line {head.start!r}")
        method, target, version = parts
        if target.startswith(("http://", "https://")):  # absolute form
            u = urllib.parse.urlsplit(target)
            target = urllib.parse.urlunsplit(("", "", u.path or "/", u.query, ""))
        path = target.split("?", 1)[0]
        framing, length = head.body_framing()
        conn_tokens = head.tokens("connection")
        if version == "HTTP/1.1":
            client_keep = "close" not in conn_tokens
        else:
            client_keep = "keep-alive" in conn_tokens
        # Both framings given: Transfer-Encoding wins, and the connection is not reused.
        if framing == "chunked" and head.get("content-length") is not None:
            client_keep = False
        expect_continue = "100-continue" in head.tokens("expect")
        continued = False

        async def read_body(sink=_discard) -> int:
            nonlocal continued
            if expect_continue and not continued:
                continued = True
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
            return await _copy_body(reader, framing, length, sink)

        if path.startswith(CONTROL_PREFIX):
            chunks: list[bytes] = []

            async def keep_chunk(b: bytes) -> None:
                chunks.append(b)

            await read_body(keep_chunk)
            body = b"".join(chunks)
            if framing == "chunked":
                body = _dechunk(body)
            status, obj = await self._control(method, path, body)
            keep = client_keep and not conn.close_after
            await self._simple(writer, status, obj, close=not keep)
            return keep
        if control_only:
            await read_body()
            await self._simple(writer, 404, {"error": "the control port serves only /__proxy/"})
            return client_keep

        # Which fault, if any, this request gets.
        await self._expire_if_due()
        fault = self._fault
        matched, hit = fault.select(method, path)
        self._count(requests=1)
        self._count(fault.mode, seen=1, matched=int(matched), injected=int(hit))
        if hit and fault.count is not None and fault.injected >= fault.count:
            await self._apply(Fault.make("pass"))  # the last of the series: later ones pass
        mode = fault.mode if hit else "pass"

        if mode == "down":
            # A request on a connection that was busy when `down` began.
            self._event(method, path, mode, "down", None)
            _abort(writer, rst=True)
            return False
        if mode == "status":
            size = await read_body()
            writer.write(fault.status_response())
            await writer.drain()
            self._event(method, path, mode, "status", fault.status, size)
            return client_keep and not conn.close_after
        if mode == "cut_request":
            if expect_continue:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
            want = fault.after_bytes
            if want is None:
                want = length // 2 if framing == "length" else (1 if framing == "chunked" else 0)
            got = 0
            while got < want:
                piece = await reader.read(min(_PIECE, want - got))
                if not piece:
                    break
                got += len(piece)
            self._event(method, path, mode, "cut_request", None, got)
            _abort(writer, fault.rst)
            return False
        if mode == "delay" and fault.when == "before":
            await asyncio.sleep(float(fault.seconds))
        return await self._forward(
            conn, reader, head, method, target, version, framing, length, client_keep,
            read_body, fault if hit else None,
        )

    async def _forward(
        self, conn, reader, head, method, target, version, framing, length, client_keep,
        read_body, fault: Fault | None,
    ) -> bool:
        """Send the request upstream and relay (or, for cut_response, cut) its answer."""
        writer = conn.writer
        mode = fault.mode if fault is not None else "pass"
        path = target.split("?", 1)[0]
        sent_to_client = False
        size = None

        async def to_upstream(b: bytes) -> None:
            try:
                up_writer.write(b)
                await up_writer.drain()
            except (ConnectionError, OSError) as e:
                raise _Broken("upstream", e) from e

        async def to_client(b: bytes) -> None:
            nonlocal sent_to_client
            sent_to_client = True
            try:
                writer.write(b)
                await writer.drain()
            except (ConnectionError, OSError) as e:
                raise _Broken("client", e) from e

        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port, limit=_HEAD_LIMIT
            )
        except OSError as e:
            self._count(upstream_errors=1)
            self._event(method, path, mode, "upstream_error", 502)
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError):
                await read_body()
            await self._simple(
                writer,
                502,
                {"error": f"fault proxy: upstream {self.upstream} unreachable: {e}"},
                close=not client_keep,
            )
            return client_keep and not conn.close_after
        try:
            # The request.
            drop = set(_HOP_BY_HOP) | {"expect"}
            extra = [("Connection", "close")]
            if self.rewrite_host:
                drop.add("host")
                extra.insert(0, ("Host", f"{self.upstream_host}:{self.upstream_port}"))
            request_line = f"{method} {target} {version}"
            await to_upstream(_Head(request_line, head.headers).encode(drop, extra))
            try:
                size = await read_body(to_upstream)
            except (asyncio.IncompleteReadError, ConnectionError, OSError) as e:
                raise _Broken("client", e) from e
            self._count(forwarded=1)

            # The answer; interim 1xx answers are dropped (the proxy answered Expect itself).
            try:
                while True:
                    resp = _parse_head(await _read_head(up_reader))
                    rparts = resp.start.split(" ", 2)
                    if (
                        len(rparts) < 2
                        or not rparts[0].startswith("HTTP/1.")
                        or not rparts[1].isdigit()
                    ):
                        raise ProtocolError(f"bad status line {resp.start!r}")
                    status = int(rparts[1])
                    if not 100 <= status < 200:
                        break
                if method == "HEAD" or status in (204, 304):
                    rframing, rlength = "none", 0
                else:
                    rframing, rlength = resp.body_framing()
                    if rframing == "none":
                        rframing = "eof"
            except (asyncio.IncompleteReadError, ProtocolError, ConnectionError, OSError) as e:
                raise _Broken("upstream", e) from e
            keep = client_keep and rframing != "eof" and not conn.close_after
            extra_resp = []
            if not keep:
                extra_resp.append(("Connection", "close"))
            elif version == "HTTP/1.0":
                extra_resp.append(("Connection", "keep-alive"))
            out_head = resp.encode(set(_HOP_BY_HOP), extra_resp)

            if mode == "cut_response":
                buf = bytearray(out_head)

                async def to_buffer(b: bytes) -> None:
                    buf.extend(b)

                try:
                    await _copy_body(up_reader, rframing, rlength, to_buffer)
                except (asyncio.IncompleteReadError, ProtocolError, ConnectionError, OSError) as e:
                    raise _Broken("upstream", e) from e
                self._count(responses=1)
                if fault.send_bytes:
                    with contextlib.suppress(_Broken):
                        await to_client(bytes(buf[: fault.send_bytes]))
                self._event(method, path, mode, "cut_response", status, size)
                _abort(writer, fault.rst)
                return False

            if mode == "delay" and fault.when == "after":
                await asyncio.sleep(float(fault.seconds))
            await to_client(out_head)
            try:
                await _copy_body(up_reader, rframing, rlength, to_client)
            except (asyncio.IncompleteReadError, ProtocolError, ConnectionError, OSError) as e:
                raise _Broken("upstream", e) from e
            self._count(responses=1)
            action = "delayed" if mode == "delay" else "forwarded"
            self._event(method, path, mode, action, status, size)
            return keep
        except _Broken as e:
            if e.side == "client":
                self._count(client_errors=1)
                self._event(method, path, mode, "client_error", None, size)
                _abort(writer)
                return False
            # The upstream failed part way (closed, reset, or sent garbage).
            self._count(upstream_errors=1)
            self._event(
                method, path, mode, "upstream_error", None if sent_to_client else 502, size
            )
            if not sent_to_client:
                await self._simple(
                    writer, 502, {"error": f"fault proxy: upstream failed: {e.error!r}"}, True
                )
            _abort(writer)
            return False
        finally:
            up_writer.close()

    async def _control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        name = path[len(CONTROL_PREFIX) :].strip("/")
        try:
            if name == "mode" and method == "GET":
                return 200, await self._current()
            if name == "mode" and method == "POST":
                params = json.loads(body or b"{}")
                if not isinstance(params, dict):
                    raise ValueError("the body must be a JSON object")
                return 200, await self._apply(Fault.make(**params))
            if name == "stats" and method == "GET":
                return 200, await self._stats_snapshot()
            if name == "reset" and method == "POST":
                return 200, await self._reset()
            if name == "events" and method == "GET":
                with self._lock:
                    return 200, list(self._events)
            if name == "info" and method == "GET":
                return 200, {
                    "port": self.port,
                    "control_port": self.control_port,
                    "upstream": self.upstream,
                    "pid": os.getpid(),
                }
        except (ValueError, TypeError) as e:
            return 400, {"error": str(e)}
        return 404, {"error": f"no control endpoint {method} {path}"}


class _Broken(Exception):
    """A connection failed during forwarding; `side` is "client" or "upstream"."""

    def __init__(self, side: str, error: BaseException):
        super().__init__(side, error)
        self.side = side
        self.error = error


def _dechunk(raw: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = raw.index(b"\r\n", pos)
        size = int(raw[pos:end].split(b";", 1)[0], 16)
        pos = end + 2
        if size == 0:
            return bytes(out)
        out += raw[pos : pos + size]
        pos += size + 2


# --------------------------------------------------------------------------------------
# Remote control helpers (for a test in another process than the proxy)


def remote(control_url: str, method: str, name: str, payload: Any = None) -> Any:
    """One control request: remote(url, "POST", "mode", {"mode": "pass"}) → parsed JSON."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(
        f"{control_url.rstrip('/')}{CONTROL_PREFIX}{name}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def remote_set_mode(control_url: str, mode: str = "pass", **params: Any) -> dict[str, Any]:
    """`Proxy.set_mode` over HTTP."""
    return remote(control_url, "POST", "mode", {"mode": mode, **params})


def remote_stats(control_url: str) -> dict[str, Any]:
    """`Proxy.stats` over HTTP."""
    return remote(control_url, "GET", "stats")


# --------------------------------------------------------------------------------------
# As a script


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {value!r}")
    return host, int(port)


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=_hostport, default=("127.0.0.1", 0), help="HOST:PORT")
    ap.add_argument("--upstream", required=True, help="http://HOST:PORT")
    ap.add_argument(
        "--control-port",
        type=int,
        default=0,
        help="the control port (0: pick one; -1: none, control only on the main port)",
    )
    ap.add_argument("--control-port-file", help="write the control port's number here")
    ap.add_argument("--port-file", help="write the main port's number here")
    ap.add_argument("--rewrite-host", action="store_true", help="send the upstream's Host")
    ap.add_argument("--mode", default=None, help='initial mode as JSON: {"mode": ...}')
    args = ap.parse_args(argv)

    host, port = args.listen
    proxy = Proxy(
        args.upstream,
        host=host,
        port=port,
        control_port=None if args.control_port < 0 else args.control_port,
        rewrite_host=args.rewrite_host,
    )
    proxy.start()
    if args.mode:
        proxy.set_mode(**json.loads(args.mode))
    if args.port_file:
        _write_atomic(args.port_file, f"{proxy.port}\n")
    if args.control_port_file:
        _write_atomic(args.control_port_file, f"{proxy.control_port or proxy.port}\n")
    print(
        json.dumps(
            {"url": proxy.url, "control_url": proxy.control_url, "upstream": proxy.upstream}
        ),
        flush=True,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
