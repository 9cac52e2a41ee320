"""The worker's GitHub REST calls (pull requests), through githubkit, rate-limit aware.

`GitHubDeliveryClient` wraps the few calls delivery needs. Every call goes through one
retry loop whose decision is GitHub's rule as intake follows it too
(`ai_factory.core.github_retry.retry_delay`): a 403/429 waits for `retry-after`,
else until `x-ratelimit-reset`, else backs off; a 5xx or a network error backs
off; anything else fails at once. Waits longer than the policy allows fail
instead of stalling the worker. githubkit's own retries and
HTTP cache are off, so this is the only policy and every read is fresh.

Responses are read with `.json()`: githubkit's models are stricter than GitHub
is consistent. Errors are translated into `GitHubError`; the token is sent
only in the Authorization header and never appears in a message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from githubkit import GitHub
from githubkit.exception import RequestError, RequestFailed, RequestTimeout

from ai_factory.core.errors import FactoryError
from ai_factory.core.github_retry import retry_delay
from ai_factory.core.logging import scrub

log = logging.getLogger(__name__)

T = TypeVar("T")
HTTP_TIMEOUT_S = 30.0


class GitHubError(FactoryError):
    """A GitHub API call failed; `status` is the HTTP status (0 for a network error)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one GitHub call."""

    max_attempts: int = 5
    backoff_s: float = 5.0  # first back-off; doubles per attempt
    max_wait_s: float = 900.0  # a longer rate-limit wait fails instead


PER_PAGE = 100
MAX_PAGES = 20


class GitHubDeliveryClient:
    """Pull-request calls on one GitHub (or GitHub Enterprise) API."""

    def __init__(self, *, token: str, base_url: str, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._github = GitHub(token, base_url=base_url, auto_retry=False, http_cache=False,
                              timeout=HTTP_TIMEOUT_S)
        self._token = token
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def open_pull(self, owner: str, repo: str, *, branch: str) -> dict[str, Any] | None:
        """The open pull request whose head is `owner:branch`, if any."""
        pulls = self._call(
            f"list pull requests of {owner}/{repo}",
            lambda: self._github.rest.pulls.list(owner, repo, state="open",
                                                 head=f"{owner}:{branch}").json(),
        )
        return next((p for p in pulls if p.get("head", {}).get("ref") == branch), None)

    def create_pull(self, owner: str, repo: str, *, title: str, head: str, base: str,
                    body: str) -> dict[str, Any]:
        return self._call(
            f"open a pull request on {owner}/{repo}",
            lambda: self._github.rest.pulls.create(
                owner, repo, title=title, head=head, base=base, body=body).json(),
        )

    def update_pull_body(self, owner: str, repo: str, number: int, body: str) -> None:
        # Pull requests are issues: the issues endpoint edits their body too.
        self._call(f"update pull request #{number} on {owner}/{repo}",
                   lambda: self._github.rest.issues.update(owner, repo, number,
                                                           body=body).json())

    def review_comments(self, owner: str, repo: str, number: int) -> list[dict[str, Any]]:
        """Every review comment of pull request `number` (replies included)."""
        return self._pages(
            f"list review comments of {owner}/{repo}#{number}",
            lambda page: self._github.rest.pulls.list_review_comments(
                owner, repo, number, per_page=PER_PAGE, page=page).json(),
        )  # fmt: skip

    def reply(self, owner: str, repo: str, number: int, comment_id: int, body: str) -> None:
        """Answer in the thread of review comment `comment_id`."""
        self._call(
            f"reply to review comment {comment_id} on {owner}/{repo}#{number}",
            lambda: self._github.rest.pulls.create_reply_for_review_comment(
                owner, repo, number, comment_id, body=body).json(),
        )  # fmt: skip

    def issue_comments(self, owner: str, repo: str, number: int) -> list[dict[str, Any]]:
        return self._pages(
            f"list comments of {owner}/{repo}#{number}",
            lambda page: self._github.rest.issues.list_comments(
                owner, repo, number, per_page=PER_PAGE, page=page).json(),
        )  # fmt: skip

    def comment(self, owner: str, repo: str, number: int, body: str) -> None:
        self._call(
            f"comment on {owner}/{repo}#{number}",
            lambda: self._github.rest.issues.create_comment(owner, repo, number, body=body).json(),
        )

    def _pages(self, what: str, fetch: Callable[[int], list[Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            batch = self._call(what, lambda page=page: fetch(page))  # type: ignore[misc]
            found += [each for each in batch if isinstance(each, dict)]
            if len(batch) < PER_PAGE:
                break
        return found

    def _call(self, what: str, call: Callable[[], T]) -> T:
        policy = self._retry
        for attempt in range(policy.max_attempts):
            try:
                return call()
            except RequestFailed as exc:
                status, headers = exc.response.status_code, exc.response.headers
                message = self._message(exc)
            except (RequestTimeout, RequestError) as exc:
                status, headers, message = 0, {}, self._mask(str(exc)) or type(exc).__name__
            delay = retry_delay(status, headers, message,
                                attempt, backoff_s=policy.backoff_s,
                                server_backoff_s=policy.backoff_s)  # fmt: skip
            last = attempt == policy.max_attempts - 1
            if delay is None or last:
                suffix = f" (gave up after {attempt + 1} attempts)" if delay is not None else ""
                raise GitHubError(f"cannot {what}: {_status(status)}{message}{suffix}",
                                  status=status)
            if delay > policy.max_wait_s:
                raise GitHubError(f"cannot {what}: rate limited for {delay:.0f} s more"
                                  f" (more than {policy.max_wait_s:.0f} s)", status=status)
            log.warning("github.retry what=%r status=%s wait_s=%.1f attempt=%d", what, status,
                        delay, attempt + 1)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _message(self, exc: RequestFailed) -> str:
        try:
            data = exc.response.json()
        except ValueError:
            return self._mask(exc.response.text[:300])
        if not isinstance(data, dict):
            return ""
        parts = [str(data.get("message", ""))]
        for error in data.get("errors") or []:
            if isinstance(error, dict) and error.get("message"):
                parts.append(str(error["message"]))
        return self._mask("; ".join(p for p in parts if p))

    def _mask(self, text: str) -> str:
        return scrub(text.replace(self._token, "***"))


def _status(status: int) -> str:
    return f"HTTP {status}: " if status else ""
