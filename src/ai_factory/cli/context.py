"""What every command needs: settings read once, logging, and an API client."""

from __future__ import annotations

from ai_factory.cli.client import FactoryClient
from ai_factory.core.logging import configure_logging, register_secret
from ai_factory.core.settings import Settings, load_settings


def settings_for_command(*, log: bool = False) -> Settings:
    settings = load_settings()
    for secret in settings.secret_values():
        register_secret(secret)
    if log:
        configure_logging(settings.log_level)
    return settings


def api_client(settings: Settings) -> FactoryClient:
    return FactoryClient(settings.orchestrator_url, token=settings.api_token)
