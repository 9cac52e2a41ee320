"""Bare repositories on disk: create them, commit to them, and read them back.

Everything goes through git plumbing with an argv list against `--git-dir`, so
no working tree is needed and branch names from requests are never parsed as
options (they are always passed as `refs/heads/<name>`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_S = 30
STANDIN_AUTHOR = ("GitHub Stand-in", "standin@users.noreply.github.com")


@dataclass(frozen=True)
class Comparison:
    """What GitHub reports for `base...head` on a pull request."""

    commits: int
    additions: int
    deletions: int
    changed_files: int


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without GIT_* variables, which could redirect our calls."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.update(extra or {})
    return env


def _git(
    repo: Path,
    *args: str,
    input_bytes: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", f"--git-dir={repo}", *args],
        input=input_bytes,
        capture_output=True,
        env=git_env(env),
        timeout=GIT_TIMEOUT_S,
        check=check,
    )


def init_bare(path: Path, default_branch: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)],
        capture_output=True,
        env=git_env(),
        timeout=GIT_TIMEOUT_S,
        check=True,
    )


def branch_sha(repo: Path, branch: str) -> str | None:
    """The commit `refs/heads/<branch>` points at, or None when there is no such branch."""
    result = _git(
        repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False
    )
    if result.returncode != 0:
        return None
    return result.stdout.decode().strip() or None


def branches(repo: Path) -> dict[str, str]:
    """Branch name -> commit sha."""
    out = _git(repo, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/heads")
    pairs = (line.rsplit(" ", 1) for line in out.stdout.decode().splitlines() if line)
    return {name: sha for name, sha in pairs}


def commit_files(
    repo: Path,
    branch: str,
    files: Mapping[str, str | bytes],
    message: str,
    *,
    start_point: str | None = None,
    author: tuple[str, str] = STANDIN_AUTHOR,
) -> str:
    """Commit `files` (path -> content) on top of `branch`; return the sha.

    A missing branch is created from branch `start_point` (a root commit if None).
    """
    old = branch_sha(repo, branch)
    parent = old or (branch_sha(repo, start_point) if start_point else None)
    name, email = author
    with tempfile.TemporaryDirectory(prefix="standin-index-") as tmp:
        env = {
            "GIT_INDEX_FILE": str(Path(tmp) / "index"),
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        if parent:
            _git(repo, "read-tree", parent, env=env)
        for file_path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            blob = _git(repo, "hash-object", "-w", "--stdin", input_bytes=data, env=env)
            _git(
                repo,
                "update-index",
                "--add",
                "--cacheinfo",
                f"100644,{blob.stdout.decode().strip()},{file_path}",
                env=env,
            )
        tree = _git(repo, "write-tree", env=env).stdout.decode().strip()
        parents = ["-p", parent] if parent else []
        commit = _git(
            repo, "commit-tree", tree, *parents, "-m", message, env=env
        ).stdout.decode().strip()
    # Passing the old value makes the update fail rather than lose a concurrent push.
    _git(repo, "update-ref", f"refs/heads/{branch}", commit, old or "")
    return commit


def compare(repo: Path, base_sha: str, head_sha: str) -> Comparison | None:
    """Commits and diff stats of `base...head`; None when they share no history."""
    if _git(repo, "merge-base", base_sha, head_sha, check=False).returncode != 0:
        return None
    count = _git(repo, "rev-list", "--count", f"{base_sha}..{head_sha}").stdout.decode().strip()
    numstat = _git(repo, "diff", "--numstat", f"{base_sha}...{head_sha}").stdout.decode()
    additions = deletions = changed = 0
    for line in numstat.splitlines():
        added, deleted, _ = line.split("\t", 2)
        changed += 1
        # Binary files show "-" for both counts.
        additions += int(added) if added.isdigit() else 0
        deletions += int(deleted) if deleted.isdigit() else 0
    return Comparison(int(count), additions, deletions, changed)


def read_file(repo: Path, ref: str, path: str) -> bytes | None:
    """Content of `path` at `ref` (a branch name or sha), or None when absent."""
    target = f"refs/heads/{ref}" if branch_sha(repo, ref) else ref
    result = _git(repo, "cat-file", "blob", f"{target}:{path}", check=False)
    return result.stdout if result.returncode == 0 else None


def log_messages(repo: Path, ref: str, limit: int = 50) -> list[str]:
    """Subjects of the last `limit` commits on branch `ref`, newest first."""
    result = _git(
        repo, "log", f"--max-count={limit}", "--format=%s", f"refs/heads/{ref}", "--", check=False
    )
    return result.stdout.decode().splitlines() if result.returncode == 0 else []


# -- pull requests: refs, merges, diffs ---------------------------------------------------


def resolve_commit(repo: Path, ref: str) -> str | None:
    """The commit a branch, tag or (abbreviated) sha names, or None."""
    if ref.startswith("-"):
        return None
    for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
        result = _git(repo, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}",
                      check=False)
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.decode().strip()
    return None


def branches_at(repo: Path, sha: str) -> list[str]:
    """Branches whose tip is `sha`."""
    return [name for name, tip in branches(repo).items() if tip == sha]


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    return _git(repo, "merge-base", "--is-ancestor", ancestor, descendant,
                check=False).returncode == 0


def conflicts(repo: Path, base_sha: str, head_sha: str) -> bool:
    """Whether merging `head` into `base` conflicts (`git merge-tree --write-tree`: exit 1)."""
    result = _git(repo, "merge-tree", "--write-tree", "--no-messages", base_sha, head_sha,
                  check=False)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"git merge-tree failed: {result.stderr.decode(errors='replace')}")
    return result.returncode == 1


def merge(repo: Path, base_branch: str, head_sha: str, message: str, *,
          author: tuple[str, str]) -> str:
    """Merge `head_sha` into `base_branch` with a merge commit, as GitHub's merge button does.

    Committed by GitHub, authored by `author`; returns the merge commit. Raises
    ValueError when the two conflict.
    """
    base_sha = branch_sha(repo, base_branch)
    if base_sha is None:
        raise ValueError(f"no branch {base_branch}")
    result = _git(repo, "merge-tree", "--write-tree", "--no-messages", base_sha, head_sha,
                  check=False)
    if result.returncode != 0:
        raise ValueError(f"{head_sha} does not merge cleanly into {base_branch}")
    tree = result.stdout.decode().split()[0]
    name, email = author
    env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
           "GIT_COMMITTER_NAME": "GitHub", "GIT_COMMITTER_EMAIL": "noreply@github.com"}
    commit = _git(repo, "commit-tree", tree, "-p", base_sha, "-p", head_sha, "-m", message,
                  env=env).stdout.decode().strip()
    _git(repo, "update-ref", f"refs/heads/{base_branch}", commit, base_sha)
    return commit


def blob_id(repo: Path, sha: str, path: str) -> str | None:
    """The blob `path` has at commit `sha`, None when absent."""
    result = _git(repo, "rev-parse", "--verify", "--quiet", f"{sha}:{path}", check=False)
    if result.returncode != 0:
        return None
    return result.stdout.decode().strip() or None


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree_id: str
    message: str
    timestamp: str  # ISO 8601, as git prints it
    author: tuple[str, str]
    committer: tuple[str, str]


def commit_info(repo: Path, sha: str) -> CommitInfo:
    out = _git(repo, "show", "-s", "--format=%T%x00%aI%x00%an%x00%ae%x00%cn%x00%ce%x00%B",
               sha).stdout.decode()
    tree, stamp, an, ae, cn, ce, message = out.split("\0", 6)
    return CommitInfo(sha=sha, tree_id=tree, message=message.rstrip("\n"), timestamp=stamp,
                      author=(an, ae), committer=(cn, ce))


@dataclass(frozen=True)
class DiffSpot:
    """Where a line of a pull's diff is: GitHub's `position` and `diff_hunk`."""

    position: int
    diff_hunk: str


def diff_spot(repo: Path, base_sha: str, head_sha: str, path: str,
              line: int | None) -> DiffSpot | None:
    """The spot of new-side `line` of `path` in the diff `base...head` (None: the file).

    `position` counts lines below the file's first `@@` header (later headers count
    too); `diff_hunk` runs from the hunk's header to the line, as GitHub returns it.
    None when the file or the line is not part of the diff (GitHub answers 422).
    """
    out = _git(repo, "diff", "--no-color", "--unified=3", f"{base_sha}...{head_sha}", "--",
               path, check=False).stdout.decode(errors="replace")
    lines = out.splitlines()
    start = next((i for i, text in enumerate(lines) if text.startswith("@@")), None)
    if start is None:
        return None
    lines = lines[start:]
    if line is None:
        return DiffSpot(position=1, diff_hunk=lines[0])
    position = 0
    hunk_start = 0
    new_line = 0
    for index, text in enumerate(lines):
        if text.startswith("@@"):
            if index:
                position += 1
            hunk_start = index
            new_line = int(text.split("+", 1)[1].split(" ", 1)[0].split(",", 1)[0])
            continue
        position += 1
        if text.startswith(("-", "\\")):
            continue
        if new_line == line:
            return DiffSpot(position=position, diff_hunk="\n".join(lines[hunk_start:index + 1]))
        new_line += 1
    return None
