"""What every command needs: settings read once, logging, and an API client.

Imported by every command module, so it imports nothing heavy itself: settings
(pydantic) and the client are loaded when a command asks for them, not when
`factory --help` lists the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ai_factory.cli.client import FactoryClient
    from ai_factory.core.settings import Settings


def settings_for_command(*, log: bool = False) -> Settings:
    from ai_factory.core.logging import configure_logging, register_secret
    from ai_factory.core.settings import load_settings

    settings = load_settings()
    for secret in settings.secret_values():
        register_secret(secret)
    if log:
        configure_logging(settings.log_level)
    return settings


def api_client(settings: Settings) -> FactoryClient:
    """A client for the API at ORCHESTRATOR_URL, or, when that is not set, at this
    machine's HOST and PORT (`Settings.api_url`)."""
    from ai_factory.cli.client import FactoryClient

    return FactoryClient(settings.api_url, token=settings.api_token)
