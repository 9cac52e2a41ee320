"""git's smart HTTP protocol, served by `git http-backend` as a CGI child.

Clone and fetch may be anonymous; a push (`git-receive-pack`, both the
advertisement and the pack upload) needs HTTP Basic auth whose password (or
username, as GitHub also accepts) is a known token, else 401 with
`WWW-Authenticate: Basic realm="GitHub"` so git asks its credential helper.

Request bodies are streamed to the child from a thread (chunked bodies are
de-chunked; `Content-Encoding: gzip` is passed on as HTTP_CONTENT_ENCODING,
which http-backend inflates itself), and the child's output is streamed back
with chunked transfer encoding, so neither side buffers a whole pack.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import BinaryIO

from .git_repos import git_env

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 64 * 1024
BACKEND_TIMEOUT_S = 120
GIT_PATH = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?"
    r"/(?P<rest>info/refs|git-upload-pack|git-receive-pack|HEAD|objects/.+)$"
)
# Headers that must not reach the CGI as HTTP_*: credentials and framing.
_SKIP_HEADERS = {"authorization", "proxy-authorization", "content-type", "content-length",
                 "transfer-encoding", "connection"}


class GitAccessError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class GitRequest:
    repo: str  # "owner/name"
    path_info: str  # "/owner/name.git/info/refs"
    push: bool
    login: str | None


# access(repo, login, push) raises GitAccessError; pushed(repo) runs after a receive-pack.
AccessCheck = Callable[[str, str | None, bool], None]


class GitHttpBackend:
    def __init__(self, *, project_root: Path, tokens: Callable[[], dict[str, str]],
                 access: AccessCheck, pushed: Callable[[str], None]) -> None:
        self._root = project_root
        self._tokens = tokens
        self._access = access
        self._pushed = pushed
        self._git = shutil.which("git") or "git"

    @staticmethod
    def matches(path: str) -> bool:
        return GIT_PATH.match(path) is not None

    def serve(self, handler: BaseHTTPRequestHandler, path: str, query: str) -> int:
        """Answer one git request on `handler`; return the HTTP status sent."""
        found = GIT_PATH.match(path)
        assert found is not None
        push = found["rest"] == "git-receive-pack" or "service=git-receive-pack" in query
        try:
            login = self._login(handler.headers.get("Authorization"))
            if push and login is None:
                raise GitAccessError(401, "Authentication required to push")
            request = GitRequest(
                repo=f"{found['owner']}/{found['repo']}",
                path_info=f"/{found['owner']}/{found['repo']}.git/{found['rest']}",
                push=push, login=login,
            )
            self._access(request.repo, login, push)
        except GitAccessError as exc:
            return self._refuse(handler, exc)
        status = self._run_backend(handler, request, query)
        if push and handler.command == "POST" and status == 200:
            self._pushed(request.repo)
        return status

    def _login(self, header: str | None) -> str | None:
        """The token owner named by Basic auth; None when there is no header."""
        if not header:
            return None
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise GitAccessError(401, "Basic authentication required")
        try:
            username, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise GitAccessError(401, "Invalid credentials") from exc
        tokens = self._tokens()
        login = tokens.get(password) or tokens.get(username)
        if login is None:
            raise GitAccessError(401, "Invalid username or token. Password authentication is"
                                      " not supported for Git operations.")
        return login

    def _refuse(self, handler: BaseHTTPRequestHandler, exc: GitAccessError) -> int:
        body = f"remote: {exc.message}\n".encode()
        _discard_body(handler)
        handler.send_response(exc.status)
        if exc.status == 401:
            handler.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return exc.status

    def _cgi_env(self, handler: BaseHTTPRequestHandler, request: GitRequest,
                 query: str) -> dict[str, str]:
        env = git_env({
            "GIT_PROJECT_ROOT": str(self._root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": handler.request_version,
            "SERVER_SOFTWARE": "github-standin",
            "REQUEST_METHOD": handler.command,
            "PATH_INFO": request.path_info,
            "QUERY_STRING": query,
            "REMOTE_ADDR": handler.client_address[0],
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
        })
        if request.login:
            env["REMOTE_USER"] = request.login
        length = handler.headers.get("Content-Length")
        if length is not None and not _is_chunked(handler):
            env["CONTENT_LENGTH"] = length  # unset: http-backend reads to EOF
        for name, value in handler.headers.items():
            if name.lower() not in _SKIP_HEADERS:
                env["HTTP_" + name.upper().replace("-", "_")] = value
        return env

    def _run_backend(self, handler: BaseHTTPRequestHandler, request: GitRequest,
                     query: str) -> int:
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen(
                [self._git, "http-backend"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, env=self._cgi_env(handler, request, query),
            )
            assert proc.stdin is not None and proc.stdout is not None
            pump = threading.Thread(target=_pump_body, args=(handler, proc.stdin),
                                    name="standin-git-body", daemon=True)
            pump.start()
            try:
                status = _relay_output(handler, proc.stdout)
            except OSError:  # the client went away mid-response
                proc.kill()
                status = 499
            finally:
                proc.stdout.close()
                try:
                    proc.wait(timeout=BACKEND_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                pump.join(timeout=BACKEND_TIMEOUT_S)
            if proc.returncode:
                stderr.seek(0)
                log.warning("standin.git_backend_failed repo=%s status=%s stderr=%s",
                            request.repo, proc.returncode, stderr.read().decode(errors="replace"))
            return status


def _is_chunked(handler: BaseHTTPRequestHandler) -> bool:
    return "chunked" in handler.headers.get("Transfer-Encoding", "").lower()


def _request_chunks(handler: BaseHTTPRequestHandler):
    """The request body as it arrives, de-chunked when sent chunked."""
    rfile = handler.rfile
    if _is_chunked(handler):
        while True:
            size_line = rfile.readline(1024)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            remaining = size
            while remaining:
                data = rfile.read(min(remaining, COPY_CHUNK_BYTES))
                if not data:
                    return
                remaining -= len(data)
                yield data
            rfile.readline(16)  # CRLF after each chunk
    else:
        remaining = int(handler.headers.get("Content-Length") or 0)
        while remaining:
            data = rfile.read(min(remaining, COPY_CHUNK_BYTES))
            if not data:
                return
            remaining -= len(data)
            yield data


def _pump_body(handler: BaseHTTPRequestHandler, sink: BinaryIO) -> None:
    """Copy the request body into the backend; keep reading it even if the backend quits.

    Reading the whole body keeps a kept-alive connection in step for the next request.
    """
    writable = True
    try:
        for data in _request_chunks(handler):
            if writable:
                try:
                    sink.write(data)
                except (OSError, ValueError):
                    writable = False  # backend exited early; it answers with its own error
    except (OSError, ValueError):
        handler.close_connection = True  # client hung up or sent a broken chunk
    finally:
        with contextlib.suppress(OSError):
            sink.close()


def _discard_body(handler: BaseHTTPRequestHandler) -> None:
    for _ in _request_chunks(handler):
        pass


def _relay_output(handler: BaseHTTPRequestHandler, stdout: BinaryIO) -> int:
    """Turn the CGI response on `stdout` into an HTTP response, streaming the body."""
    status, reason = 200, "OK"
    headers: list[tuple[str, str]] = []
    while True:
        line = stdout.readline(64 * 1024)
        if line in (b"\r\n", b"\n"):
            break
        if not line:  # backend died before finishing its headers
            status, reason = 500, "Internal Server Error"
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "status":
            code, _, reason = value.strip().partition(" ")
            status = int(code)
        else:
            headers.append((name.strip(), value.strip()))
    chunked = handler.request_version == "HTTP/1.1"
    handler.send_response(status, reason or None)
    for name, value in headers:
        handler.send_header(name, value)
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    while data := stdout.read1(COPY_CHUNK_BYTES):
        if chunked:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            handler.wfile.write(data)
        handler.wfile.flush()
    if chunked:
        handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()
    return status
