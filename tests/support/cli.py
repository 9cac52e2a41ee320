"""The `factory` command as a user runs it: a subprocess with the test's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def factory(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ai_factory", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        cwd=cwd,
        timeout=60,
        check=False,
    )
