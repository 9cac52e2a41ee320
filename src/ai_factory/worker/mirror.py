"""The bare mirror of one repository, shared by every worktree cut from it.

Created once under ``$FACTORY_HOME/mirrors``, refreshed with ``git fetch`` (into
``refs/remotes/origin/*``, so items' branches are never overwritten), guarded by a
file lock so two workers on one host do not race. It also keeps finished worktrees as
spares to recycle, and keeps its config to an allow-list: an agent working in a
worktree can write the mirror's config, which git reads for every credentialed fetch
and push.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from filelock import Timeout as LockTimeout

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
    *(key.lower() for key in MIRROR_CONFIG),
})
ALLOWED_CONFIG_SECTIONS = ("extensions.",)
PINNED_CONFIG = ("remote.origin.url", "remote.origin.fetch")  # local config only


@dataclass(kw_only=True)
class Mirror:
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

    @property
    def lock_file(self) -> Path:
        """The file lock (`locked`) one process at a time holds to change the mirror."""
        return self.path.with_suffix(".lock")

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
