"""How a spawned worker receives its secrets: never in its environment or its argv.

The agent a worker runs can read the worker's environment (`/proc/<pid>/environ`
of its parent, as the same user) and every argv on the host, so the worker token
(its lease on the item) and the GitHub token travel another way:

- ``FACTORY_SECRETS_FD=<n>``: a pipe the spawner filled with a JSON object and
  closed, inherited by the worker alone (process and bwrap spawners);
- ``FACTORY_SECRETS_FILE=<path>``: a file only the worker's user can read, put
  in place before the worker starts (the docker spawner copies it into the
  container; Kubernetes mounts the worker's own Secret there). The worker
  removes it when it can.

`read_launch_secrets` takes the secrets once, at start-up, closes the pipe or
removes the file, and forgets the variable; from then on they live only in the
worker's memory, which `PR_SET_DUMPABLE=0` keeps from other processes of its user.
Keys: ``WORKER_TOKEN`` and ``GITHUB_TOKEN`` (absent when not configured).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from ai_factory.core.errors import ConfigError

SECRETS_FD_VAR = "FACTORY_SECRETS_FD"
SECRETS_FILE_VAR = "FACTORY_SECRETS_FILE"
KEYS = ("WORKER_TOKEN", "GITHUB_TOKEN")


def encode(secrets: Mapping[str, str]) -> bytes:
    return json.dumps({k: v for k, v in secrets.items() if k in KEYS and v}).encode()


def secrets_pipe(secrets: Mapping[str, str]) -> int:
    """A pipe holding `secrets`, closed for writing; the read end for the child (the caller
    passes it with `pass_fds` and closes its own copy once the child has started)."""
    data = encode(secrets)
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)  # a few hundred bytes: far below the pipe's buffer
    finally:
        os.close(write_end)
    return read_end


def read_launch_secrets(environ: MutableMapping[str, str]) -> dict[str, str]:
    """The secrets the spawner handed over (empty if none), taken once: the pipe is drained
    and closed, the file removed, the variable dropped from `environ`."""
    raw: bytes | None = None
    if fd_text := environ.pop(SECRETS_FD_VAR, None):
        try:
            fd = int(fd_text)
        except ValueError:
            raise ConfigError(f"{SECRETS_FD_VAR}: not a file descriptor ({fd_text!r})") from None
        try:
            with os.fdopen(fd, "rb") as pipe:
                raw = pipe.read()
        except OSError as exc:
            raise ConfigError(f"{SECRETS_FD_VAR}: cannot read descriptor {fd} ({exc})") from exc
    elif path_text := environ.pop(SECRETS_FILE_VAR, None):
        path = Path(path_text)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{SECRETS_FILE_VAR}: cannot read {path} ({exc.strerror})") from exc
        with contextlib.suppress(OSError):  # a read-only mount (Kubernetes) stays
            path.unlink()
    if raw is None:
        return {}
    try:
        found = json.loads(raw or b"{}")
    except ValueError:
        raise ConfigError("the launch secrets are not a JSON object") from None
    if not isinstance(found, dict):
        raise ConfigError("the launch secrets are not a JSON object")
    return {k: str(v) for k, v in found.items() if k in KEYS and isinstance(v, str) and v}
