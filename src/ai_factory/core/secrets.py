"""The factory's secret environment variables, and who may hold each.

Owns: the one list of their names. Three environments are cut from it:

- a spawned worker gets none of `ORCHESTRATOR_SECRETS`: it reaches the factory
  over HTTP with its own WORKER_TOKEN (`ai_factory.orchestrator.spawners.base`);
- the agent (Claude Code or an external command) gets none of `FACTORY_SECRETS`
  (`ai_factory.worker.agent.env`);
- `factory demo` starts its factory with none of `FACTORY_SECRETS`, so it never
  reaches real services or accounts (`ai_factory.worker.demo`).

Names are upper case; compare with ``name.upper()`` (settings read the environment
case-insensitively, so ``database_url`` counts as DATABASE_URL).
"""

from __future__ import annotations

ORCHESTRATOR_SECRETS = frozenset(
    {"DATABASE_URL", "REDIS_URL", "FACTORY_API_TOKEN", "GITHUB_WEBHOOK_SECRET"}
)
"""The orchestrator's alone: the database and Redis (their URLs may carry passwords),
the admin API token, and the key that signs GitHub's webhooks."""

WORKER_SECRETS = frozenset({"WORKER_TOKEN", "GITHUB_TOKEN"})
"""A worker's, handed to it by the spawner: its lease on its one item, and the GitHub
token it pushes the branch and opens the pull request with (intake in the
orchestrator uses GITHUB_TOKEN too)."""

FACTORY_SECRETS = ORCHESTRATOR_SECRETS | WORKER_SECRETS
"""Every secret of the factory: what the agent must never see. An agent holding
WORKER_TOKEN could complete or fail its item; one holding GITHUB_TOKEN could push
anywhere the token may."""

AGENT_CREDENTIALS = frozenset({"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"})
"""Secret, but not hidden from the agent: its own login to the model it drives
(SPEC_GENERATOR=anthropic also uses ANTHROPIC_API_KEY in the orchestrator)."""
