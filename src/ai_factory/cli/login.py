"""`factory login`: a Claude login for the workers, from the Claude Code the factory ships.

The `claude` binary workers run is inside claude-agent-sdk's package, not on PATH,
so `claude setup-token` is "command not found" for most users. This runs that
binary's `setup-token` (a Claude subscription: it opens a browser, asks for the code,
and prints a long-lived token) and then says where the token goes: the environment
`factory up` runs in, as CLAUDE_CODE_OAUTH_TOKEN, which the workers pass on to
Claude Code. `.env` is read by the factory's settings only, not by Claude Code.
"""

from __future__ import annotations

import os
import subprocess
import sys

import typer

from ai_factory.cli.output import err, out

WHERE_IT_GOES = (
    "Put the token where `factory up` runs, e.g. in your shell profile:\n"
    "    export CLAUDE_CODE_OAUTH_TOKEN=<the token>\n"
    "(an API key works too: export ANTHROPIC_API_KEY=...). `factory doctor` then says"
    " `OK login`."
)


def login(
    path: bool = typer.Option(False, "--path", help="Only print where the bundled claude is."),
) -> None:
    """Log Claude Code in for the workers (claude setup-token).

    Runs `claude setup-token` with the Claude Code bundled in claude-agent-sdk (a Claude
    subscription; it opens a browser and prints a token), then says where the token goes."""
    from ai_factory.core.errors import ConfigError
    from ai_factory.worker.agent.versions import installed_cli

    cli = installed_cli()
    if cli is None:
        raise ConfigError("Claude Code not found: pip install claude-agent-sdk (it ships the CLI)")
    if path:
        out.print(str(cli), markup=False, soft_wrap=True)
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        out.print(f"`factory login` runs `{cli} setup-token`, which needs a terminal (it opens a"
                  " browser and asks for the code it shows).", markup=False)  # fmt: skip
        out.print(WHERE_IT_GOES, markup=False)
        err.print("error: factory login needs a terminal: run it in one", markup=False)
        raise typer.Exit(1)
    out.print(f"Running {cli} setup-token ...", markup=False)
    try:
        done = subprocess.run([str(cli), "setup-token"], env=os.environ, check=False)
    except OSError as exc:
        raise ConfigError(f"cannot run {cli}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        err.print(f"error: claude setup-token ended with exit code {done.returncode}", markup=False)
        raise typer.Exit(done.returncode)
    out.print()
    out.print(WHERE_IT_GOES, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(login)
