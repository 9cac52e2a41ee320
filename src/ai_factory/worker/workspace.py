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

With an `AgentUser` (the worker is root, the agent is not), every git command in the
worktree runs as that user, the worktree is that user's, and the worker reads and
writes its files (SPEC.md, `.ai/`, the excludes file) through `agent_files`, which
follows none of the agent's symlinks. Root's own git only ever works on the mirror
(`--git-dir`): the fetch, the branch refs, the leftovers ref and the push. Before the
push, whatever the agent left running is stopped (`reaper`).
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
from ai_factory.worker import agent_files, reaper
from ai_factory.worker.agent_user import AgentUser
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
                 remote: Remote, github_token: str | None = None,
                 agent: AgentUser | None = None) -> None:
        self.path = path
        self.branch = branch
        self.base_sha = base_sha
        self.repo = repo
        self.mirror = mirror
        self.remote = remote
        self.agent = agent
        self._token = github_token
        self._git = Git(cwd=path, user=agent)
        self._lock: FileLock | None = None
        self.leftovers: str | None = None  # where a dead attempt's uncommitted work was saved
        self.start_sha = base_sha  # where this item's own commits begin (a follow-up: the PR head)

    def __repr__(self) -> str:
        return f"Workspace(path={str(self.path)!r}, branch={self.branch!r}, repo={self.repo!r})"

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def prepare(cls, item: WorkItem, *, home: Path, github_token: str | None = None,
                agent: AgentUser | None = None) -> Workspace:
        """Fetch (or create) the mirror and attach the item's worktree; write SPEC.md and .ai/.
        With `agent`, the worktree is that user's and git runs in it as that user."""
        base = check_branch_name(item.base_branch, what="base branch")
        remote = Remote.parse(item.repo)
        home = Path(home).expanduser()
        mirrors = home / "mirrors"
        mirrors.mkdir(parents=True, exist_ok=True)
        credentials = _credentials(remote, github_token)
        mirror = Mirror(path=mirrors / f"{remote.key}.git", remote=remote, credentials=credentials,
                        agent=agent)
        # A follow-up works on its pull request's branch; new work gets a branch of its own.
        branch = (check_branch_name(item.branch) if item.branch
                  else f"{BRANCH_PREFIX}{str(item.id)[:8]}")
        path = home / "worktrees" / str(item.id)
        worktree_lock = _hold_worktree(path)
        with locked(mirror.lock_file):
            mirror.ensure()
            base_ref = mirror.remote_branch(base)
            if base_ref is None:
                raise WorkspaceError(
                    f"base branch {base!r} does not exist in {remote.display}"
                    f" (branches: {', '.join(mirror.branch_names()[:10]) or 'none'})")
            known = mirror.remote_branch(branch) is not None or reused_branch(mirror, branch)
            if item.branch and not known:
                raise WorkspaceError(f"the pull request's branch {branch!r} is gone from"
                                     f" {remote.display}")
            reused = mirror.attach(path, branch, base_ref)
            base_sha = mirror.git.output("merge-base", base_ref, f"refs/heads/{branch}")
            start_sha = _start_of(mirror, item, branch, base_sha)
        workspace = cls(path=path, branch=branch, base_sha=base_sha, repo=item.repo,
                        mirror=mirror.path, remote=remote, github_token=github_token, agent=agent)
        workspace._lock = worktree_lock
        workspace.start_sha = start_sha
        workspace._configure()
        if reused:
            workspace.leftovers = workspace._set_aside_leftovers()
        recorded = workspace.recorded_tasks()
        workspace.write_file(SPEC_FILE, restore_spec(item.spec, recorded))
        agent_files.ensure_folder(path, AI_DIR, owner=agent.owner if agent else None)
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
        self._mirror().git.run("update-ref", ref, commit)  # refs/ beside heads/ are root's
        self._run("reset", "--quiet", "--hard", "HEAD")
        self._run("clean", "-fdq")  # not -x: SPEC.md, .ai/ and build outputs stay
        log.warning("workspace.leftovers_set_aside ref=%s", ref)
        return ref

    def _configure(self) -> None:
        if agent_files.read_text(self._git_dir, EXCLUDES_FILE) is None:
            agent_files.write_text(self._git_dir, EXCLUDES_FILE,
                                   "".join(f"{p}\n" for p in ALWAYS_EXCLUDED))
        self._run("config", "--worktree", "core.excludesFile", str(self._excludes_file()))
        for key, value in DEFAULT_IDENTITY.items():
            if not self._git.run("config", "--get", key, check=False).stdout.strip():
                self._run("config", "--worktree", key, value)
        self._skip_if_tracked(*(pattern.strip("/") for pattern in ALWAYS_EXCLUDED))

    # -- files ------------------------------------------------------------------------------

    def write_file(self, relpath: str, text: str, *, exclude: bool = True) -> None:
        """Write `relpath` in the worktree (a new file, the agent's; nothing it planted at
        the path is followed); with `exclude` it never enters a commit."""
        rel = _safe_relpath(relpath)
        agent_files.write_text(self.path, str(rel), text,
                               owner=self.agent.owner if self.agent else None)
        if exclude:
            self._exclude(rel)

    def read_file(self, relpath: str) -> str | None:
        """`relpath`'s text in the worktree; None when it is not a regular file there."""
        return agent_files.read_text(self.path, str(_safe_relpath(relpath)))

    def _exclude(self, rel: PurePosixPath) -> None:
        pattern = f"/{rel}"
        text = agent_files.read_text(self._git_dir, EXCLUDES_FILE) or ""
        lines = text.splitlines()
        covered = pattern in lines or any(
            line.endswith("/") and pattern.startswith(line) for line in lines)
        if not covered:
            agent_files.write_text(self._git_dir, EXCLUDES_FILE, "".join(
                f"{line}\n" for line in [*lines, pattern]))
        self._skip_if_tracked(str(rel))

    def _excludes_file(self) -> Path:
        """The per-worktree excludes file, in the worktree's private git dir."""
        return self._git_dir / EXCLUDES_FILE

    @functools.cached_property
    def _git_dir(self) -> Path:
        """The worktree's private git folder in the mirror (checked: the agent can edit .git)."""
        return self._mirror().admin_dir(self.path)

    def _mirror(self, credentials: GitCredentials | None = None) -> Mirror:
        return Mirror(path=self.mirror, remote=self.remote, credentials=credentials,
                      agent=self.agent)

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
        """`relpath`'s text in the base commit (read from the mirror, not the worktree);
        None when the base has no such file."""
        rel = _safe_relpath(relpath)
        result = self._mirror().git.run("cat-file", "blob", f"{self.base_sha}:{rel}", check=False)
        return result.stdout if result.ok else None

    def changed_files(self) -> list[str]:
        """Paths changed by the branch's commits since `base_sha` (not the working tree)."""
        out = self._run("diff", "--name-only", "-z", "--no-renames", self.base_sha, "HEAD",
                        "--").stdout
        return [name for name in out.split("\0") if name]

    def has_uncommitted_changes(self) -> bool:
        return bool(self._run("status", "--porcelain", "-z").stdout)

    def recorded_tasks(self) -> set[int]:
        """Task numbers the commits of this item (since `start_sha`) say they finish."""
        fmt = f"--format=%(trailers:key={TRAILER},valueonly,separator=%x2C)"
        return parse_trailers(self._run("log", fmt, f"{self.start_sha}..HEAD", "--").stdout)

    def merge(self, ref: str, *, message: str, trailer: str) -> list[str]:
        """Merge `ref` into the branch (never a rebase): committed when git can do it alone;
        otherwise left in progress and the conflicted paths returned."""
        result = self._git.run("merge", "--no-ff", "--no-verify", "--no-gpg-sign", "-m", message,
                               "-m", trailer, ref, check=False)  # fmt: skip
        if result.ok:
            return []
        conflicted = self._run("diff", "--name-only", "-z", "--diff-filter=U").stdout
        paths = [name for name in conflicted.split("\0") if name]
        if not paths:
            raise WorkspaceError(f"cannot merge {ref}: {result.stderr.strip()[-500:]}")
        return paths

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
        """`<short sha> <subject>` of this item's newest commits (since `start_sha`)."""
        out = self._run("log", f"--max-count={limit}", "--format=%h %s",
                        f"{self.start_sha}..HEAD", "--").stdout
        return [line for line in out.splitlines() if line.strip()]

    def item_commits(self) -> list[tuple[str, str, set[int]]]:
        """(sha, subject, task numbers) of this item's commits, oldest first."""
        fmt = f"--format=%H%x00%s%x00%(trailers:key={TRAILER},valueonly,separator=%x2C)%x00"
        out = self._run("log", "--reverse", fmt, f"{self.start_sha}..HEAD", "--").stdout
        fields = out.split("\0")
        return [(fields[i].strip(), fields[i + 1], parse_trailers(fields[i + 2]))
                for i in range(0, len(fields) - 2, 3)]

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

    def push(self, *, to_branch: str | None = None) -> None:
        """Push the item's branch, and only it, to origin (as `to_branch` when given: a
        follow-up's unfinished work goes beside its pull request's branch, not onto it),
        once nothing of the agent's runs (the push's git holds the token in its environment)."""
        reaper.stop_leftovers(uid=self.agent.uid if self.agent else None)
        mirror = self._mirror(_credentials(self.remote, self._token))
        ref = f"refs/heads/{self.branch}"
        target = f"refs/heads/{check_branch_name(to_branch)}" if to_branch else ref
        try:
            mirror.check_config()
            mirror.git.run("push", "--porcelain", "--no-verify", "origin", "--", f"{ref}:{target}")
        except GitError as exc:
            raise WorkspaceError(_push_failure(self.remote, self.branch, exc,
                                               has_token=self._token is not None)) from exc
        log.info("workspace.pushed branch=%s remote=%s", self.branch, self.remote.display)

    def remove(self, *, keep_spare: bool = True) -> None:
        """Remove the worktree; the mirror and the branch stay for a later attempt.

        With `keep_spare` the files may be kept as a spare checkout that the next
        item on this repository recycles (see `Mirror.park`).
        """
        mirror = self._mirror()
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


def reused_branch(mirror: Mirror, branch: str) -> bool:
    """Whether the mirror has the branch locally (an earlier attempt on this host)."""
    return mirror.git.succeeds("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")


def _start_of(mirror: Mirror, item: WorkItem, branch: str, base_sha: str) -> str:
    """Where the item's own commits begin: a follow-up's pull request head (when the branch
    still contains it), else the merge base with the base branch."""
    head = str(item.context.get("headSha") or "")
    if item.is_followup and head and mirror.git.succeeds(
        "merge-base", "--is-ancestor", head, f"refs/heads/{branch}"
    ):
        return head
    return base_sha


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
