"""A bare git repository that workers clone from and push to, and what a test reads from it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    )
    return done.stdout


@dataclass
class Origin:
    """A bare repository the worker clones from and pushes to, with a seed commit on main."""

    path: Path

    @classmethod
    def create(cls, tmp_path: Path, files: dict[str, str] | None = None) -> Origin:
        seed = tmp_path / "seed"
        seed.mkdir()
        git(seed, "init", "-q", "-b", "main")
        git(seed, "config", "user.name", "Seed")
        git(seed, "config", "user.email", "seed@example.invalid")
        for name, text in {"README.md": "# demo\n", **(files or {})}.items():
            (seed / name).parent.mkdir(parents=True, exist_ok=True)
            (seed / name).write_text(text)
        git(seed, "add", "-A")
        git(seed, "commit", "-q", "-m", "initial")
        bare = tmp_path / "origin.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(bare)], check=True)
        return cls(bare)

    def branches(self) -> list[str]:
        out = git(self.path, "for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return out.split()

    def log(self, branch: str) -> list[str]:
        return git(self.path, "log", "--format=%s", f"main..{branch}").splitlines()

    def trailers(self, branch: str) -> list[str]:
        """The `Factory-Task` trailer of each commit since main, newest first."""
        fmt = "--format=%(trailers:key=Factory-Task,valueonly,separator=%x2C)"
        return git(self.path, "log", fmt, f"main..{branch}").split()

    def files(self, branch: str) -> list[str]:
        out = git(self.path, "diff", "--name-only", f"main...{branch}")
        return sorted(out.split())

    def show(self, branch: str, path: str) -> str:
        return git(self.path, "show", f"{branch}:{path}")

    def tree(self, branch: str) -> list[str]:
        return sorted(git(self.path, "ls-tree", "-r", "--name-only", branch).split())
