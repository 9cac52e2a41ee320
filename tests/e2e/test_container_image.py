"""The factory's image, built by docker/build-local.sh, runs a real item: `bench/container.py`
(orchestrator with the docker spawner against podman's API, the worker as a container of the
image, PostgreSQL and Redis of this host, the scripted model). The suite never builds the
image (minutes of work): without podman or the image, this skips with the reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("FACTORY_WORKER_IMAGE", "localhost/factory-worker:latest")


def test_the_built_image_takes_an_item_to_a_pushed_branch(system_pg) -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    if subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode != 0:
        pytest.skip(f"image {IMAGE} not built (docker/build-local.sh)")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "container.py"), "--json", "--image", IMAGE],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
        env={**os.environ, "TEST_DATABASE_URL": system_pg.admin_url},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-6000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed" and result["containerId"]
    assert result["branch"] and result["file"] == "hello from a container\n"
