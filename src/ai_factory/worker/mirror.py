"""The bare mirror of one repository, shared by every worktree cut from it.

Created once under ``$FACTORY_HOME/mirrors``, refreshed with ``git fetch`` (into
``refs/remotes/origin/*``, so items' branches are never overwritten), guarded by a
file lock so two workers on one host do not race. It also keeps finished worktrees as
spares to recycle, and keeps its config to an allow-list: an agent working in a
worktree can write the mirror's config, which git reads for every credentialed fetch
and push.

When the agent runs as its own user (`agent_user`; the worker is root), the mirror stays
root's and the agent gets exactly what a commit needs (`share`): new objects
(``objects/`` and its fan-out folders, group-writable and sticky, so it cannot remove
objects it did not write), its branch (``refs/heads``, group-writable), and its
worktree's private folder (``worktrees/<name>``, its own). The config, ``packed-refs``,
``refs/remotes``, hooks, ``info/``, ``objects/pack`` and ``objects/info`` stay root's
alone, and reflogs are off (``core.logAllRefUpdates=false``): root's git appends to an
existing reflog through whatever is at its path, so the agent must not be able to
create one. Automatic gc is off too: it reads every worktree's index, the agent's
files, as root (a mirror shared with the agent is never repacked; remove it to start
afresh). Root never runs git inside the worktree then: it creates it (`attach`,
into a new folder), gives it to the agent, and removes it with `shutil.rmtree`,
which does not follow symlinks; spares are not kept, as recycling one means running
git in a tree the agent wrote.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from filelock import Timeout as LockTimeout

from ai_factory.worker import agent_files
from ai_factory.worker.agent_user import AgentUser
from ai_factory.worker.git import Git, GitCredentials, GitError, Remote, WorkspaceError

log = logging.getLogger(__name__)

BRANCH_PREFIX = "factory/"
EXCLUDES_FILE = "factory-exclude"  # in each worktree's private git dir
MIRROR_LOCK_TIMEOUT_S = 1800.0
MAX_SPARES_PER_MIRROR = 2
FETCH_REFSPEC = "+refs/heads/*:refs/remotes/origin/*"
# Settings every worktree of a mirror shares: fewer stat calls on big trees.
MIRROR_CONFIG = {
    "core.untrackedCache": "true",
    "index.version": "4",
    "checkout.workers": "0",
}
# And when the agent is its own user: new files group-shared, no reflogs, and no automatic
# gc, which would read (as root) the index files in the agent's worktree folders.
AGENT_CONFIG = {
    "core.sharedRepository": "group",
    "core.logAllRefUpdates": "false",
    "gc.auto": "0",
    "maintenance.auto": "false",
}
SHARED_DIR_MODE = 0o2775  # group-writable, new entries get the folder's group
OBJECT_DIR_MODE = 0o3775  # and sticky: only a file's owner may remove or replace it
ROOT_DIR_MODE = 0o755
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# The only keys the mirror's config (and its config.worktree) may hold: what
# `git init --bare` writes, what `ensure` sets, the repository format's extensions, and
# origin, pinned to the item's repository. Everything else is dropped before a fetch or
# push: a key can run a command (core.fsmonitor, core.sshCommand, credential.helper,
# remote.origin.uploadpack), redirect a push (url.*.insteadOf, remote.origin.pushurl,
# include.path) or send the token to another server (http.proxy, http.sslVerify,
# http.curloptResolve). Transport settings belong in the user's global git config or
# the environment (HTTPS_PROXY, GIT_SSL_CAINFO).
ALLOWED_CONFIG = frozenset({
    "core.repositoryformatversion", "core.bare", "core.filemode", "core.symlinks",
    "core.ignorecase", "core.precomposeunicode", "core.logallrefupdates",
    *(key.lower() for key in (*MIRROR_CONFIG, *AGENT_CONFIG)),
})
ALLOWED_CONFIG_SECTIONS = ("extensions.",)
PINNED_CONFIG = ("remote.origin.url", "remote.origin.fetch")  # local config only


@dataclass(kw_only=True)
class Mirror:
    """The bare mirror of one repository. Callers hold its file lock."""

    path: Path
    remote: Remote
    credentials: GitCredentials | None
    agent: AgentUser | None = None  # the agent's own user, when the worker is root

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
        """Cut the mirror's config down to the allow-list, with origin the item's repository.

        The mirror's config is ours, but an agent working in a worktree can write it.
        Dropped keys are logged at debug level (names only: a value may be a secret).
        """
        pinned = [("remote.origin.url", self.remote.url), ("remote.origin.fetch", FETCH_REFSPEC)]
        self._clean_config(self.path / "config", pinned)
        if (self.path / "config.worktree").exists():
            self._clean_config(self.path / "config.worktree", [])

    def _clean_config(self, path: Path, pinned: list[tuple[str, str]]) -> None:
        # Read the file alone, without its includes, so include.path shows as a key.
        git = Git(cwd=self.path.parent)
        listing = git.run("config", "--file", str(path), "--no-includes", "--list", "-z",
                          check=False)
        if not listing.ok:
            raise WorkspaceError(f"cannot read the mirror's config {path}"
                                 f" ({listing.stderr.strip()}); remove {self.path}")
        entries = [_config_entry(record) for record in listing.stdout.split("\0") if record]
        kept = [(key, value) for key, value in entries if allowed_config(key)]
        dropped = sorted({key for key, _ in entries if not allowed_config(key)}
                         - {key for key, _ in pinned})
        origin = sorted(entry for entry in entries if entry[0] in PINNED_CONFIG)
        if not dropped and origin == sorted(pinned):
            return
        for key in dropped:
            log.debug("workspace.mirror_config_dropped key=%s file=%s", key, path.name)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text("")
            for key, value in [*kept, *pinned]:
                git.run("config", "--file", str(tmp), "--add", key, value)
            os.replace(tmp, path)  # atomic: a git command running now reads old or new
        finally:
            tmp.unlink(missing_ok=True)

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
        if path.exists() or path.is_symlink():
            if self._is_our_worktree(path, branch):
                return True
            log.warning("workspace.worktree_recreated path=%s", path)
            self.detach(path)
        start = self._branch_start(branch, base_ref)
        git.run("update-ref", "--no-deref", f"refs/heads/{branch}", start)
        if self.agent is not None:
            self.share()
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.agent is None and self._recycle(path, branch):
            return False
        try:
            git.run("worktree", "add", "--quiet", "--", str(path), branch)
        except GitError as exc:
            raise WorkspaceError(f"cannot create the worktree {path}: {exc}") from exc
        if self.agent is not None:  # a new folder, root's until now: nothing of the agent's
            agent_files.chown_tree(path, self.agent.owner)
            agent_files.chown_tree(self.admin_dir(path), self.agent.owner)
        return False

    def share(self) -> None:
        """Let the agent's user commit here and nothing more (see the module docstring)."""
        assert self.agent is not None
        for key, value in AGENT_CONFIG.items():
            self.git.run("config", key, value)
        gid = self.agent.gid
        objects = os.open(self.path / "objects", _DIR_FLAGS)
        try:
            _own(objects, 0, gid, OBJECT_DIR_MODE)
            for name in [f"{n:02x}" for n in range(256)]:
                _own_folder(objects, name, 0, gid, OBJECT_DIR_MODE, create=True)
            for name in ("pack", "info"):
                _own_folder(objects, name, 0, 0, ROOT_DIR_MODE, create=True)
        finally:
            os.close(objects)
        agent_files.share_folders(self.path, "refs/heads", gid=gid, mode=SHARED_DIR_MODE)

    def admin_dir(self, path: Path) -> Path:
        """The private git folder of the worktree at `path` (``worktrees/<name>`` here), as
        its ``.git`` file says, checked to be one: the file is the agent's to change."""
        text = agent_files.read_text(path, ".git", limit=4096) or ""
        admin = Path(text.strip().removeprefix("gitdir:").strip())
        folder = (self.path / "worktrees").resolve()
        if (not text.startswith("gitdir:") or not admin.is_absolute()
                or admin.parent != folder or admin.name in ("", ".", "..")):
            raise WorkspaceError(f"{path}/.git does not point into {folder}")
        try:
            if not stat.S_ISDIR(admin.lstat().st_mode):
                raise WorkspaceError(f"{admin} is not a folder")
        except FileNotFoundError:
            raise WorkspaceError(f"{admin} does not exist") from None
        return admin

    @property
    def spares(self) -> Path:
        return self.path.with_suffix(".spares")

    @property
    def lock_file(self) -> Path:
        """The file lock (`locked`) one process at a time holds to change the mirror."""
        return self.path.with_suffix(".lock")

    def park(self, path: Path) -> None:
        """Keep a finished worktree as a spare for the next item, else remove it.

        Checking out a big tree means writing every file; a spare only has to
        switch branches, so the next item on this repository starts in a second.
        """
        if self.agent is not None:
            self.detach(path)
            return
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
        if self.agent is not None:
            info = path.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != self.agent.uid:
                return False
        tree = Git(cwd=path, user=self.agent)
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
        if self.agent is not None:  # no git inside the agent's tree; rmtree follows no symlink
            if path.is_symlink() or not path.is_dir():
                path.unlink(missing_ok=True)
            else:
                shutil.rmtree(path, ignore_errors=True)
        elif not git.succeeds("worktree", "remove", "--force", "--force", "--", str(path)):
            shutil.rmtree(path, ignore_errors=True)
        git.run("worktree", "prune")


def _sha(git: Git, ref: str) -> str | None:
    result = git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return result.stdout.strip() or None if result.ok else None


def _own(fd: int, uid: int, gid: int, mode: int) -> None:
    info = os.fstat(fd)
    if (info.st_uid, info.st_gid) != (uid, gid):
        os.fchown(fd, uid, gid)
    if stat.S_IMODE(info.st_mode) != mode:
        os.fchmod(fd, mode)


def _own_folder(parent: int, name: str, uid: int, gid: int, mode: int, *, create: bool) -> None:
    """Give folder `name` in `parent` to uid:gid with `mode`; a symlink or file in its place
    is removed (these are git's own names) and, with `create`, the folder made."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            return
        os.mkdir(name, mode, dir_fd=parent)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        os.unlink(name, dir_fd=parent)
        os.mkdir(name, mode, dir_fd=parent)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        _own(fd, uid, gid, mode)
    finally:
        os.close(fd)


def allowed_config(key: str) -> bool:
    """Whether the mirror's config may keep `key` (lower case, as git lists it)."""
    return key in ALLOWED_CONFIG or key.startswith(ALLOWED_CONFIG_SECTIONS)


def _config_entry(record: str) -> tuple[str, str]:
    """One `git config --list -z` record; a key without a value is a boolean true."""
    key, newline, value = record.partition("\n")
    return key, value if newline else "true"


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=MIRROR_LOCK_TIMEOUT_S)
    except LockTimeout as exc:
        raise WorkspaceError(f"timed out waiting for the mirror lock {lock_path}") from exc
    try:
        yield
    finally:
        lock.release()
