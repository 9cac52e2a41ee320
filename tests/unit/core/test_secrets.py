"""The one list of secret variables, and the environments cut from it.

A secret listed in `ai_factory.core.secrets` must stay out of the agent's
environment (both the command driver's and the SDK's), a worker must not inherit
the orchestrator's, and `factory demo` must start without any of them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest
from pydantic import SecretStr

from ai_factory.core.models import WorkItem
from ai_factory.core.secrets import (
    AGENT_CREDENTIALS,
    FACTORY_SECRETS,
    ORCHESTRATOR_SECRETS,
    WORKER_SECRETS,
)
from ai_factory.core.settings import Settings, load_settings
from ai_factory.orchestrator.spawners.base import (
    WorkerLaunch,
    container_env,
    worker_env,
    worker_secrets,
)
from ai_factory.worker import demo
from ai_factory.worker.agent.env import agent_env, sdk_env_overrides

SECRET_NAMES = sorted(FACTORY_SECRETS)


def _secret_settings() -> set[str]:
    return {
        name.upper()
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
    }


def test_every_secret_setting_is_classified() -> None:
    """A new secret setting has to say who may hold it, or the agent would inherit it."""
    assert _secret_settings() <= FACTORY_SECRETS | AGENT_CREDENTIALS
    assert {"DATABASE_URL", "REDIS_URL"} <= ORCHESTRATOR_SECRETS  # URLs with passwords
    assert {"WORKER_TOKEN", "GITHUB_TOKEN"} <= WORKER_SECRETS  # not settings, but secrets
    assert not ORCHESTRATOR_SECRETS & WORKER_SECRETS
    assert not FACTORY_SECRETS & AGENT_CREDENTIALS


@pytest.mark.parametrize("name", [*SECRET_NAMES, *(n.lower() for n in SECRET_NAMES)])
def test_no_factory_secret_reaches_the_agent(name: str) -> None:
    base = {"PATH": "/usr/bin", "ANTHROPIC_API_KEY": "agent-own-key", name: "the-secret"}

    env = agent_env(base)
    overrides = sdk_env_overrides(base)

    assert name not in env and "the-secret" not in env.values()
    assert overrides[name] == "", "the SDK merges its own environment: the secret is blanked"
    assert env["ANTHROPIC_API_KEY"] == "agent-own-key"  # the agent's own login passes


def _launch() -> WorkerLaunch:
    now = datetime.now(UTC)
    item = WorkItem(id=uuid.uuid4(), source="api", source_id="1", source_url="", repo="/r",
                    base_branch="main", spec="# S\n", priority="medium", status="running",
                    created_at=now, updated_at=now)  # fmt: skip
    return WorkerLaunch(worker_id=uuid.uuid4(), token=SecretStr("lease-token"), item=item,
                        orchestrator_url="http://127.0.0.1:3000")  # fmt: skip


def test_a_worker_gets_its_own_secrets_and_none_of_the_orchestrators(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(_env_file=None, factory_home=tmp_path, github_token="push-token")
    launch = _launch()
    for name in SECRET_NAMES:
        monkeypatch.setenv(name, f"orchestrators-{name}")

    for env in (worker_env(launch, settings=settings), container_env(launch, settings=settings)):
        # No secret at all in the environment (the agent could read it); its own come apart.
        assert not {k.upper() for k in env} & (ORCHESTRATOR_SECRETS | WORKER_SECRETS)
        assert not any(v.startswith("orchestrators-") for v in env.values())
    assert worker_secrets(launch, settings=settings) == {
        "WORKER_TOKEN": "lease-token", "GITHUB_TOKEN": "push-token"
    }


def test_the_demo_starts_its_factory_without_any_secret() -> None:
    assert FACTORY_SECRETS <= demo._DROPPED


def test_every_secret_setting_is_scrubbed_from_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    from ai_factory.core.logging import register_secret, scrub

    values = {name: f"value-of-{name.lower()}-{uuid.uuid4().hex[:8]}" for name in _secret_settings()}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert sorted(settings.secret_values()) == sorted(values.values())
    for secret in settings.secret_values():
        register_secret(secret)
    line = "; ".join(f"{name}={value}" for name, value in values.items())
    assert not any(value in scrub(line) for value in values.values())
