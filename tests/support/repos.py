"""Local git repositories and work items for the worker's tests: a repository with one
commit, a work item pointing at it, and `git` run as a user runs it."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

from ai_factory.core.models import WorkItem

SPEC = "# Add a greeting\n\n- [ ] Create hello.py printing hello\n- [ ] Add a test\n"


def make_item(
    repo: str,
    *,
    base_branch: str = "main",
    spec: str = SPEC,
    source: str = "api",
    source_id: str = "api-1",
    source_url: str = "",
) -> WorkItem:
    now = datetime.now(UTC)
    return WorkItem(
        id=uuid.uuid4(),
        source=source,
        source_id=source_id,
        source_url=source_url,
        repo=repo,
        base_branch=base_branch,
        spec=spec,
        priority="medium",
        status="running",
        created_at=now,
        updated_at=now,
    )


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run git as a user would in `cwd` (argv list); return stdout."""
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {args} failed: {result.stderr}")
    return result.stdout


def make_local_repo(path: Path, files: dict[str, str] | None = None, branch: str = "main") -> Path:
    """A non-bare repository with one commit of `files` on `branch`."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", f"--initial-branch={branch}")
    for name, text in (files or {"README.md": "# demo\n", "src/app.py": "print('hi')\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", "Initial commit")
    return path
