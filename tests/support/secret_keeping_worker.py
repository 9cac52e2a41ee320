"""`factory worker` as a spawner starts it, after keeping a copy of the secrets it was handed.

Tests that look for a worker's secrets where they must never be (what its agent could
collect, the pushed branch, the log) must know them, and the orchestrator makes the worker
token up and hands it over through a pipe (FACTORY_SECRETS_FD). As FACTORY_WORKER_COMMAND,
this script reads that pipe, saves what it held under FACTORY_HOME/test-secrets (root's,
0700: an agent running as another user cannot read it), puts the same bytes into a new pipe
at the same descriptor, and becomes the real worker.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    fd = int(os.environ["FACTORY_SECRETS_FD"])
    with os.fdopen(fd, "rb") as pipe:
        data = pipe.read()
    folder = Path(os.environ["FACTORY_HOME"]) / "test-secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    copy = os.open(folder / f"{os.getpid()}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(copy, data)
    os.close(copy)
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    os.dup2(read_end, fd)  # inheritable, where the worker looks for it
    os.close(read_end)
    os.execv(sys.executable, [sys.executable, "-m", "ai_factory.worker"])


if __name__ == "__main__":
    main()
