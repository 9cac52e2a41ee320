"""Intake's errors, under the factory's root `FactoryError`.

GitHub's own refusals map onto the core types (401/403 `AuthError`, 404
`NotFoundError`, 422 `InvalidInputError`); these two cover what the core tree
has no word for.
"""

from __future__ import annotations

from ai_factory.core.errors import FactoryError


class GitHubUnavailableError(FactoryError):
    """GitHub did not answer usefully (5xx, timeouts, rate limits past our retries)."""


class SpecGenerationError(FactoryError):
    """The spec generator (Claude Code or the Anthropic API) failed to answer."""
