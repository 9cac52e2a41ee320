"""One spelling per repository, and which local repositories the factory may push to.

`canonical_repo` is applied once, at submission, and the result is what the item
stores: file locks, the one-active-item rule, learnings and the mirror all key on
it, so ``/r.git`` and ``/r.git/``, ``a/../a/r.git``, a symlink to it, or
``https://GitHub.com/Acme/Widgets`` and ``https://github.com/acme/widgets.git`` are
one repository each, never two.

- A local path must be absolute (a relative one would be resolved wherever the
  orchestrator runs; the CLI resolves it where the user typed it) and becomes its
  real path (symlinks and ``..`` resolved, no trailing slash). ``file://`` URLs
  become the same path.
- A URL keeps its scheme and path, with the host lower-cased, the default port,
  repeated or trailing slashes and ``.`` / ``..`` segments dropped; on GitHub
  (github.com, or the GITHUB_API_URL host) owner and name are case-insensitive, so
  they are lower-cased and given the ``.git`` suffix. An scp-like ssh address
  (``git@host:owner/name.git``) is treated the same way.

`LocalRepoPolicy` decides which local paths are allowed at all: only under
LOCAL_REPO_ROOTS (default: the home folder of the user the factory runs as),
never inside FACTORY_HOME (the factory's own mirrors and worktrees), never a
checkout's ``.git`` folder (give the checkout), and only an existing git
repository whose base branch exists.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from ai_factory.core.errors import InvalidInputError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP = re.compile(r"^(?P<user>[^@/:]+@)?(?P<host>[^/:]+):(?P<path>.+)$")
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
GITHUB_HOSTS = frozenset({"github.com", "www.github.com"})
GIT_CHECK_TIMEOUT_S = 10.0


def is_local(repo: str) -> bool:
    """Whether `repo` names a folder on this host (a path or a file:// URL)."""
    text = repo.strip()
    if text.lower().startswith("file://"):
        return True
    return not _SCHEME.match(text) and (text.startswith(("/", ".", "~")) or not _SCP.match(text))


def canonical_repo(repo: str, *, github_hosts: frozenset[str] = GITHUB_HOSTS) -> str:
    """The one spelling of `repo` the factory stores (see the module docstring)."""
    text = repo.strip()
    if text.lower().startswith("file://"):
        return _canonical_path(unquote(urlsplit(text).path), given=text)
    if match := _SCHEME.match(text):
        return _canonical_url(text, match.group(1).lower(), github_hosts)
    scp = _SCP.match(text)
    if scp and not text.startswith(("/", ".", "~")) and "/" not in scp.group("host"):
        host = scp.group("host").lower()
        path = _clean_path(scp.group("path"), github=host in github_hosts)
        return f"{scp.group('user') or ''}{host}:{path.lstrip('/')}"
    return _canonical_path(text, given=text)


def _canonical_path(text: str, *, given: str) -> str:
    path = Path(text)
    if not path.is_absolute():
        raise InvalidInputError(
            f"repo: {given!r} is a relative path; give an absolute path or a URL"
            " (the CLI resolves relative paths where you run it)"
        )
    return str(path.resolve())


def _canonical_url(text: str, scheme: str, github_hosts: frozenset[str]) -> str:
    parts = urlsplit(text)
    try:
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError as exc:
        raise InvalidInputError(f"repo: {text!r} is not a valid URL ({exc})") from None
    netloc = host
    if parts.username:
        netloc = f"{parts.username}@{host}"
    if port and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    path = _clean_path(parts.path, github=host in github_hosts)
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def _clean_path(path: str, *, github: bool) -> str:
    cleaned = posixpath.normpath("/" + path.strip().lstrip("/")) if path.strip() else "/"
    cleaned = cleaned.rstrip("/") or "/"
    if github:
        cleaned = cleaned.lower()
        if cleaned.count("/") == 2 and not cleaned.endswith(".git"):
            cleaned += ".git"
    return cleaned


@dataclass(frozen=True)
class LocalRepoPolicy:
    """Which local repositories may be worked on (and pushed to)."""

    roots: tuple[Path, ...]
    factory_home: Path
    check_git: bool = True
    _resolved_roots: tuple[Path, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_resolved_roots", tuple(r.expanduser().resolve() for r in self.roots))

    def check(self, path: str, *, base_branch: str) -> None:
        """Raise `InvalidInputError` (one line, what to do) unless `path` (canonical) may be used."""
        where = Path(path)
        home = self.factory_home.expanduser().resolve()
        if where == home or where.is_relative_to(home):
            raise InvalidInputError(f"repo: {path} is inside FACTORY_HOME ({home}), the factory's own folder")
        if not any(where == root or where.is_relative_to(root) for root in self._resolved_roots):
            roots = ", ".join(str(r) for r in self._resolved_roots) or "none"
            raise InvalidInputError(
                f"repo: {path} is outside LOCAL_REPO_ROOTS ({roots}); add its folder there"
                " to let the factory work on it"
            )
        if not where.is_dir():
            raise InvalidInputError(f"repo: {path} does not exist")
        if where.name == ".git":
            raise InvalidInputError(f"repo: {path} is a checkout's .git folder; give {where.parent}")
        if self.check_git:
            self._check_git(where, base_branch)

    @staticmethod
    def _check_git(where: Path, base_branch: str) -> None:
        def git(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["git", "-c", "safe.directory=*", "--git-dir", str(_git_dir(where)), *args],
                capture_output=True, text=True, timeout=GIT_CHECK_TIMEOUT_S, check=False,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip

        try:
            inside = git("rev-parse", "--git-dir")
            if inside.returncode != 0:
                raise InvalidInputError(f"repo: {where} is not a git repository")
            branch = git("rev-parse", "--verify", "--quiet", f"refs/heads/{base_branch}^{{commit}}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InvalidInputError(f"repo: cannot read {where} with git ({exc})") from exc
        if branch.returncode != 0:
            raise InvalidInputError(f"baseBranch: {where} has no branch {base_branch!r}")


def _git_dir(where: Path) -> Path:
    """A checkout's .git, or the folder itself (a bare repository)."""
    dot_git = where / ".git"
    return dot_git if dot_git.exists() else where
