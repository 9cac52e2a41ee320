"""podman's Docker-compatible API on a private socket: what the docker spawner's tests and
bench/container.py start in place of a Docker daemon."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.polling import wait_for

# Containers inherit no rlimits from the service (a sandbox may forbid raising them) and use
# cgroupfs, so the service needs neither systemd nor a writable cgroup delegation.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
"""


def containers_env(workdir: Path) -> dict[str, str]:
    """This environment, with podman reading `CONTAINERS_CONF` (written into `workdir`)."""
    conf = workdir / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


@contextmanager
def podman_service(
    socket_path: Path, *, env: dict[str, str], log: Path, podman: Sequence[str] = ("podman",)
) -> Iterator[str]:
    """`podman system service` on `socket_path` while the block runs; yields its DOCKER_HOST.
    `podman`: the command with its global options (e.g. a private image store)."""
    service = subprocess.Popen(
        [*podman, "system", "service", "--time=0", f"unix://{socket_path}"],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )  # fmt: skip
    try:
        wait_for(socket_path.exists, timeout=60, what="the podman API socket")
        yield f"unix://{socket_path}"
    finally:
        service.terminate()
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.kill()
