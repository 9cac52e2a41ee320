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
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from filelock import FileLock
from filelock import Timeout as LockTimeout

from ai_factory.core.models import WorkItem
from ai_factory.worker.git import (
    Git,
    GitCredentials,
    GitError,
    GitResult,
    Remote,
    WorkspaceError,
    check_branch_name,
)

__all__ = ["Workspace", "WorkspaceError"]

log = logging.getLogger(__name__)

BRANCH_PREFIX = "factory/"
SPEC_FILE = "SPEC.md"
AI_DIR = ".ai"
LEARNINGS_FILE = f"{AI_DIR}/learnings.md"
EXCLUDES_FILE = "factory-exclude"  # in the worktree's private git dir
ALWAYS_EXCLUDED = (f"/{SPEC_FILE}", f"/{AI_DIR}/")
MIRROR_LOCK_TIMEOUT_S = 1800.0
MAX_SPARES_PER_MIRROR = 2
FETCH_REFSPEC = "+refs/heads/*:refs/remotes/origin/*"
DEFAULT_IDENTITY = {"user.name": "AI Factory", "user.email": "factory@localhost"}
LEARNINGS_PLACEHOLDER = (
    "# Learnings\n\n"
    "Notes for the next iteration: what worked, what did not, commands and gotchas.\n"
)
# Settings every worktree of a mirror shares: fewer stat calls on big trees.
MIRROR_CONFIG = {
    "core.untrackedCache": "true",
    "index.version": "4",
    "checkout.workers": "0",
}


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
        mirror = _Mirror(path=mirrors / f"{remote.key}.git", remote=remote, credentials=credentials)
        branch = f"{BRANCH_PREFIX}{str(item.id)[:8]}"
        path = home / "worktrees" / str(item.id)
        with _locked(mirrors / f"{remote.key}.lock"):
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
        workspace._configure()
        if not reused or not (path / SPEC_FILE).exists():
            workspace.write_file(SPEC_FILE, item.spec)
        if not (path / LEARNINGS_FILE).exists():
            workspace.write_file(LEARNINGS_FILE, LEARNINGS_PLACEHOLDER)
        log.info("workspace.prepared item=%s branch=%s base=%s reused=%s path=%s",
                 item.id, branch, base_sha[:12], reused, path)
        return workspace

    def _configure(self) -> None:
        excludes = self._excludes_file()
        if not excludes.exists():
            excludes.write_text("".join(f"{p}\n" for p in ALWAYS_EXCLUDED))
        self._run("config", "--worktree", "core.excludesFile", str(excludes))
        for key, value in DEFAULT_IDENTITY.items():
            if not self._git.run("config", "--get", key, check=False).stdout.strip():
                self._run("config", "--worktree", key, value)
        for pattern in ALWAYS_EXCLUDED:
            self._skip_if_tracked(pattern.strip("/"))

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
        git_dir = Path(self._run("rev-parse", "--absolute-git-dir").stdout.strip())
        return git_dir / EXCLUDES_FILE

    def _skip_if_tracked(self, rel: str) -> None:
        tracked = self._run("ls-files", "-z", "--", rel).stdout.split("\0")
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

    def changed_files(self) -> list[str]:
        """Paths changed by the branch's commits since `base_sha` (not the working tree)."""
        out = self._run("diff", "--name-only", "-z", "--no-renames", self.base_sha, "HEAD",
                        "--").stdout
        return [name for name in out.split("\0") if name]

    def has_uncommitted_changes(self) -> bool:
        return bool(self._run("status", "--porcelain", "-z").stdout)

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
        mirror = _Mirror(path=self.mirror, remote=self.remote,
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
        item on this repository recycles (see `_Mirror.park`).
        """
        mirror = _Mirror(path=self.mirror, remote=self.remote, credentials=None)
        with _locked(self.mirror.with_suffix(".lock")):
            if keep_spare:
                mirror.park(self.path)
            else:
                mirror.detach(self.path)
        log.info("workspace.removed path=%s", self.path)

    def _run(self, *args: str, input_text: str | None = None) -> GitResult:
        try:
            return self._git.run(*args, input_text=input_text)
        except GitError as exc:
            raise WorkspaceError(f"{exc} (in {self.path})") from exc



@dataclass(kw_only=True)
class _Mirror:
    """The bare mirror of one repository. Callers hold its file lock."""

    path: Path
    remote: Remote
    credentials: GitCredentials | None

    @property
    def git(self) -> Git:
        return Git(git_dir=self.path, credentials=self.credentials)

    def ensure(self) -> None:
        """Create the mirror, or refresh it with a fetch."""
        if (self.path / "HEAD").exists():
            self.check_config()
            self._fetch(self.git)
            log.info("workspace.mirror_fetched repo=%s", self.remote.display)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            Git(cwd=tmp.parent).run("init", "--quiet", "--bare", "--", str(tmp))
            git = Git(git_dir=tmp, credentials=self.credentials)
            git.run("config", "core.repositoryformatversion", "1")
            git.run("config", "extensions.worktreeConfig", "true")
            # With per-worktree config, core.bare must live in the main tree's own file.
            git.run("config", "--unset", "core.bare")
            git.run("config", "--worktree", "core.bare", "true")
            git.run("config", "remote.origin.url", self.remote.url)
            git.run("config", "remote.origin.fetch", FETCH_REFSPEC)
            for key, value in MIRROR_CONFIG.items():
                git.run("config", key, value)
            self._fetch(git)
            tmp.rename(self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("workspace.mirror_created repo=%s path=%s", self.remote.display, self.path)

    def _fetch(self, git: Git) -> None:
        try:
            git.run("fetch", "--quiet", "--prune", "origin")
        except GitError as exc:
            raise WorkspaceError(f"cannot fetch {self.remote.display}: {exc.detail}") from exc

    def check_config(self) -> None:
        """Undo or refuse repository config that would send credentials elsewhere.

        The mirror's config is ours, but an agent working in a worktree can write it.
        """
        git = Git(git_dir=self.path)
        for key, value in (("remote.origin.url", self.remote.url),
                           ("remote.origin.fetch", FETCH_REFSPEC)):
            if git.run("config", "--get-all", key, check=False).stdout.strip() != value:
                git.run("config", "--replace-all", key, value)
        listing = git.run("config", "--list", "--show-scope", check=False).stdout
        for line in listing.splitlines():
            scope, _, entry = line.partition("\t")
            key = entry.partition("=")[0].lower()
            if scope in ("local", "worktree") and _dangerous_key(key):
                raise WorkspaceError(
                    f"refusing to fetch or push: the mirror {self.path} sets {key}; remove it")

    def remote_branch(self, branch: str) -> str | None:
        ref = f"refs/remotes/origin/{branch}"
        return ref if self.git.succeeds("rev-parse", "--verify", "--quiet",
                                        f"{ref}^{{commit}}") else None

    def branch_names(self) -> list[str]:
        out = self.git.output("for-each-ref", "--format=%(refname:lstrip=3)",
                              "refs/remotes/origin/")
        return [name for name in out.splitlines()
                if name and name != "HEAD" and not name.startswith(BRANCH_PREFIX)]

    def attach(self, path: Path, branch: str, base_ref: str) -> bool:
        """Give `path` a worktree on `branch`; True when an existing one was reused."""
        git = self.git
        git.run("worktree", "prune")
        if path.exists():
            if self._is_our_worktree(path, branch):
                return True
            log.warning("workspace.worktree_recreated path=%s", path)
            self.detach(path)
        start = self._branch_start(branch, base_ref)
        git.run("update-ref", "--no-deref", f"refs/heads/{branch}", start)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._recycle(path, branch):
            return False
        try:
            git.run("worktree", "add", "--quiet", "--", str(path), branch)
        except GitError as exc:
            raise WorkspaceError(f"cannot create the worktree {path}: {exc}") from exc
        return False

    @property
    def spares(self) -> Path:
        return self.path.with_suffix(".spares")

    def park(self, path: Path) -> None:
        """Keep a finished worktree as a spare for the next item, else remove it.

        Checking out a big tree means writing every file; a spare only has to
        switch branches, so the next item on this repository starts in a second.
        """
        spares = sorted(self.spares.glob("*")) if self.spares.is_dir() else []
        tree = Git(cwd=path)
        if len(spares) < MAX_SPARES_PER_MIRROR and path.is_dir():
            target = self.spares / uuid.uuid4().hex
            self.spares.mkdir(exist_ok=True)
            # Detach HEAD (no file is touched) so the item's branch is free for a retry.
            head = tree.run("rev-parse", "--verify", "--quiet", "HEAD", check=False)
            if head.ok and tree.succeeds("update-ref", "--no-deref", "HEAD", head.stdout.strip()) \
                    and self.git.succeeds("worktree", "move", "--", str(path), str(target)):
                log.info("workspace.worktree_parked spare=%s", target.name)
                return
        self.detach(path)

    def _recycle(self, path: Path, branch: str) -> bool:
        """Move a spare worktree to `path` and reset it to `branch`, pristine."""
        spares = sorted(self.spares.glob("*")) if self.spares.is_dir() else []
        for spare in spares:
            if not self.git.succeeds("worktree", "move", "--", str(spare), str(path)):
                log.warning("workspace.spare_unusable spare=%s", spare.name)
                self.detach(spare)
                continue
            tree = Git(cwd=path)
            try:
                admin = Path(tree.output("rev-parse", "--absolute-git-dir"))
                for stale in ("config.worktree", EXCLUDES_FILE):  # the last item's settings
                    (admin / stale).unlink(missing_ok=True)
                skipped = [line[2:] for line in tree.run("ls-files", "-v", "-z").stdout.split("\0")
                           if line.startswith("S ")]
                if skipped:
                    tree.run("update-index", "--no-skip-worktree", "--", *skipped)
                tree.run("checkout", "--force", "--quiet", branch, "--")
                tree.run("clean", "-ffdxq")
            except GitError as exc:
                log.warning("workspace.spare_unusable spare=%s error=%s", spare.name, exc)
                self.detach(path)
                continue
            log.info("workspace.worktree_recycled path=%s", path)
            return True
        return False

    def _is_our_worktree(self, path: Path, branch: str) -> bool:
        tree = Git(cwd=path)
        common = tree.run("rev-parse", "--path-format=absolute", "--git-common-dir", check=False)
        head = tree.run("symbolic-ref", "--quiet", "HEAD", check=False)
        return (common.ok and Path(common.stdout.strip()) == self.path.resolve()
                and head.stdout.strip() == f"refs/heads/{branch}")

    def _branch_start(self, branch: str, base_ref: str) -> str:
        """Where the branch continues from: its newest known state, else the base branch."""
        git = self.git
        local = _sha(git, f"refs/heads/{branch}")
        pushed = _sha(git, f"refs/remotes/origin/{branch}")
        if local and pushed and local != pushed:
            if git.succeeds("merge-base", "--is-ancestor", local, pushed):
                return pushed
            if git.succeeds("merge-base", "--is-ancestor", pushed, local):
                return local
            log.warning("workspace.branch_diverged branch=%s local=%s pushed=%s; using pushed",
                        branch, local[:12], pushed[:12])
            return pushed
        return local or pushed or git.output("rev-parse", "--verify", f"{base_ref}^{{commit}}")

    def detach(self, path: Path) -> None:
        git = self.git
        if not git.succeeds("worktree", "remove", "--force", "--force", "--", str(path)):
            shutil.rmtree(path, ignore_errors=True)
        git.run("worktree", "prune")


def _sha(git: Git, ref: str) -> str | None:
    result = git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return result.stdout.strip() or None if result.ok else None


_DANGEROUS_PREFIXES = ("credential.", "include.", "includeif.")
# Hooks are off for our commands anyway (-c core.hooksPath), so husky & co. may set it.
_DANGEROUS_KEYS = {"core.sshcommand", "core.askpass", "core.gitproxy", "http.proxy",
                   "remote.origin.pushurl", "remote.origin.proxy"}


def _dangerous_key(key: str) -> bool:
    return (key.startswith(_DANGEROUS_PREFIXES) or key in _DANGEROUS_KEYS
            or (key.startswith("url.") and key.endswith(("insteadof", "pushinsteadof")))
            or (key.startswith("http.") and key.endswith(".proxy")))


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


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=MIRROR_LOCK_TIMEOUT_S)
    except LockTimeout as exc:
        raise WorkspaceError(f"timed out waiting for the mirror lock {lock_path}") from exc
    try:
        yield
    finally:
        lock.release()


def _safe_relpath(relpath: str) -> PurePosixPath:
    rel = PurePosixPath(relpath)
    if (not relpath or rel.is_absolute() or ".." in rel.parts or not rel.parts
            or rel.parts[0] == ".git" or "\0" in relpath):
        raise WorkspaceError(f"{relpath!r} is not a path inside the worktree")
    return rel
