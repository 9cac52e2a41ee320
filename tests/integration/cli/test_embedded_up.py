"""`factory up` on the embedded default: nothing configured, data survives a restart."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from tests.support.net import free_port
from tests.support.processes import wait_until_healthy


def start_up(home: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"FACTORY_HOME": str(home), "PORT": str(port), "MAX_WORKERS": "0"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "ai_factory", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_until_healthy(f"http://127.0.0.1:{port}", proc, timeout_s=60,
                       output=lambda: proc.stdout.read() if proc.stdout else "")  # fmt: skip
    return proc


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    return output


def postgres_running_in(data_dir: Path) -> bool:
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "postgres" and str(data_dir) in " ".join(p.info["cmdline"] or []):
            return True
    return False


def test_up_on_the_embedded_database_keeps_data_across_restarts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    proc = start_up(home, port)
    try:
        created = httpx.post(
            f"http://127.0.0.1:{port}/api/work", json={"repo": "https://git.example/srv/demo.git", "spec": "- [ ] one"}
        ).json()
    finally:
        output = stop(proc)
    assert proc.returncode == 0, output
    assert (home / "pg" / "PG_VERSION").exists()
    assert not postgres_running_in(home / "pg"), "embedded PostgreSQL left running after exit"

    proc = start_up(home, port)
    try:
        again = httpx.get(f"http://127.0.0.1:{port}/api/work/{created['id']}").json()
    finally:
        stop(proc)
    assert again["id"] == created["id"] and again["status"] == "queued"
