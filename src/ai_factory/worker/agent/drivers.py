"""Which agent driver FACTORY_AGENT names, built from the settings.

Owns: `build_driver`. ``claude`` (the default): the Claude Code driver, whose
environment is the worker's with the factory's secrets blanked (`env`) and whose
edits pass the lock hook. ``command``: FACTORY_AGENT_COMMAND split with shlex into
argv (a configuration error when it does not split), run with the worker's
environment minus the factory's secrets; its ``edit:`` lines ask for locks.
With an `AgentUser` (the worker is root) either runs as that user: Claude Code
through the wrapper `AgentUser.claude_wrapper` writes (the SDK's `cli_path`), with
its own HOME and config folder, and root's login file copied there.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from ai_factory.core.errors import ConfigError
from ai_factory.core.settings import Settings
from ai_factory.worker.agent import AgentDriver
from ai_factory.worker.agent.claude import ClaudeDriver, bundled_cli
from ai_factory.worker.agent.command import CommandDriver
from ai_factory.worker.agent.env import agent_env, scripted_model, sdk_env_overrides
from ai_factory.worker.agent_user import AgentUser
from ai_factory.worker.hooks import FileLocks


def build_driver(
    settings: Settings,
    *,
    locks: FileLocks,
    base_env: Mapping[str, str],
    extra_env: Mapping[str, str],
    agent: AgentUser | None = None,
) -> AgentDriver:
    if settings.factory_agent == "command":
        try:
            argv = shlex.split(settings.factory_agent_command)
        except ValueError as exc:
            raise ConfigError(f"FACTORY_AGENT_COMMAND: not a valid command line ({exc})") from None
        return CommandDriver(
            argv=argv,
            env={**agent_env(base_env), **extra_env},
            idle_timeout_s=settings.iteration_idle_timeout_seconds,
            wall_timeout_s=settings.iteration_timeout_seconds,
            locks=locks,
            run_as=agent,
        )
    env = {**sdk_env_overrides(base_env), **extra_env}
    cli_path = None
    if agent is not None:
        source = env.get("CLAUDE_CONFIG_DIR") or base_env.get("CLAUDE_CONFIG_DIR")
        agent.copy_claude_login(Path(source) if source else None)
        cli_path = agent.claude_wrapper(bundled_cli(), settings.factory_home)
        env.update(agent.claude_env())
    return ClaudeDriver(
        env=env,
        idle_timeout_s=settings.iteration_idle_timeout_seconds,
        wall_timeout_s=settings.iteration_timeout_seconds,
        model=settings.factory_model,
        hooks=locks.claude_hooks(),
        cli_path=cli_path,
        priced=not scripted_model({**base_env, **extra_env}),
    )
