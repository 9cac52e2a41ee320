"""The HTTP listener: one threaded stdlib server that splits traffic three ways.

`/api/v3/...` goes to the REST API (and `/api/graphql`, GitHub Enterprise's GraphQL
address, to its `/graphql` route, as on api.github.com), `/<owner>/<repo>.git/...` to
git's smart HTTP backend, `/_blobs/...` to the signed downloads REST redirects to (job
logs, see `blobs`), and anything else is a web page (`html_url`s: a small HTML page
for repositories, issues and pulls that exist, 404 otherwise).
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import blobs, pull_payloads
from .git_http import GIT_PATH, GitHttpBackend
from .models import RequestRecord
from .rest import API_PREFIX, RestApi, RestRequest, RestResponse
from .state import StandinState

log = logging.getLogger(__name__)

MAX_API_BODY_BYTES = 10 * 1024 * 1024
GRAPHQL_PATH = "/api/graphql"
IDLE_CONNECTION_TIMEOUT_S = 120
_WEB_PAGE = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)(?:/(?:issues|pull)/(?P<number>\d+))?/?$"
)


class StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, rest: RestApi, git: GitHttpBackend,
                 state: StandinState) -> None:
        super().__init__(address, StandinRequestHandler)
        self.rest = rest
        self.git = git
        self.state = state
        self.crashes = 0  # unexpected exceptions in handlers; tests may assert it stays 0
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut kept-alive connections too, so a stopped stand-in answers nobody."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class StandinRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server_version = "GitHub.com"
    sys_version = ""
    server: StandinHTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        log.debug("standin.http " + format, *args)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        if url.path == API_PREFIX or url.path.startswith(API_PREFIX + "/"):
            self._serve_api(url.path[len(API_PREFIX):] or "/", url.query)
        elif url.path == GRAPHQL_PATH:
            self._serve_api("/graphql", url.query)
        elif url.path.startswith(blobs.BLOB_PREFIX):
            self._serve_blob(url.path, url.query)
        elif self.server.git.matches(url.path):
            status = self.server.git.serve(self, url.path, url.query)
            found = GIT_PATH.match(url.path)
            self._record(f"git {self.command} {found['rest'] if found else '?'}", status)
        else:
            self._serve_web(url.path)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline(16)
            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_API_BODY_BYTES:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _serve_api(self, path: str, query: str) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(400, b'{"message": "Problems parsing JSON"}', "application/json")
            return
        try:
            response = self.server.rest.handle(RestRequest(
                method=self.command, path=path.rstrip("/") or "/",
                query=parse_qs(query, keep_blank_values=True), headers=self.headers, body=body,
            ))
        except Exception:  # a stand-in bug must fail the test, not hang the client
            log.exception("standin.api_crashed %s %s", self.command, path)
            self.server.crashes += 1
            response = RestResponse(500, {"message": "Server Error (stand-in bug, see log)"})
        payload = response.encoded()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and response.status != 304:
            self.wfile.write(payload)

    def _serve_web(self, path: str) -> None:
        self._read_body()
        found = _WEB_PAGE.match(path)
        title = None
        if found:
            state = self.server.state
            with state.lock:
                repo = state.repos.get(f"{found['owner']}/{found['repo']}".lower())
                if repo and found["number"]:
                    issue = repo.issues.get(int(found["number"]))
                    title = f"{issue.title} · #{issue.number}" if issue else None
                elif repo:
                    title = repo.full_name
        if title is None:
            self._send(404, b"Not Found", "text/plain; charset=utf-8")
        else:
            escaped = html.escape(title)
            page = f"<!doctype html><title>{escaped}</title><h1>{escaped}</h1>"
            self._send(200, page.encode(), "text/html; charset=utf-8")
        self._record(f"web {self.command}", 404 if title is None else 200)

    def _serve_blob(self, path: str, query: str) -> None:
        """A signed job-log download: text/plain while the link holds, 403 after."""
        self._read_body()
        state = self.server.state
        target = blobs.job_log_target(state.blob_key, path, query)
        body = None
        if target is not None:
            with state.lock:
                repo = next((r for r in state.repos.values() if r.id == target[0]), None)
                job = repo.jobs.get(target[1]) if repo else None
                if repo is not None and job is not None:
                    body = pull_payloads.job_log(job, repo.check_runs[job.id])
        if target is None:
            self._send(403, b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>"
                            b"AuthenticationFailed</Code><Message>Server failed to authenticate"
                            b" the request.</Message></Error>", "application/xml")
        elif body is None:
            self._send(404, b"BlobNotFound", "text/plain; charset=utf-8")
        else:
            self._send(200, body, "text/plain; charset=utf-8")
        status = 403 if target is None else 404 if body is None else 200
        self._record(f"blob {self.command}", status)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _record(self, route: str, status: int) -> None:
        self.server.state.record_request(RequestRecord(
            method=self.command, path=urlsplit(self.path).path, route=route, status=status,
            actor=None, at=time.monotonic(),
        ))
