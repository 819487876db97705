"""HTTP plumbing: a ``ThreadingHTTPServer`` speaking HTTP/1.1 on loopback.

The handler reads the whole request, logs it, checks auth on ``/v1``, applies
transport faults (status answers, dropped connections, slowness), hands the
request to the routes and writes a response that always has a
Content-Length (keep-alive stays usable). Nothing here knows about jobs.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import traceback
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import routes
from .cdn import handle_file
from .context import Context
from .controls import handle_control
from .faults import TRANSPORT_KINDS, Fault
from .logbook import summarise_body
from .messages import Request, Response
from .options import EmulatorConfig, ServerCredentials, Timing

log = logging.getLogger("scenario_api.emulator")

MAX_BODY = 64 * 1024 * 1024
IDLE_TIMEOUT = 30.0

DEFAULT_429_REASON = "Too many requests"

# Signed file URLs are bearer credentials for their asset: the request log and
# the DEBUG request lines keep ``Expires`` (useful when testing expiry) but
# never the signature parts.
SIGNED_QUERY_KEYS = frozenset({"signature", "policy", "key-pair-id"})
REDACTED = "<redacted>"
_SIGNED_IN_TEXT = re.compile(r"((?:^|[?&])(?:Signature|Policy|Key-Pair-Id)=)[^&\s\"]*", re.I)


def redact_signed_query(query: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``query`` with the signed-URL credentials (Signature, Policy, Key-Pair-Id) hidden."""
    return {k: (REDACTED if k.lower() in SIGNED_QUERY_KEYS else v) for k, v in query.items()}


def redact_signed_text(text: str) -> str:
    """``text`` (e.g. a request line) with the values of signed-URL query parameters hidden."""
    return _SIGNED_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)


def fault_response(fault: Fault) -> Response:
    """The canned answer of a ``status`` fault."""
    status = int(fault.params["status"])
    retry_after = fault.params.get("retry_after")
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = f"{float(retry_after):g}"
    if "raw" in fault.params:
        content_type = fault.params.get("content_type", "text/html; charset=utf-8")
        return Response(status, fault.params["raw"].encode("utf-8"), content_type, headers)
    if "body" in fault.params:
        body = fault.params["body"]
    elif status == 429:
        body = {
            "reason": DEFAULT_429_REASON,
            "remainingSeconds": retry_after if retry_after is not None else 1,
            "details": {"actionName": "generate", "actionLimit": 2},
        }
    else:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = {"reason": f"{phrase} (injected by the emulator)"}
    return Response.json(status, body, headers)


GATEWAY_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    b"<hr><center>emulated gateway</center></body></html>"
)


def broken_response(fault: Fault, resp: Response) -> Response:
    """A ``broken_body`` fault's spoiled version of a processed 2xx answer (the job exists all the same)."""
    mode = fault.params["mode"]
    status = int(fault.params.get("status", resp.status))
    if mode == "malformed_json":
        return Response(status, resp.body[: max(1, len(resp.body) // 2)], "application/json", dict(resp.headers))
    if mode == "html":
        return Response(status, GATEWAY_HTML, "text/html; charset=utf-8", dict(resp.headers))
    if mode == "empty":
        return Response(status, b"", "application/json", dict(resp.headers))
    if mode == "not_object":
        return Response.json(status, ["ok"], resp.headers)
    try:
        payload = json.loads(resp.body)
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    job = payload.get("job")
    if mode == "no_job":
        payload.pop("job", None)
        payload.pop("asset", None)
    elif isinstance(job, dict):
        if mode == "no_job_id":
            job.pop("jobId", None)
            job.pop("id", None)
        else:  # bad_job_id
            job["jobId"] = "job id ../../" + str(job.get("jobId", ""))[-6:]
    return Response.json(status, payload, resp.headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ScenarioEmulator/0.1"
    timeout = IDLE_TIMEOUT  # idle keep-alive connections end on their own
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server: _Server

    # Every method goes through one path; unknown methods get 404/405 from the routes.
    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, in the emulated server's clock (``clock_skew``)."""
        now = time.time() if timestamp is None else timestamp
        return super().date_time_string(now + self.server.ctx.config.clock_skew)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), redact_signed_text(format % args))

    # ------------------------------------------------------------------ reading

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 413/400 for a body we won't read."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            self._send(Response.error(400, "Bad Content-Length"), close=True)
            return None
        if length > MAX_BODY:
            self._send(Response.error(413, f"Request body larger than {MAX_BODY} bytes"), close=True)
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                self._send(Response.error(400, "Bad chunked encoding"), close=True)
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                self._send(Response.error(413, f"Request body larger than {MAX_BODY} bytes"), close=True)
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _origin(self) -> str:
        host = (self.headers.get("Host") or "").strip()
        if host and all(c.isalnum() or c in ".-:[]" for c in host):
            return f"http://{host}"
        return self.server.origin

    # ------------------------------------------------------------------ writing

    def _send(self, resp: Response, *, close: bool = False) -> bool:
        """Write ``resp``; False if the client had already gone away."""
        body = resp.body
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in resp.headers.items():
                self.send_header(name, value)
            if close or resp.truncate:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD" and resp.trickle > 0:
                for start in range(0, len(body), 256):  # a host that trickles bytes
                    self.wfile.write(body[start : start + 256])
                    self.wfile.flush()
                    time.sleep(resp.trickle)
            elif self.command != "HEAD":
                self.wfile.write(body[: len(body) // 2] if resp.truncate else body)
            self.wfile.flush()
            return True
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.close_connection = True
            return False

    def _drop(self) -> None:
        """Close the connection without a byte of response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------------ main path

    def _handle(self) -> None:
        ctx = self.server.ctx
        split = urlsplit(self.path)
        path = split.path or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        body = self._read_body()
        if body is None:
            return
        req = Request(self.command, path, query, self.headers, body, self._origin())

        if path == "/_emulator" or path.startswith("/_emulator/"):
            self._send(handle_control(ctx, req))
            return

        is_api = path == "/v1" or path.startswith("/v1/")
        auth_header = self.headers.get("Authorization")
        auth_ok: bool | None = None
        if is_api:
            auth_ok, req.key = ctx.check_auth(auth_header)
        entry = ctx.log.open(
            self.command,
            path,
            redact_signed_query(query),
            auth_ok=auth_ok,
            auth_header_present=auth_header is not None,
            body=summarise_body(body),
        )
        if is_api and not auth_ok:
            resp = Response.json(401, {"reason": "Unauthorized"}, {"WWW-Authenticate": 'Basic realm="Scenario"'})
            self._answer(entry, resp)
            return

        fault = ctx.faults.take(TRANSPORT_KINDS, self.command, path, query)
        if fault is not None:
            ctx.log.update(entry, fault=fault.kind)
            if fault.kind == "disconnect_before_accept":
                self._drop()
                return
            if fault.kind == "status":
                resp = fault_response(fault)
                self._answer(entry, resp)
                return
        slow = fault if fault is not None and fault.kind == "slow" else None
        if slow is not None and not slow.params.get("process_first", True):
            time.sleep(float(slow.params["delay"]))

        resp = self._process(ctx, req, is_api)
        if resp.log_extra:
            ctx.log.update(entry, **resp.log_extra)
        if fault is not None and fault.kind == "disconnect_after_accept":
            ctx.log.update(entry, processed_status=resp.status)
            self._drop()
            return
        if fault is not None and fault.kind == "status_after_accept":
            ctx.log.update(entry, processed_status=resp.status)
            resp = fault_response(fault)
        elif fault is not None and fault.kind == "broken_body":
            ctx.log.update(entry, processed_status=resp.status)
            if 200 <= resp.status < 300:
                resp = broken_response(fault, resp)
        if slow is not None and slow.params.get("process_first", True):
            time.sleep(float(slow.params["delay"]))
        self._answer(entry, resp)

    def _answer(self, entry: dict[str, Any], resp: Response) -> None:
        """Log the status *before* writing: a client that reads the log right after
        receiving the answer must already see it."""
        log_ = self.server.ctx.log
        log_.update(entry, status=resp.status, delivered=True)
        if not self._send(resp):
            log_.update(entry, delivered=False)

    def _process(self, ctx: Context, req: Request, is_api: bool) -> Response:
        try:
            if is_api:
                return routes.dispatch(ctx, req)
            if req.path.startswith("/cdn/"):
                return handle_file(ctx, req)
            return Response.error(404, f"No route for {req.method} {req.path}")
        except Exception as exc:  # a bug in the emulator must still produce an answer
            log.error("emulator error on %s %s:\n%s", req.method, req.path, traceback.format_exc())
            return Response.error(500, f"Internal emulator error: {type(exc).__name__}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # the stdlib default of 5 resets bursts of concurrent connections

    def __init__(self, address: tuple[str, int], ctx: Context) -> None:
        self.ctx = ctx
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        self.origin = f"http://{shown}:{port}"

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self._open_lock:
            self._open.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            conns = list(self._open)
            self._open.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)


class Emulator:
    """A Scenario-compatible API server on a background thread.

    ``credentials=None`` uses SCENARIO_API_KEY / SCENARIO_API_SECRET when both
    are set, else :data:`DEMO_KEY` / :data:`DEMO_SECRET`. Extra keyword
    arguments are initial config values (``credits``, ``url_ttl``,
    ``short_pages``, ``mixed_sizes``, ``credits_status``, ``credits_reason``);
    ``POST /_emulator/reset`` returns to exactly these.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: tuple[str, str] | None = None,
        timing: Timing | None = None,
        seed_demo_assets: bool = True,
        **config: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.server_credentials = ServerCredentials.resolve(credentials)
        defaults = EmulatorConfig(timing=timing or Timing()).updated(config)
        self.ctx = Context(self.server_credentials, defaults, seed_demo_assets)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Bind and serve in a daemon thread; returns the base URL (``…/v1``)."""
        with self._lock:
            if self._server is None:
                server = _Server((self.host, self.port), self.ctx)
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"scenario-emulator:{server.server_address[1]}",
                    daemon=True,
                )
                thread.start()
                self._server, self._thread = server, thread
        return self.url

    def stop(self) -> None:
        """Stop serving and close every connection; safe to call twice."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_open_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``"""
        server = self._server
        if server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return server.origin

    @property
    def url(self) -> str:
        """The API base URL, ``http://127.0.0.1:PORT/v1``."""
        return self.origin + "/v1"

    @property
    def credentials(self) -> tuple[str, str]:
        """The (key, secret) pair the server accepts (for in-process test code)."""
        return self.server_credentials.key, self.server_credentials.secret

    # ------------------------------------------------------------------ in-process controls

    def configure(self, **changes: Any) -> EmulatorConfig:
        return self.ctx.update_config(changes)

    def add_faults(self, faults: Mapping[str, Any] | list[Mapping[str, Any]]) -> None:
        self.ctx.faults.add(faults)

    def request_log(self) -> list[dict[str, Any]]:
        return self.ctx.log.entries()

    def reset(self) -> None:
        self.ctx.reset()

    def __repr__(self) -> str:
        where = self._server.origin if self._server else "stopped"
        return f"Emulator({where}, {self.server_credentials!r})"
