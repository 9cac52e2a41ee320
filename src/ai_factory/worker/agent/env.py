"""The environment the agent (Claude Code or an external command) runs with.

Owns: which of the worker's variables the agent sees. Everything the worker was
started with passes unchanged (ANTHROPIC_*, CLAUDE_*, proxies, PATH, HOME ...),
except:

- ``CLAUDECODE``: set inside a Claude Code session; a nested CLI seeing it refuses
  to start ("cannot be launched inside another Claude Code session");
- every secret of the factory (`ai_factory.core.secrets.FACTORY_SECRETS`):
  ``WORKER_TOKEN`` (the worker's lease on its item: an agent holding it could
  complete or fail the item itself), ``GITHUB_TOKEN`` (the worker pushes and opens
  the PR; the agent works on a local branch and needs neither), and the
  orchestrator's ``FACTORY_API_TOKEN``, ``GITHUB_WEBHOOK_SECRET``, ``DATABASE_URL``
  and ``REDIS_URL`` should the worker have been started with them;
- ``WORK_ITEM``: plumbing, not a secret (the spec is in SPEC.md).

``CLAUDE_CODE_MAX_RETRIES`` is capped so that a long outage comes back to the
worker's own decision (`ai_factory.worker.run_outcome`) instead of being retried
inside one iteration for minutes: default 2, at most 4.

The SDK merges its own environment with ``ClaudeAgentOptions.env``, so removed
variables are passed as empty strings there (an empty value reads as unset);
the command driver gets a dict without them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ai_factory.core.secrets import FACTORY_SECRETS

HIDDEN = FACTORY_SECRETS | {"CLAUDECODE", "WORK_ITEM"}
# Set (to 1) by `ai_factory.sim.sim_env`: the model behind ANTHROPIC_BASE_URL is the scripted
# one, which is free; the worker records its sessions' cost as 0 instead of the CLI's price.
SCRIPTED_MODEL_VAR = "FACTORY_SCRIPTED_MODEL"
MAX_RETRIES_VAR = "CLAUDE_CODE_MAX_RETRIES"
DEFAULT_CLI_RETRIES = 2
MAX_CLI_RETRIES = 4


def cli_retries(value: str | None) -> str:
    try:
        wanted = int(value) if value not in (None, "") else DEFAULT_CLI_RETRIES
    except ValueError:
        wanted = DEFAULT_CLI_RETRIES
    return str(max(0, min(wanted, MAX_CLI_RETRIES)))


def agent_env(base: Mapping[str, str]) -> dict[str, str]:
    """The agent's full environment: `base` minus the hidden variables, retries capped."""
    env = {k: v for k, v in base.items() if k.upper() not in HIDDEN}
    env[MAX_RETRIES_VAR] = cli_retries(base.get(MAX_RETRIES_VAR))
    return env


def sdk_env_overrides(base: Mapping[str, str]) -> dict[str, str]:
    """`ClaudeAgentOptions.env`: blanks for hidden variables present in `base`, retries capped.

    The SDK starts the CLI with its own process environment updated by this dict.
    """
    overrides = {k: "" for k in base if k.upper() in HIDDEN and k != "CLAUDECODE"}
    overrides[MAX_RETRIES_VAR] = cli_retries(base.get(MAX_RETRIES_VAR))
    return overrides


def scripted_model(env: Mapping[str, str]) -> bool:
    """Whether the agent talks to the scripted model (`SCRIPTED_MODEL_VAR`)."""
    return env.get(SCRIPTED_MODEL_VAR, "") == "1"
