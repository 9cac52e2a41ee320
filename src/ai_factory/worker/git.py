"""Running git safely: validated remotes and branch names, argv lists, a cleaned
environment, no prompts, and token-based credentials.

`Remote.parse` and `check_branch_name` vet what a work item names before git
sees it: local paths must exist, URLs must use https, http, ssh, git or file and
carry no credentials, nothing may start with "-", and branch names must pass
`git check-ref-format --branch`.

`Git` runs one git command at a time against one repository, either an explicit
`--git-dir` (the bare mirror) or a working tree (discovery stops at the tree:
`GIT_CEILING_DIRECTORIES`). Every call is an argv list; nothing goes through a
shell. The environment git sees:

- has no repository-redirecting `GIT_*` variables and no secrets of ours
  (anything named like a token, key or password), so hooks, filters and remote
  helpers cannot read them;
- never prompts: `GIT_TERMINAL_PROMPT=0`, an empty `GIT_ASKPASS`, stdin closed,
  and a new session so ssh has no terminal to ask on;
- allows only the file, git, http(s) and ssh transports (`GIT_ALLOW_PROTOCOL`),
  so `ext::` and friends cannot run commands.

With `user` (an `AgentUser`) the command runs as that user (setpriv), with its HOME:
that is how a root worker runs git inside a worktree the agent can write, whose
configuration (core.fsmonitor, filters, hooks) would otherwise run the agent's
commands as root. git run as root touches the bare mirror only (`git_dir`).

With `GitCredentials`, the command also gets our credential helper
(`ai_factory.worker.credentials`, after `credential.helper=` clears any other)
and the token in the helper's environment variable; the token never appears in
argv, URLs, config or logs, and is masked in every error message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ai_factory.core.errors import FactoryError
from ai_factory.core.logging import scrub
from ai_factory.core.processes import signal_group
from ai_factory.worker import credentials

if TYPE_CHECKING:
    from ai_factory.worker.agent_user import AgentUser

log = logging.getLogger(__name__)

GIT_TIMEOUT_S = 1800.0
KILL_WAIT_S = 5.0  # for a killed git's output, after which its pipes are closed unread
ALLOWED_PROTOCOLS = "file:git:http:https:ssh"
# GIT_* variables a user may legitimately rely on (transport and identity set-up).
_KEEP_GIT_ENV = frozenset({
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
    "GIT_SSL_NO_VERIFY", "GIT_PROXY_COMMAND", "GIT_EXEC_PATH", "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_HTTP_USER_AGENT",
})
_SECRET_NAME = re.compile(r"(?i)token|secret|passw|api_?key|credential|private_?key")
_STDERR_TAIL_CHARS = 800
_URL_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})
_HAS_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"^(?:[^@/:\s]+@)?(?P<host>[^@/:\s]+):(?P<path>.+)$")
_OWNER_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class WorkspaceError(FactoryError):
    """A workspace could not be prepared, changed or pushed; the message says why."""


class GitError(WorkspaceError):
    """A git command failed; the message is git's own, with secrets masked."""

    def __init__(self, message: str, *, returncode: int, stderr: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr

    @property
    def detail(self) -> str:
        """git's last lines of stderr, or the message when there are none."""
        return _tail(self.stderr) if self.stderr.strip() else str(self)


@dataclass(frozen=True, kw_only=True)
class Remote:
    """A repository address as a work item gave it, checked and classified."""

    given: str
    url: str  # what git is told: the URL, or the absolute path of a local repository
    scheme: str  # https, http, ssh, git, file or local
    host: str | None  # "github.com", "127.0.0.1:8080"; None for local repositories
    path: str  # the path on the host, or the local directory

    @classmethod
    def parse(cls, repo: str) -> Remote:
        """Check `repo` (a URL, an scp-like ssh address or a local path); raise WorkspaceError."""
        text = repo.strip()
        if not text or _CONTROL.search(text):
            raise WorkspaceError("repository is empty or contains control characters")
        if text.startswith("-"):
            raise WorkspaceError(f"repository {text!r} must not start with '-'")
        scheme_match = _HAS_SCHEME.match(text)
        if scheme_match:
            return cls._parse_url(text, scheme_match.group(1).lower())
        if "::" in text:
            raise WorkspaceError(f"repository {text!r} uses a git transport that is not allowed")
        local = Path(text).expanduser()
        if text.startswith(("/", "./", "../", "~")) or local.exists():
            return cls._local(text, local)
        scp = _SCP_LIKE.match(text)
        if scp and "/" not in text.split(":", 1)[0]:
            if scp.group("host").startswith("-"):
                raise WorkspaceError(f"repository {text!r} names an invalid host")
            return cls(given=text, url=text, scheme="ssh", host=scp.group("host"),
                       path=scp.group("path"))
        hint = " (give a URL such as https://github.com/owner/name.git)" \
            if _OWNER_NAME.match(text) else ""
        raise WorkspaceError(f"repository {text!r} does not exist{hint}")

    @classmethod
    def _parse_url(cls, text: str, scheme: str) -> Remote:
        if scheme not in _URL_SCHEMES:
            raise WorkspaceError(f"repository URL scheme {scheme!r} is not supported"
                                 " (use https, http, ssh, git, file or a local path)")
        parts = urlsplit(text)
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise WorkspaceError(f"repository {text!r} names a remote file host")
            remote = cls._local(text, Path(unquote(parts.path)))
            return cls(given=text, url=text, scheme="file", host=None, path=remote.path)
        if parts.password is not None or (scheme.startswith("http") and parts.username):
            # The URL itself is a secret now: keep it out of the message.
            raise WorkspaceError("the repository URL contains credentials; remove them and"
                                 " set GITHUB_TOKEN instead")
        try:
            hostname, port = parts.hostname, parts.port
        except ValueError as exc:
            raise WorkspaceError(f"repository URL {text!r} is malformed ({exc})") from None
        if not hostname or hostname.startswith("-") or not parts.path.strip("/"):
            raise WorkspaceError(f"repository URL {text!r} names no host or no repository")
        host = f"{hostname}:{port}" if port else hostname
        return cls(given=text, url=text, scheme=scheme, host=host, path=parts.path)

    @classmethod
    def _local(cls, text: str, path: Path) -> Remote:
        directory = path.expanduser().resolve()
        if not directory.is_dir():
            raise WorkspaceError(f"repository {text!r} does not exist (no such directory)")
        return cls(given=text, url=str(directory), scheme="local", host=None,
                   path=str(directory))

    @property
    def hostname(self) -> str | None:
        return self.host.rsplit(":", 1)[0] if self.host and ":" in self.host else self.host

    @property
    def credential_host(self) -> str | None:
        """The host a token may be sent to: http(s) remotes only (ssh uses keys)."""
        return self.host if self.scheme in ("https", "http") else None

    @property
    def display(self) -> str:
        return self.given

    @property
    def key(self) -> str:
        """A stable, readable directory name for this repository's mirror."""
        readable = f"{self.hostname or 'local'}/{self.path}".lower().removesuffix(".git")
        slug = re.sub(r"[^a-z0-9._]+", "-", readable).strip("-.")[-60:].strip("-.")
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:12]
        return f"{slug}-{digest}"


def check_branch_name(name: str, *, what: str = "branch") -> str:
    """`name` if git accepts it as a branch name and it cannot be read as an option."""
    if (not name or len(name) > 255 or name.startswith("-") or "@{" in name
            or _CONTROL.search(name)):
        raise WorkspaceError(f"{what} {name!r} is not a valid branch name")
    git = Git(cwd=Path(tempfile.gettempdir()))
    if not git.succeeds("check-ref-format", "--branch", name):
        raise WorkspaceError(f"{what} {name!r} is not a valid branch name")
    return name


@dataclass(frozen=True, kw_only=True)
class GitCredentials:
    """A token git may send as HTTP Basic auth (user `x-access-token`) to one host."""

    token: str = field(repr=False)
    host: str  # as git names it in credential requests: "github.com", "127.0.0.1:8080"

    def __post_init__(self) -> None:
        if not self.token or any(c in self.token for c in "\n\r\0"):
            raise ValueError("the GitHub token is empty or contains line breaks")


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def git_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a git child: ours minus secrets and repository overrides."""
    source = dict(os.environ if base is None else base)
    env = {
        name: value for name, value in source.items()
        if (not name.startswith("GIT_") or name in _KEEP_GIT_ENV)
        and not _SECRET_NAME.search(name)
        and name != "SSH_ASKPASS"
    }
    env.update({
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",  # empty, not unset: git then skips core.askPass and SSH_ASKPASS
        "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
        "LC_ALL": "C",
        "LANGUAGE": "C",
    })
    return env


def credential_helper() -> str:
    """The `credential.helper` value that runs our helper with this interpreter.

    `-I` (isolated) keeps the working directory off sys.path, so a file in the
    repository can never stand in for the helper.
    """
    return f"!{shlex.quote(sys.executable)} -I -m {credentials.__name__}"


class Git:
    """git for one repository: `git_dir` (a bare repository) or `cwd` (a working tree)."""

    def __init__(self, *, cwd: Path | None = None, git_dir: Path | None = None,
                 credentials: GitCredentials | None = None, user: AgentUser | None = None,
                 timeout_s: float = GIT_TIMEOUT_S) -> None:
        if cwd is None and git_dir is None:
            raise ValueError("Git needs a cwd or a git_dir")
        if credentials is not None and user is not None:
            raise ValueError("the agent's user never gets credentials")
        self.cwd = Path(cwd if cwd is not None else git_dir)  # type: ignore[arg-type]
        self.git_dir = git_dir
        self.credentials = credentials
        self.user = user
        self.timeout_s = timeout_s

    def run(self, *args: str, input_text: str | None = None, check: bool = True,
            timeout_s: float | None = None, env: dict[str, str] | None = None) -> GitResult:
        """Run `git <args>` (with `env` added to git's environment, e.g. GIT_INDEX_FILE);
        raise `GitError` on a non-zero exit when `check`."""
        argv = ["git", *self._config_args()]
        if self.git_dir is not None:
            argv.append(f"--git-dir={self.git_dir}")
        argv.extend(args)
        extra = env or {}
        env = git_env()
        env.update(extra)
        if self.git_dir is None:
            env["GIT_CEILING_DIRECTORIES"] = str(self.cwd.parent)
        if self.credentials is not None:
            env[credentials.TOKEN_ENV] = self.credentials.token
            env[credentials.HOST_ENV] = self.credentials.host.lower()
        if self.user is not None:
            env.update(self.user.env())
            argv = self.user.command(argv)
        limit = timeout_s if timeout_s is not None else self.timeout_s
        log.debug("git.run %s in %s", _describe(args), self.cwd)
        result = _run(argv, cwd=self.cwd, env=env, input_text=input_text, timeout_s=limit,
                      what=_describe(args))
        result = GitResult(result.returncode, result.stdout, self._mask(result.stderr))
        if check and not result.ok:
            raise GitError(f"git {_describe(args)} failed: {_tail(result.stderr)}",
                           returncode=result.returncode, stderr=result.stderr)
        return result

    def output(self, *args: str) -> str:
        """stdout of a successful command, stripped."""
        return self.run(*args).stdout.strip()

    def succeeds(self, *args: str) -> bool:
        return self.run(*args, check=False).ok

    def _config_args(self) -> list[str]:
        # Never run repository hooks from our own commands: a hook would see our environment.
        # No gc in the background: `reaper.stop_leftovers` could cut it short, holding locks.
        args = ["-c", "core.hooksPath=/dev/null", "-c", "gc.autoDetach=false"]
        if self.user is not None:
            # As the agent: it cannot write the mirror's reflogs or packs (see mirror.py).
            args += ["-c", "core.logAllRefUpdates=false", "-c", "gc.auto=0"]
        if self.credentials is not None:
            args += ["-c", "credential.helper=", "-c", f"credential.helper={credential_helper()}"]
        return args

    def _mask(self, text: str) -> str:
        if self.credentials is not None:
            text = text.replace(self.credentials.token, "***")
        return scrub(text)


def _run(argv: Sequence[str], *, cwd: Path, env: dict[str, str], input_text: str | None,
         timeout_s: float, what: str) -> GitResult:
    # A new session: no controlling terminal for ssh to prompt on, and one group to kill.
    process = subprocess.Popen(
        list(argv), cwd=cwd, env=env, start_new_session=True,
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        stdout, stderr = process.communicate(
            input=input_text.encode() if input_text is not None else None, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise GitError(f"git {what} timed out after {timeout_s:.0f} s", returncode=-1,
                       stderr="") from None
    except BaseException:
        _kill(process)
        raise
    return GitResult(process.returncode, stdout.decode(errors="replace"),
                     stderr.decode(errors="replace"))


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill git's process group and reap git; a helper that left the group (an ssh master,
    a credential helper) may hold the pipes open, so they are not read to their end."""
    signal_group(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def _describe(args: Sequence[str]) -> str:
    """The subcommand and its options, for messages; values stay out (they can be long)."""
    words = [a for a in args if a.startswith("-") and a != "--"][:4]
    return " ".join([args[0], *words]) if args else ""


def _tail(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    text = "; ".join(lines[-3:]) if lines else "no message"
    return text[-_STDERR_TAIL_CHARS:]
