"""A work item's workspace: a git worktree on its own branch, cut from a shared mirror.

Layout under FACTORY_HOME:

    mirrors/<key>.git     one bare mirror per repository; created once, `git fetch`ed after
    mirrors/<key>.lock    file lock: one process at a time creates, fetches or attaches
    mirrors/<key>.spares  finished worktrees kept to be recycled (switching branches in
                          a checked-out tree is far cheaper than writing every file again)
    worktrees/<item id>   one worktree per item, on branch `factory/<first 8 of the id>`

The mirror fetches `refs/heads/*` into `refs/remotes/origin/*`, so the items'
local branches (`refs/heads/factory/*`) are never overwritten or pruned by a
fetch, and a push names exactly one branch. The branch starts from the base
branch, or continues a `factory/...` branch that an earlier attempt pushed (or
left in the mirror). Credentialed fetches and pushes run against the mirror's
git dir, never from inside the worktree, where the agent could redirect them.

SPEC.md, `.ai/` and any file written with `write_file(..., exclude=True)` are
kept out of commits by a per-worktree excludes file (`core.excludesFile` in the
worktree's own config) and, if the repository tracks them, `skip-worktree`.

An attempt starts from the branch's last commit, never from what a dead attempt
left uncommitted: the worker holds `worktrees/<item id>.lock` for its whole run
(waiting, if need be, until the previous attempt's process is gone), and
leftovers found in a reused worktree are saved to a ref of their own
(`refs/factory-leftovers/...`, named in the first prompt) and cleared away.
SPEC.md is rebuilt from the item's spec and the task trailers on the branch
(`branch_progress`).
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path, PurePosixPath

from filelock import FileLock
from filelock import Timeout as LockTimeout

from ai_factory.core.models import WorkItem
from ai_factory.core.spec import SPEC_FILE
from ai_factory.worker.branch_progress import TRAILER, parse_trailers, restore_spec, trailer_line
from ai_factory.worker.git import (
    Git,
    GitCredentials,
    GitError,
    GitResult,
    Remote,
    WorkspaceError,
    check_branch_name,
)
from ai_factory.worker.mirror import BRANCH_PREFIX, EXCLUDES_FILE, Mirror, locked

__all__ = ["Workspace", "WorkspaceError"]

log = logging.getLogger(__name__)

AI_DIR = ".ai"
ALWAYS_EXCLUDED = (f"/{SPEC_FILE}", f"/{AI_DIR}/")
DEFAULT_IDENTITY = {"user.name": "AI Factory", "user.email": "factory@localhost"}
LEFTOVERS_REF = "refs/factory-leftovers"
# How long a new attempt waits for the previous one's process to let go of the worktree
# (the orchestrator stops it, SIGKILL within seconds, before it requeues the item).
WORKTREE_LOCK_WAIT_S = 120.0


class Workspace:
    """One item's worktree and branch. Build it with `Workspace.prepare`."""

    def __init__(self, *, path: Path, branch: str, base_sha: str, repo: str, mirror: Path,
                 remote: Remote, github_token: str | None = None) -> None:
        self.path = path
        self.branch = branch
        self.base_sha = base_sha
        self.repo = repo
        self.mirror = mirror
        self.remote = remote
        self._token = github_token
        self._git = Git(cwd=path)
        self._lock: FileLock | None = None
        self.leftovers: str | None = None  # where a dead attempt's uncommitted work was saved

    def __repr__(self) -> str:
        return f"Workspace(path={str(self.path)!r}, branch={self.branch!r}, repo={self.repo!r})"

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def prepare(cls, item: WorkItem, *, home: Path, github_token: str | None = None) -> Workspace:
        """Fetch (or create) the mirror and attach the item's worktree; write SPEC.md and .ai/."""
        base = check_branch_name(item.base_branch, what="base branch")
        remote = Remote.parse(item.repo)
        home = Path(home).expanduser()
        mirrors = home / "mirrors"
        mirrors.mkdir(parents=True, exist_ok=True)
        credentials = _credentials(remote, github_token)
        mirror = Mirror(path=mirrors / f"{remote.key}.git", remote=remote, credentials=credentials)
        branch = f"{BRANCH_PREFIX}{str(item.id)[:8]}"
        path = home / "worktrees" / str(item.id)
        worktree_lock = _hold_worktree(path)
        with locked(mirror.lock_file):
            mirror.ensure()
            base_ref = mirror.remote_branch(base)
            if base_ref is None:
                raise WorkspaceError(
                    f"base branch {base!r} does not exist in {remote.display}"
                    f" (branches: {', '.join(mirror.branch_names()[:10]) or 'none'})")
            reused = mirror.attach(path, branch, base_ref)
            base_sha = mirror.git.output("merge-base", base_ref, f"refs/heads/{branch}")
        workspace = cls(path=path, branch=branch, base_sha=base_sha, repo=item.repo,
                        mirror=mirror.path, remote=remote, github_token=github_token)
        workspace._lock = worktree_lock
        workspace._configure()
        if reused:
            workspace.leftovers = workspace._set_aside_leftovers()
        recorded = workspace.recorded_tasks()
        workspace.write_file(SPEC_FILE, restore_spec(item.spec, recorded))
        log.info("workspace.prepared item=%s branch=%s base=%s reused=%s tasks_recorded=%s path=%s",
                 item.id, branch, base_sha[:12], reused, sorted(recorded), path)
        return workspace

    def _set_aside_leftovers(self) -> str | None:
        """Save what a dead attempt left uncommitted to a ref, then reset to the last commit.

        The excluded files (SPEC.md, .ai/) are not work; everything else that differs
        from HEAD, untracked files included, goes into one commit under
        `refs/factory-leftovers/<branch>/<time>`, outside every branch.
        """
        if not self.has_uncommitted_changes():
            return None
        index = self._git_dir / "factory-leftovers.index"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            self._git.run("read-tree", "HEAD", env=env)
            self._git.run("add", "--all", "--", ".", env=env)
            tree = self._git.run("write-tree", env=env).stdout.strip()
        finally:
            index.unlink(missing_ok=True)
        commit = self._run("commit-tree", tree, "-p", "HEAD", "-m",
                           "Uncommitted work of an interrupted AI Factory attempt").stdout.strip()
        ref = f"{LEFTOVERS_REF}/{self.branch}/{time.strftime('%Y%m%dT%H%M%S')}-{commit[:8]}"
        self._run("update-ref", ref, commit)
        self._run("reset", "--quiet", "--hard", "HEAD")
        self._run("clean", "-fdq")  # not -x: SPEC.md, .ai/ and build outputs stay
        log.warning("workspace.leftovers_set_aside ref=%s", ref)
        return ref

    def _configure(self) -> None:
        excludes = self._excludes_file()
        if not excludes.exists():
            excludes.write_text("".join(f"{p}\n" for p in ALWAYS_EXCLUDED))
        self._run("config", "--worktree", "core.excludesFile", str(excludes))
        for key, value in DEFAULT_IDENTITY.items():
            if not self._git.run("config", "--get", key, check=False).stdout.strip():
                self._run("config", "--worktree", key, value)
        self._skip_if_tracked(*(pattern.strip("/") for pattern in ALWAYS_EXCLUDED))

    # -- files ------------------------------------------------------------------------------

    def write_file(self, relpath: str, text: str, *, exclude: bool = True) -> None:
        """Write `relpath` in the worktree; with `exclude` it never enters a commit."""
        rel = _safe_relpath(relpath)
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        if exclude:
            self._exclude(rel)

    def _exclude(self, rel: PurePosixPath) -> None:
        pattern = f"/{rel}"
        excludes = self._excludes_file()
        lines = excludes.read_text().splitlines() if excludes.exists() else []
        covered = pattern in lines or any(
            line.endswith("/") and pattern.startswith(line) for line in lines)
        if not covered:
            with excludes.open("a") as handle:
                handle.write(f"{pattern}\n")
        self._skip_if_tracked(str(rel))

    def _excludes_file(self) -> Path:
        """The per-worktree excludes file, in the worktree's private git dir."""
        return self._git_dir / EXCLUDES_FILE

    @functools.cached_property
    def _git_dir(self) -> Path:
        return Path(self._run("rev-parse", "--absolute-git-dir").stdout.strip())

    def _skip_if_tracked(self, *rels: str) -> None:
        """Keep the tracked files at `rels` (paths or folders) out of every commit."""
        tracked = self._run("ls-files", "-z", "--", *rels).stdout.split("\0")
        tracked = [name for name in tracked if name]
        if tracked:
            self._run("update-index", "--skip-worktree", "--", *tracked)

    # -- state ------------------------------------------------------------------------------

    def head_sha(self) -> str:
        return self._run("rev-parse", "--verify", "HEAD^{commit}").stdout.strip()

    def commits_since_base(self) -> list[str]:
        """Commits on the branch since `base_sha`, oldest first."""
        out = self._run("rev-list", "--reverse", f"{self.base_sha}..HEAD", "--").stdout
        return out.split()

    def file_at_base(self, relpath: str) -> str | None:
        """`relpath`'s text in the base commit; None when the base has no such file."""
        rel = _safe_relpath(relpath)
        result = self._git.run("show", f"{self.base_sha}:{rel}", check=False)
        return result.stdout if result.ok else None

    def changed_files(self) -> list[str]:
        """Paths changed by the branch's commits since `base_sha` (not the working tree)."""
        out = self._run("diff", "--name-only", "-z", "--no-renames", self.base_sha, "HEAD",
                        "--").stdout
        return [name for name in out.split("\0") if name]

    def has_uncommitted_changes(self) -> bool:
        return bool(self._run("status", "--porcelain", "-z").stdout)

    def recorded_tasks(self) -> set[int]:
        """Task numbers the branch's commits since `base_sha` say they finish."""
        fmt = f"--format=%(trailers:key={TRAILER},valueonly,separator=%x2C)"
        return parse_trailers(self._run("log", fmt, f"{self.base_sha}..HEAD", "--").stdout)

    def record_tasks(self, numbers: list[int], *, summary: str, amend: bool) -> None:
        """Put `Factory-Task` trailers for `numbers` on a commit: the last one (`amend`, only
        for a commit not yet pushed) or a new empty one. Staged changes are left out."""
        trailers = [arg for n in sorted(numbers) for arg in ("--trailer", trailer_line(n))]
        if amend:
            self._run("commit", "--quiet", "--amend", "--only", "--no-edit", "--no-verify",
                      "--no-gpg-sign", *trailers)
        else:
            self._run("commit", "--quiet", "--allow-empty", "--only", "--no-verify",
                      "--no-gpg-sign", "-m", summary, *trailers)
        log.info("workspace.progress_recorded tasks=%s amend=%s", sorted(numbers), amend)

    def recent_commits(self, limit: int = 20) -> list[str]:
        """`<short sha> <subject>` of the branch's newest commits since `base_sha`."""
        out = self._run("log", f"--max-count={limit}", "--format=%h %s",
                        f"{self.base_sha}..HEAD", "--").stdout
        return [line for line in out.splitlines() if line.strip()]

    # -- commits and delivery ---------------------------------------------------------------

    def commit_wip(self, message: str) -> bool:
        """Commit everything in the worktree except excluded files; False if nothing changed."""
        self._run("add", "--all", "--", ".")
        if self._git.succeeds("diff", "--cached", "--quiet"):
            return False
        self._run("commit", "--quiet", "--no-verify", "--no-gpg-sign", "--file=-",
                  input_text=message if message.strip() else "WIP")
        log.info("workspace.committed branch=%s sha=%s", self.branch, self.head_sha()[:12])
        return True

    def push(self) -> None:
        """Push the item's branch, and only it, to origin."""
        mirror = Mirror(path=self.mirror, remote=self.remote,
                         credentials=_credentials(self.remote, self._token))
        ref = f"refs/heads/{self.branch}"
        try:
            mirror.check_config()
            mirror.git.run("push", "--porcelain", "--no-verify", "origin", "--", f"{ref}:{ref}")
        except GitError as exc:
            raise WorkspaceError(_push_failure(self.remote, self.branch, exc,
                                               has_token=self._token is not None)) from exc
        log.info("workspace.pushed branch=%s remote=%s", self.branch, self.remote.display)

    def remove(self, *, keep_spare: bool = True) -> None:
        """Remove the worktree; the mirror and the branch stay for a later attempt.

        With `keep_spare` the files may be kept as a spare checkout that the next
        item on this repository recycles (see `Mirror.park`).
        """
        mirror = Mirror(path=self.mirror, remote=self.remote, credentials=None)
        with locked(mirror.lock_file):
            if keep_spare:
                mirror.park(self.path)
            else:
                mirror.detach(self.path)
        if self._lock is not None:
            self._lock.release()
        log.info("workspace.removed path=%s", self.path)

    def _run(self, *args: str, input_text: str | None = None) -> GitResult:
        try:
            return self._git.run(*args, input_text=input_text)
        except GitError as exc:
            raise WorkspaceError(f"{exc} (in {self.path})") from exc


def _hold_worktree(path: Path) -> FileLock:
    """Take the item's worktree for this process (released at `remove`, or when the process
    dies: an flock), waiting while an earlier attempt's process still holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # One instance per path in a process (re-entrant); an flock between processes.
    lock = FileLock(str(path.with_suffix(".lock")), thread_local=False, is_singleton=True)
    try:
        lock.acquire(timeout=WORKTREE_LOCK_WAIT_S)
    except LockTimeout as exc:
        raise WorkspaceError(
            f"another process still works in {path} after {WORKTREE_LOCK_WAIT_S:g} s"
        ) from exc
    return lock


def _credentials(remote: Remote, token: str | None) -> GitCredentials | None:
    if token is None or remote.credential_host is None:
        return None
    try:
        return GitCredentials(token=token, host=remote.credential_host)
    except ValueError as exc:
        raise WorkspaceError(str(exc)) from None


def _push_failure(remote: Remote, branch: str, exc: GitError, *, has_token: bool) -> str:
    text = str(exc)
    if remote.credential_host and ("Authentication failed" in text or "could not read" in text):
        hint = ("GITHUB_TOKEN is not set" if not has_token
                else "GITHUB_TOKEN was refused or lacks write access")
        return f"cannot push {branch} to {remote.display}: authentication failed ({hint})"
    return f"cannot push {branch} to {remote.display}: {text}"


def _safe_relpath(relpath: str) -> PurePosixPath:
    rel = PurePosixPath(relpath)
    if (not relpath or rel.is_absolute() or ".." in rel.parts or not rel.parts
            or rel.parts[0] == ".git" or "\0" in relpath):
        raise WorkspaceError(f"{relpath!r} is not a path inside the worktree")
    return rel
