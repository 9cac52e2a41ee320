"""What a worker needs on this machine to run an item, checked without running one.

Owns one check per thing a real item would fail on for a reason of the machine
rather than of the item: who the agent runs as (root needs FACTORY_AGENT_USER, or
IS_SANDBOX=1 in a throwaway container), a Claude login the CLI will find, Claude
Code itself, the gate's program (FACTORY_TEST_COMMAND), git, a writable
FACTORY_HOME; and, for information, the identity commits will carry. Nothing here
reaches the network: a login is looked for, not tried.

Each check returns a `Need` whose `detail` is one line that says what was found or
exactly what to do. `factory doctor` prints them all; `factory up` (and `factory
orchestrator`) refuses to start when it would spawn local workers (MAX_WORKERS > 0,
the process or bwrap spawner) and a required one fails, with that same line
(`refusal`), instead of failing every item it would start.

The agent-user check uses the worker's own rules (`agent_user`): FACTORY_HOME owned
by root and writable by root alone, and reachable by that user, as is Claude Code.
It creates nothing: a user not made yet is judged by what any new user could reach.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ai_factory.core.errors import ConfigError
from ai_factory.core.settings import Settings
from ai_factory.worker.agent.versions import installed_cli

# Claude Code's own credentials, in order of precedence; and the cloud providers it can use.
LOGIN_VARS = {
    "CLAUDE_CODE_OAUTH_TOKEN": "a Claude subscription",
    "ANTHROPIC_API_KEY": "API billing",
    "ANTHROPIC_AUTH_TOKEN": "a bearer token",
}
PROVIDER_VARS = {"CLAUDE_CODE_USE_BEDROCK": "Amazon Bedrock", "CLAUDE_CODE_USE_VERTEX": "Vertex AI"}
LOGIN_FILE = ".credentials.json"  # what `claude /login` stores in its config folder
LOCAL_SPAWNERS = ("process", "bwrap")  # workers on this machine, under this user
LOGIN_HELP = (
    "no Claude login for the workers: run `factory login` and export"
    " CLAUDE_CODE_OAUTH_TOKEN=<the token it prints> where `factory up` runs, or export"
    " ANTHROPIC_API_KEY"
)
DEFAULT_IDENTITY = "AI Factory <factory@localhost>"  # worker/workspace.py DEFAULT_IDENTITY
GIT_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class Need:
    name: str
    ok: bool
    detail: str
    required: bool = True


# --- who the agent runs as ---


def check_user(settings: Settings, environ: Mapping[str, str]) -> Need:
    if os.geteuid() != 0:
        return Need("user", True, f"not root: the agent runs as {_user_name(os.geteuid())}")
    if settings.factory_agent_user:
        return _check_agent_user(settings)
    if environ.get("IS_SANDBOX") == "1":
        return Need("user", True, "root, FACTORY_AGENT_USER empty, IS_SANDBOX=1: the agent runs"
                    " as root (right only inside a throwaway container or VM)")  # fmt: skip
    if settings.factory_agent == "command":
        return Need("user", True, "root, FACTORY_AGENT_USER empty: the agent command runs as root")
    return Need("user", False,
                "running as root with FACTORY_AGENT_USER empty: Claude Code refuses to run as root."
                " Set FACTORY_AGENT_USER=factory-agent (the agent then runs as that user), or"
                " IS_SANDBOX=1 inside a throwaway container or VM")  # fmt: skip


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a container's arbitrary uid, without a passwd entry
        return f"uid {uid}"


def _check_agent_user(settings: Settings) -> Need:
    """Root with FACTORY_AGENT_USER: the user can be had, reaches FACTORY_HOME and Claude Code."""
    from ai_factory.worker.agent_user import HOME_DIR, SYSTEM_PATH, AgentUser

    name = settings.factory_agent_user
    search = f"{os.environ.get('PATH', '')}:{SYSTEM_PATH}"
    setpriv = shutil.which("setpriv", path=search)
    if setpriv is None:
        return Need("user", False, f"root: the agent runs as {name} through setpriv, which is not"
                    " installed: install util-linux (apt-get install util-linux)")  # fmt: skip
    cli = installed_cli() if settings.factory_agent == "claude" else None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if shutil.which("useradd", path=search) is None:
            return Need("user", False, f"root: the agent's user {name} does not exist and useradd"
                        f" is not installed: create it (useradd --system --user-group {name})")  # fmt: skip
        for path, what in ((settings.factory_home, "FACTORY_HOME"), (cli, "Claude Code")):
            if path is not None and (blocker := _closed_to_others(path)):
                return Need("user", False, f"a new user {name} could not reach {what} {path}"
                            f" ({blocker}): make it reachable, or set FACTORY_HOME under a folder"
                            " every user may pass through (e.g. /var/lib/ai-factory)")  # fmt: skip
        return Need("user", True, f"root: the agent will run as {name} (created at first start)")
    if entry.pw_uid == 0 or 0 in os.getgrouplist(name, entry.pw_gid):
        return Need("user", False, f"FACTORY_AGENT_USER: {name!r} is root or in root's group:"
                    " name an unprivileged user")  # fmt: skip
    agent = AgentUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid,
                      home=settings.factory_home / HOME_DIR, setpriv=setpriv)  # fmt: skip
    try:
        agent.check_home(settings.factory_home)
    except (ConfigError, OSError) as exc:
        return Need("user", False, str(exc))
    if cli is not None and not agent.can(["-r", str(cli), "-a", "-x", str(cli)]):
        return Need("user", False, f"the agent's user {name} cannot run Claude Code at {cli}:"
                    " install the factory (its virtualenv) where every user can read it,"
                    " e.g. under /opt")  # fmt: skip
    return Need("user", True, f"root: the agent runs as {name} (uid {entry.pw_uid}), which"
                " reaches FACTORY_HOME and Claude Code")  # fmt: skip


def _closed_to_others(path: Path) -> str:
    """Why a user in no group of ours could not reach `path` ("" when it could)."""
    for folder in [*reversed(path.parents), path]:
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            return ""  # created later, by root, as the factory needs it
        except OSError as exc:
            return f"{folder}: {exc.strerror}"
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return f"{folder} is mode {stat.S_IMODE(mode):o}"
    return ""


# --- the Claude login ---


def check_login(settings: Settings, environ: Mapping[str, str]) -> Need:
    if settings.factory_agent == "command":
        return Need("login", True, "FACTORY_AGENT=command: the agent command brings its own login",
                    required=False)  # fmt: skip
    for var, what in LOGIN_VARS.items():
        if environ.get(var, "").strip():
            return Need("login", True, f"{var} is set ({what})")
    for var, provider in PROVIDER_VARS.items():
        if environ.get(var, "").strip() not in ("", "0", "false"):
            return Need("login", True, f"{var} is set: Claude Code uses {provider}")
    config = Path(environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    stored = config / LOGIN_FILE
    if _stored_login(stored):
        copied = (
            " (copied for the agent's user)"
            if os.geteuid() == 0 and settings.factory_agent_user
            else ""
        )
        return Need("login", True, f"Claude Code's stored login in {stored}{copied}")
    if settings.anthropic_api_key is not None and settings.anthropic_api_key.get_secret_value():
        return Need("login", False, "ANTHROPIC_API_KEY is only in .env, which workers do not"
                    " read: export it where `factory up` runs")  # fmt: skip
    return Need("login", False, LOGIN_HELP)


def _stored_login(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    return isinstance(oauth, dict) and bool(oauth.get("accessToken") or oauth.get("refreshToken"))


def check_claude_cli(settings: Settings, environ: Mapping[str, str]) -> Need:
    if settings.factory_agent == "command":
        return Need(
            "claude", True, "FACTORY_AGENT=command: Claude Code is not used", required=False
        )
    cli = installed_cli()
    if cli is None:
        return Need("claude", False, "Claude Code not found: pip install claude-agent-sdk"
                    " (it ships the CLI), or `make install`")  # fmt: skip
    return Need("claude", True, str(cli))


# --- the gate, git, FACTORY_HOME ---


def check_gate(settings: Settings, environ: Mapping[str, str]) -> Need:
    command = settings.factory_test_command
    if not command or not command.strip():
        return Need("gate", True, "FACTORY_TEST_COMMAND not set: a repository's .factory.toml"
                    " names its gate; without one, checked boxes alone mean done",
                    required=False)  # fmt: skip
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return Need("gate", False, f"FACTORY_TEST_COMMAND: not a valid command line ({exc})")
    if not argv:
        return Need("gate", True, "FACTORY_TEST_COMMAND is empty: no gate", required=False)
    program = argv[0]
    if "/" in program and not os.path.isabs(program):
        return Need("gate", True, f"FACTORY_TEST_COMMAND runs {program} from each repository",
                    required=False)  # fmt: skip
    found = program if os.path.isabs(program) else shutil.which(program, path=environ.get("PATH"))
    if found is None or not os.access(found, os.X_OK):
        return Need("gate", False, f"FACTORY_TEST_COMMAND runs {program}, which is not on PATH"
                    " here (every gate would fail): install it, or fix FACTORY_TEST_COMMAND"
                    " (a repository's .factory.toml [gates] test wins over it)")  # fmt: skip
    return Need("gate", True, f"FACTORY_TEST_COMMAND: {command} ({found})")


def check_git(settings: Settings, environ: Mapping[str, str]) -> Need:
    if shutil.which("git", path=environ.get("PATH")) is None:
        return Need("git", False, "git is not installed: install git (apt-get install git)")
    return Need("git", True, "git is installed")


def check_identity(settings: Settings, environ: Mapping[str, str]) -> Need:
    """Who the worker's commits are by. Never fatal: without one, the worker sets its own."""
    if environ.get("GIT_AUTHOR_NAME") and environ.get("GIT_AUTHOR_EMAIL"):
        who = f"{environ['GIT_AUTHOR_NAME']} <{environ['GIT_AUTHOR_EMAIL']}> (GIT_AUTHOR_*)"
    elif os.geteuid() == 0 and settings.factory_agent_user:
        who = f"{DEFAULT_IDENTITY}, unless the repository sets user.name and user.email"
    else:
        name, email = _git_config("user.name"), _git_config("user.email")
        if name and email:
            who = f"{name} <{email}> (git config --global), or the repository's own"
        else:
            who = (f"{DEFAULT_IDENTITY} (no user.name/user.email in git config --global;"
                   " a repository's own wins)")  # fmt: skip
    return Need("identity", True, f"commits are by {who}", required=False)


def _git_config(key: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    try:
        done = subprocess.run([git, "config", "--global", "--get", key], capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL,
                              check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def check_home(settings: Settings, environ: Mapping[str, str]) -> Need:
    home = settings.factory_home
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Need("home", False, f"FACTORY_HOME {home} is not writable ({exc.strerror}):"
                    " set FACTORY_HOME to a folder this user can write")  # fmt: skip
    return Need("home", True, f"FACTORY_HOME {home} is writable")


WORKER_CHECKS: list[Callable[[Settings, Mapping[str, str]], Need]] = [
    check_user,
    check_login,
    check_gate,
    check_identity,
    check_home,
]
"""What `factory doctor` adds to its own checks (python, git, claude, database, ...)."""

REFUSAL_CHECKS: list[Callable[[Settings, Mapping[str, str]], Need]] = [
    check_home,
    check_git,
    check_claude_cli,
    check_user,
    check_login,
    check_gate,
]
"""What a worker cannot do without: `factory up` refuses to start workers on the first miss."""


def starts_local_workers(settings: Settings) -> bool:
    """Whether this orchestrator starts `factory worker` here. A FACTORY_WORKER_COMMAND
    replaces it with a program whose needs the factory cannot know: it is not checked."""
    return (
        settings.max_workers > 0
        and settings.factory_spawner in LOCAL_SPAWNERS
        and settings.worker_command is None
    )


def refusal(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """Why workers started here would fail every item (the first reason), or None."""
    if not starts_local_workers(settings):
        return None
    env = os.environ if environ is None else environ
    for check in REFUSAL_CHECKS:
        need = check(settings, env)
        if need.required and not need.ok:
            return need.detail
    return None
