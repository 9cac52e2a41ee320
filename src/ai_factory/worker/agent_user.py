"""The unprivileged user the agent runs as when the worker is root (FACTORY_AGENT_USER).

An agent running as root could read every process's environment and memory (the
orchestrator's holds GITHUB_TOKEN), every file, and the push's credentials, whatever the
worker hides from its own environment. So a worker running as root runs everything that
executes code from the repository or the model as this user (default ``factory-agent``):
Claude Code, FACTORY_AGENT_COMMAND, the quality gate, and every git command in the
worktree. The worker keeps root for its own work: the mirror, the push, the reports.
A worker that is not root runs the agent as itself, as before.

Owns `AgentUser` (name, uid, gid, home):

- `AgentUser.for_worker(settings)`: None unless the process is root and
  FACTORY_AGENT_USER is set; else the user, created when missing (a system user with its
  own group, no login shell, no home in /etc/passwd: its home is always given as HOME),
  after checking that it can reach FACTORY_HOME and that FACTORY_HOME is root's alone.
  Its home is ``FACTORY_HOME/agent-home`` (its own, 0700), shared by the workers of a host;
- `command(argv)`: `argv` run as the user through setpriv: its uid, gid and groups (not
  root's supplementary groups), no capabilities, no_new_privs (no setuid way back up);
- `env()` / `claude_env()`: HOME, USER, LOGNAME, and PATH without the folders it cannot
  enter (root's pyenv shims would shadow the system's python3), for it (and Claude Code's
  config folder);
- `claude_wrapper(cli)`: the executable the SDK starts as Claude Code (`cli_path`): a
  script of root's in ``FACTORY_HOME/bin`` that execs the CLI through setpriv;
- `copy_claude_login(...)`: root's Claude Code login (``.credentials.json``) copied into
  the user's config folder: the agent's own credential, like CLAUDE_CODE_OAUTH_TOKEN.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ai_factory.core.errors import ConfigError
from ai_factory.core.settings import Settings
from ai_factory.worker import agent_files

log = logging.getLogger(__name__)

HOME_DIR = "agent-home"
BIN_DIR = "bin"
LOGIN_FILE = ".credentials.json"  # Claude Code's login, in its config folder
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NO_LOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
USERADD_TRIES = 5
CHECK_TIMEOUT_S = 30
# Blanked for the agent: they would point into root's home or runtime folder.
_ROOTS_PLACES = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
                 "XDG_RUNTIME_DIR", "TMPDIR")  # fmt: skip


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SYSTEM_PATH}")
    if found is None:
        raise ConfigError(
            f"FACTORY_AGENT_USER: {name} is not installed (util-linux and passwd provide it);"
            " it runs the agent as an unprivileged user when the worker is root"
        )
    return found


@dataclass(frozen=True, kw_only=True)
class AgentUser:
    name: str
    uid: int
    gid: int
    home: Path
    setpriv: str
    path: str = ""  # the worker's PATH, less the folders this user cannot enter

    @classmethod
    def for_worker(cls, settings: Settings) -> AgentUser | None:
        """The user to run the agent as; None when the worker is not root (or
        FACTORY_AGENT_USER is empty). Raises `ConfigError` when it cannot be used."""
        name = settings.factory_agent_user
        if not name or sys.platform != "linux" or os.geteuid() != 0:
            return None
        entry = ensure_user(name)
        agent = cls(name=name, uid=entry.pw_uid, gid=entry.pw_gid,
                    home=settings.factory_home / HOME_DIR, setpriv=_tool("setpriv"))  # fmt: skip
        agent.check_home(settings.factory_home)
        agent.prepare_home()
        return dataclasses.replace(agent, path=agent.reachable_path(os.environ.get("PATH", "")))

    @property
    def owner(self) -> tuple[int, int]:
        return self.uid, self.gid

    @property
    def config_dir(self) -> Path:
        """Claude Code's config folder for the agent (CLAUDE_CONFIG_DIR)."""
        return self.home / ".claude"

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run as this user: its ids and groups, no capabilities, no_new_privs."""
        return [self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                "--inh-caps=-all", "--no-new-privs", "--", *argv]  # fmt: skip

    def env(self) -> dict[str, str]:
        """Added to the environment of whatever runs as this user (empty values unset)."""
        env = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
               **dict.fromkeys(_ROOTS_PLACES, "")}  # fmt: skip
        if self.path:
            env["PATH"] = self.path
        return env

    def claude_env(self) -> dict[str, str]:
        """`env()` for Claude Code: its own config folder, and no IS_SANDBOX (not root)."""
        return {**self.env(), "CLAUDE_CONFIG_DIR": str(self.config_dir), "IS_SANDBOX": ""}

    def can(self, test: list[str]) -> bool:
        """Whether `test <test>` succeeds as this user (e.g. ["-x", folder])."""
        try:
            done = subprocess.run(
                self.command(["test", *test]),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=CHECK_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"FACTORY_AGENT_USER: cannot run setpriv ({exc})") from exc
        return done.returncode == 0

    def reachable_path(self, path: str) -> str:
        """The folders of `path` this user can enter, in order (default /usr/bin:/bin)."""
        folders = [f for f in path.split(os.pathsep) if os.path.isabs(f)]
        script = 'for d do if [ -d "$d" ] && [ -x "$d" ]; then printf "%s\\n" "$d"; fi; done'
        done = subprocess.run(self.command(["/bin/sh", "-c", script, "sh", *folders]),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT_S, check=False)  # fmt: skip
        kept = done.stdout.splitlines() if done.returncode == 0 else []
        return os.pathsep.join(kept) or "/usr/bin:/bin"

    # --- FACTORY_HOME ---

    def check_home(self, factory_home: Path) -> None:
        """FACTORY_HOME must be root's, writable by root alone, and reachable by this user
        (search permission on every folder above it; it needs its worktrees there)."""
        factory_home.mkdir(parents=True, exist_ok=True)
        info = factory_home.stat()
        if info.st_uid != 0 or info.st_mode & 0o022:
            raise ConfigError(
                f"FACTORY_HOME {factory_home} must belong to root and be writable by root alone"
                f" when the agent runs as {self.name} (it is uid {info.st_uid},"
                f" mode {stat.S_IMODE(info.st_mode):o})"
            )
        if not self.can(["-x", str(factory_home)]):
            raise ConfigError(
                f"the agent's user {self.name} cannot reach FACTORY_HOME {factory_home}"
                f" ({self._blocker(factory_home)}). Set FACTORY_HOME to a folder every user may"
                " pass through (e.g. /var/lib/ai-factory), or FACTORY_AGENT_USER= (empty) to run"
                " the agent as root, which lets it read every secret on this machine"
            )

    def _blocker(self, path: Path) -> str:
        groups = set(os.getgrouplist(self.name, self.gid))
        for folder in [*reversed(path.parents), path]:
            try:
                info = folder.stat()
            except OSError as exc:
                return f"{folder}: {exc.strerror}"
            mode = info.st_mode
            if not (
                mode & 0o001
                or (info.st_uid == self.uid and mode & 0o100)
                or (info.st_gid in groups and mode & 0o010)
            ):
                return f"{folder} is mode {stat.S_IMODE(mode):o}, owner uid {info.st_uid}"
        return "access denied"

    def prepare_home(self) -> None:
        """The user's home under FACTORY_HOME: its own, 0700."""
        try:
            os.mkdir(self.home, 0o700)
        except FileExistsError:
            pass
        try:
            fd = os.open(self.home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError(f"{self.home} is not a folder ({exc.strerror})") from exc
        try:
            os.fchown(fd, self.uid, self.gid)
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)

    # --- Claude Code ---

    def claude_wrapper(self, cli: str, factory_home: Path) -> str:
        """A root-owned script that runs `cli` as this user; the SDK's `cli_path`."""
        if not self.can(["-r", cli, "-a", "-x", cli]):
            raise ConfigError(
                f"the agent's user {self.name} cannot run Claude Code at {cli}: install the"
                " factory (its virtualenv) where every user can read it, e.g. under /opt"
            )
        folder = factory_home / BIN_DIR
        folder.mkdir(mode=0o755, exist_ok=True)
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{folder} is not a folder")
        if info.st_uid != 0 or info.st_gid != 0 or info.st_mode & 0o022:
            os.chown(folder, 0, 0, follow_symlinks=False)
            folder.chmod(0o755)
        script = folder / f"claude-as-{self.name}"
        text = ("#!/bin/sh\n# Claude Code as the agent's user (written by AI Factory).\n"
                f"exec {shlex.join(self.command([cli]))} \"$@\"\n")  # fmt: skip
        try:
            current = script.lstat()
            if (
                stat.S_ISREG(current.st_mode)
                and current.st_uid == 0
                and stat.S_IMODE(current.st_mode) == 0o755
                and script.read_text() == text
            ):
                return str(script)
        except FileNotFoundError:
            pass
        tmp = script.with_name(f".{script.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, script)
        return str(script)

    def copy_claude_login(self, source_dir: Path | None) -> None:
        """Copy Claude Code's login file from `source_dir` (root's config folder) into this
        user's, unless the user's copy is as new (the CLI refreshes its own tokens)."""
        source = (source_dir or Path.home() / ".claude") / LOGIN_FILE
        if source_dir is not None and source_dir.resolve() == self.config_dir.resolve():
            return
        try:
            source_mtime = source.stat().st_mtime
            text = source.read_text()
        except OSError:
            return  # no login file: CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_API_KEY, or none
        try:
            if (self.config_dir / LOGIN_FILE).lstat().st_mtime >= source_mtime:
                return
        except OSError:
            pass
        agent_files.write_text(self.home, f".claude/{LOGIN_FILE}", text, owner=self.owner,
                               mode=0o600)  # fmt: skip
        log.info("agent_user.login_copied user=%s", self.name)


def ensure_user(name: str) -> pwd.struct_passwd:
    """The passwd entry of `name`, created (useradd --system) when missing."""
    error = ""
    for attempt in range(USERADD_TRIES + 1):
        try:
            entry = pwd.getpwnam(name)
            break
        except KeyError:
            if attempt == USERADD_TRIES:
                raise ConfigError(
                    f"FACTORY_AGENT_USER: cannot create the user {name!r}"
                    f" ({error or 'no reason given'}); create it"
                    f" (useradd --system --user-group {name}) or set FACTORY_AGENT_USER"
                ) from None
        if attempt:
            time.sleep(0.2 * attempt)  # another worker may be creating it (the files are locked)
        shell = next((s for s in NO_LOGIN_SHELLS if os.path.exists(s)), "/bin/false")
        done = subprocess.run(
            [_tool("useradd"), "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", shell, "--comment", "AI Factory agent",
             name],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S,
            check=False,
        )  # fmt: skip
        if done.returncode == 0:
            log.info("agent_user.created user=%s", name)
        error = (done.stderr or done.stdout).strip()
    groups = os.getgrouplist(name, entry.pw_gid)
    if entry.pw_uid == 0 or 0 in groups:
        raise ConfigError(f"FACTORY_AGENT_USER: {name!r} is root or in root's group")
    return entry
