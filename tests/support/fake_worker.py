"""A stand-in for `factory worker` that speaks the real worker protocol over HTTP.

Standard library only, so it starts fast and runs inside a bare container with just
a Python interpreter mounted. It reads what a spawned worker gets (WORKER_ID, WORK_ITEM,
ORCHESTRATOR_URL, HEARTBEAT_INTERVAL_SECONDS in its environment; its WORKER_TOKEN
through FACTORY_SECRETS_FD or FACTORY_SECRETS_FILE), registers, heartbeats
in a thread, and then behaves as its mode says. The mode comes from a line
``fake-mode: MODE`` in the item's spec, else FAKE_WORKER_MODE, else ``complete``:

- complete: work for ``fake-seconds`` (spec) / FAKE_WORKER_SECONDS (default 0.5),
  record one iteration, complete;
- register-exit: exit right after registering (the dispatch benchmark);
- forever: heartbeat until killed;
- stubborn: heartbeat until killed, ignoring SIGTERM;
- hang: stop heartbeating but stay alive;
- crash: exit with code 7 without reporting;
- fail: report a failure;
- spam: print FAKE_WORKER_SPAM_BYTES of output, then complete.

With FAKE_WORKER_MARKERS set it appends JSON lines to ``<dir>/<item id>.jsonl``:
``start`` after registering, ``completed`` after the orchestrator accepted the result,
and with FAKE_WORKER_DUMP an ``env`` line describing its environment (and whether it
could write each of FAKE_WORKER_PROBE_PATHS). Calls are retried while the
orchestrator is unreachable (it may be restarting); 409 (lease lost) exits with 3.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

RETRY_FOR_S = float(os.environ.get("FAKE_WORKER_RETRY_S", "120"))


class LeaseLost(Exception):
    pass


class Client:
    def __init__(self, base: str, worker_id: str, token: str) -> None:
        self.base = base.rstrip("/")
        self.worker_id = worker_id
        self.token = token

    def post(self, path: str, body: dict, *, retry: bool = True) -> dict:
        data = json.dumps(body).encode()
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            request = urllib.request.Request(
                self.base + path,
                data=data,
                method="POST",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as exc:
                if exc.code == 409:
                    raise LeaseLost(exc.read().decode(errors="replace")) from None
                if exc.code < 500 or not retry or time.monotonic() > deadline:
                    raise
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError):
                # HTTPException: the orchestrator died in the middle of its answer.
                if not retry or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)


def spec_value(spec: str, key: str) -> str | None:
    match = re.search(rf"^\s*{re.escape(key)}:\s*(\S+)", spec, re.MULTILINE)
    return match.group(1) if match else None


def keep_token(worker_id: str, token: str) -> None:
    """``<markers>/tokens/<worker id>``: the token it was given, so a test can play the stale
    worker later (no one else can read it from the process any more)."""
    folder = os.environ.get("FAKE_WORKER_MARKERS")
    if folder:
        os.makedirs(os.path.join(folder, "tokens"), exist_ok=True)
        with open(os.path.join(folder, "tokens", worker_id), "w") as handle:
            handle.write(token)


def mark(item_id: str, event: str, **data: object) -> None:
    folder = os.environ.get("FAKE_WORKER_MARKERS")
    if not folder:
        return
    line = json.dumps({"event": event, "worker": os.environ["WORKER_ID"], "t": time.time(), **data})
    fd = os.open(os.path.join(folder, f"{item_id}.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def describe_env() -> dict[str, object]:
    try:
        stdin_empty = os.read(0, 1) == b""
    except OSError:
        stdin_empty = True
    writable = {}
    for path in filter(None, os.environ.get("FAKE_WORKER_PROBE_PATHS", "").split(",")):
        try:
            with open(path, "w") as probe:
                probe.write("probe")
            writable[path] = True
        except OSError:
            writable[path] = False
    return {
        "writable": writable,
        "names": sorted(k for k in os.environ if k.isupper()),
        "orchestratorUrl": os.environ.get("ORCHESTRATOR_URL"),
        "workItemKeys": sorted(json.loads(os.environ["WORK_ITEM"])),
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "stdinEmpty": stdin_empty,
        "cwd": os.getcwd(),
    }


def heartbeat_forever(client: Client, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            client.post(
                f"/api/worker/{client.worker_id}/heartbeat",
                {"iteration": 1, "tokens": 10, "phase": "running"},
                retry=False,
            )
        except LeaseLost:
            if stop.is_set():
                return  # the result is being reported: the item has moved on
            print("fake worker: lease lost on heartbeat, exiting", flush=True)
            os._exit(3)
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            pass  # the orchestrator may be restarting; keep trying


def launch_secrets() -> dict:
    """The spawner's secrets: a pipe (FACTORY_SECRETS_FD) or a file (FACTORY_SECRETS_FILE)."""
    if fd := os.environ.pop("FACTORY_SECRETS_FD", None):
        with os.fdopen(int(fd), "rb") as pipe:
            return json.loads(pipe.read() or b"{}")
    if path := os.environ.pop("FACTORY_SECRETS_FILE", None):
        with open(path, "rb") as handle:
            found = json.loads(handle.read() or b"{}")
        try:
            os.unlink(path)
        except OSError:
            pass
        return found
    return {}


def main() -> int:
    worker_id = os.environ["WORKER_ID"]
    item = json.loads(os.environ["WORK_ITEM"])
    item_id = item["id"]
    spec = item.get("spec", "")
    mode = spec_value(spec, "fake-mode") or os.environ.get("FAKE_WORKER_MODE", "complete")
    seconds = float(spec_value(spec, "fake-seconds") or os.environ.get("FAKE_WORKER_SECONDS", "0.5"))
    interval = float(os.environ.get("HEARTBEAT_INTERVAL_SECONDS", "30"))
    token = launch_secrets().get("WORKER_TOKEN") or os.environ["WORKER_TOKEN"]
    client = Client(os.environ["ORCHESTRATOR_URL"], worker_id, token)
    keep_token(worker_id, token)
    print(f"fake worker {worker_id} for {item_id} mode={mode}", flush=True)
    if os.environ.get("FAKE_WORKER_DUMP"):
        mark(item_id, "env", **describe_env())

    client.post(
        "/api/worker/register", {"workItemId": item_id, "workerId": worker_id, "host": socket.gethostname()}
    )
    mark(item_id, "start")
    print("fake worker: registered", flush=True)
    if mode == "register-exit":
        return 0

    stop = threading.Event()
    beats = threading.Thread(target=heartbeat_forever, args=(client, interval, stop), daemon=True)
    if mode != "hang":
        beats.start()

    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode in ("forever", "hang", "stubborn"):
        while True:
            time.sleep(3600)
    if mode == "crash":
        time.sleep(seconds)
        print("fake worker: crashing", flush=True)
        return 7
    if mode == "spam":
        line = "x" * 1023 + "\n"
        for _ in range(int(os.environ.get("FAKE_WORKER_SPAM_BYTES", "65536")) // 1024):
            sys.stdout.write(line)
        sys.stdout.flush()

    time.sleep(seconds)
    stop.set()
    if mode == "fail":
        client.post(f"/api/worker/{worker_id}/fail", {"error": "fake failure", "iteration": 1})
        return 1
    client.post(f"/api/worker/{worker_id}/iteration", {"iteration": 1, "outcome": "progress"})
    result = {"prUrl": f"https://example.invalid/pr/{item_id}", "iterations": 1, "tokens": 10}
    client.post(f"/api/worker/{worker_id}/complete", result)
    mark(item_id, "completed")
    print("fake worker: completed", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LeaseLost as exc:
        print(f"fake worker: lease lost: {exc}", flush=True)
        sys.exit(3)
