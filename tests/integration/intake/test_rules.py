"""How GitHub's refusals reach `GitHubIntakeClient`'s caller, against the stand-in.

Intake's pure rules (sanitizing, limits, webhook decisions, specs, markers) are in
tests/unit/intake/test_rules.py.
"""

from __future__ import annotations

import logging

import pytest

from ai_factory.core.errors import AuthError, NotFoundError
from ai_factory.intake.github import GitHubIntakeClient
from tests.github_standin import GitHubStandin
from tests.support.intake_rig import REPO


async def test_a_wrong_token_is_an_auth_error_that_never_shows_the_token(
    standin: GitHubStandin, caplog: pytest.LogCaptureFixture
) -> None:
    token = "ghp_" + "wrong" * 7  # built here: no token-shaped literal in the tree
    client = GitHubIntakeClient(token=token, base_url=standin.api_url)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as refused:
        await client.repo(REPO)
    assert token not in str(refused.value)
    assert token not in caplog.text
    good = GitHubIntakeClient(token=standin.token, base_url=standin.api_url)
    with pytest.raises(NotFoundError):
        await good.repo("acme/missing")


async def test_429_without_retry_after_backs_off_then_succeeds(standin: GitHubStandin) -> None:
    standin.faults.too_many_requests(2, retry_after_s=None)
    client = GitHubIntakeClient(token=standin.token, base_url=standin.api_url, backoff_s=0.05)
    assert (await client.repo(REPO)).clone_url == standin.git_url(REPO)
    assert [r.status for r in standin.requests] == [429, 429, 200]
