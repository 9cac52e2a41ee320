"""The GitHub REST client intake uses, on githubkit.

Owns every call intake makes to GitHub and the rules around them: requests go
one at a time through `_call`, which spaces writes (`write_pacing.WritePacer`), waits
out rate limits (`core.github_retry.retry_delay`) and turns githubkit's exceptions into the
factory's (`AuthError`, `NotFoundError`, `InvalidInputError`,
`GitHubUnavailableError`). The base URL is GITHUB_API_URL, so GitHub Enterprise
(`https://HOST/api/v3`) and the test stand-in work like github.com. The token
never appears in a log line or an error message.

One read goes through GraphQL, because REST cannot answer it: an issue's text with
every edit to it and who made it (`issue_text`).

githubkit's HTTP cache is off: intake reads issues, labels and comments to decide
whether to write, and a cached answer up to a minute old would make it write twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from githubkit import GitHub, Response
from githubkit.exception import GitHubException, RequestError, RequestFailed

from ai_factory.core.errors import (
    AuthError,
    ConfigError,
    FactoryError,
    InvalidInputError,
    NotFoundError,
)
from ai_factory.core.github_retry import (
    RATE_LIMIT_BACKOFF_S,
    SERVER_ERROR_BACKOFF_S,
    retry_delay,
)
from ai_factory.core.settings import Settings
from ai_factory.intake.errors import GitHubUnavailableError
from ai_factory.intake.github_pulls import PullRequestReads, split_repo, user_login
from ai_factory.intake.models import (
    Comment,
    ContentEdit,
    Issue,
    IssueText,
    LabelEvent,
    Permission,
    RepoInfo,
)
from ai_factory.intake.write_pacing import Sleep, WritePacer

log = logging.getLogger(__name__)

T = TypeVar("T")
PER_PAGE = 100
MAX_PAGES = 50  # 5,000 issues or events is plenty for one label or one issue
TIMEOUT_S = 30.0
USER_AGENT = "ai-factory-intake"
WRITE_ROLES = frozenset({"admin", "maintain", "write"})
# The issue's text and who changed it, in one answer, so the text read is the text checked.
# Body edits are `userContentEdits` (the first edit also lists the original, by its author);
# title edits are `RenamedTitleEvent`s. GitHub lists at most 100 of each.
ISSUE_TEXT_QUERY = """
query IssueText($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    issue(number: $number) {
      title
      body
      author { __typename login }
      lastEditedAt
      includesCreatedEdit
      userContentEdits(first: 100) {
        totalCount
        nodes { editedAt editor { __typename login } }
      }
      timelineItems(itemTypes: [RENAMED_TITLE_EVENT], last: 100) {
        totalCount
        nodes { ... on RenamedTitleEvent { createdAt actor { __typename login } } }
      }
    }
  }
}
"""


class GitHubIntakeClient(PullRequestReads):
    def __init__(
        self,
        *,
        token: str,
        base_url: str = "https://api.github.com",
        write_interval_s: float = 1.0,
        backoff_s: float = RATE_LIMIT_BACKOFF_S,
        server_backoff_s: float = SERVER_ERROR_BACKOFF_S,
        timeout_s: float = TIMEOUT_S,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._gh = GitHub(
            token,
            base_url=base_url,
            auto_retry=False,
            http_cache=False,
            timeout=timeout_s,
            user_agent=USER_AGENT,
        )
        self.base_url = base_url
        self._pacer = WritePacer(interval_s=write_interval_s, sleep=sleep)
        self._backoff_s = backoff_s
        self._server_backoff_s = server_backoff_s
        self._sleep = sleep
        self._login: str | None = None
        self._login_known = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubIntakeClient:
        if settings.github_token is None:
            raise ConfigError("GITHUB_TOKEN: required for GitHub intake")
        return cls(
            token=settings.github_token.get_secret_value(),
            base_url=settings.github_api_url,
            write_interval_s=settings.intake_write_interval_s,
        )

    # --- reads ---

    async def login(self) -> str | None:
        """The token's own login (None when the token cannot say, e.g. an App token)."""
        if not self._login_known:
            try:
                response = await self._call(
                    "read the token's user", self._gh.rest.users.async_get_authenticated
                )
                self._login = response.parsed_data.login
            except (AuthError, NotFoundError) as exc:
                log.warning("github.login_unknown error=%s", exc)
                self._login = None
            self._login_known = True
        return self._login

    async def repo(self, full_name: str) -> RepoInfo:
        owner, name = split_repo(full_name)
        response = await self._call(
            f"read repository {full_name}", lambda: self._gh.rest.repos.async_get(owner, name)
        )
        data = response.parsed_data
        return RepoInfo(
            full_name=data.full_name,
            clone_url=data.clone_url,
            html_url=data.html_url,
            default_branch=data.default_branch,
        )

    async def issues_with_label(
        self, full_name: str, label: str, *, state: str = "open"
    ) -> list[Issue]:
        """Issues (never pull requests) carrying `label`, oldest first."""
        owner, name = split_repo(full_name)
        raw = await self._all_pages(
            f"list issues of {full_name}",
            lambda page: self._gh.rest.issues.async_list_for_repo(
                owner,
                name,
                labels=label,
                state=state,
                sort="created",
                direction="asc",
                per_page=PER_PAGE,
                page=page,
            ),
        )
        return [_issue(full_name, item) for item in raw if "pull_request" not in item]

    async def issue(self, full_name: str, number: int) -> Issue | None:
        """The issue, or None when it does not exist or is a pull request."""
        owner, name = split_repo(full_name)
        try:
            response = await self._call(
                f"read issue {full_name}#{number}",
                lambda: self._gh.rest.issues.async_get(owner, name, number),
            )
        except NotFoundError:
            return None
        raw = response.json()
        return None if "pull_request" in raw else _issue(full_name, raw)

    async def label_events(self, full_name: str, number: int) -> list[LabelEvent]:
        """The issue's `labeled` events, oldest first.

        Read from the JSON: githubkit's union for this endpoint has no member for
        `closed`/`reopened` events, so `.parsed_data` fails on closed issues.
        """
        owner, name = split_repo(full_name)
        raw = await self._all_pages(
            f"list events of {full_name}#{number}",
            lambda page: self._gh.rest.issues.async_list_events(
                owner, name, number, per_page=PER_PAGE, page=page
            ),
        )
        events: list[LabelEvent] = []
        for item in raw:
            if item.get("event") != "labeled" or not isinstance(item.get("label"), dict):
                continue
            actor = item.get("actor") or {}
            login = str(actor.get("login") or "")
            events.append(
                LabelEvent(
                    id=int(item["id"]),
                    label=str(item["label"].get("name") or ""),
                    actor=login,
                    actor_is_bot=actor.get("type") == "Bot" or login.endswith("[bot]"),
                    created_at=datetime.fromisoformat(str(item["created_at"])),
                )
            )
        return events

    async def issue_text(self, full_name: str, number: int) -> IssueText:
        """The issue's title and body with every edit GitHub records to them (GraphQL)."""
        owner, name = split_repo(full_name)
        data = await self._call(
            f"read the text of {full_name}#{number}",
            lambda: self._gh.async_graphql(
                ISSUE_TEXT_QUERY, {"owner": owner, "name": name, "number": number}
            ),
        )
        issue = (data.get("repository") or {}).get("issue")
        if not isinstance(issue, dict):
            raise NotFoundError(f"GitHub: no issue {full_name}#{number}")
        return _issue_text(issue)

    async def permission(self, full_name: str, login: str) -> Permission:
        owner, name = split_repo(full_name)
        try:
            response = await self._call(
                f"read {login}'s permission on {full_name}",
                lambda: self._gh.rest.repos.async_get_collaborator_permission_level(
                    owner, name, login
                ),
            )
        except NotFoundError:  # not a collaborator (or no such user)
            return Permission(login=login, permission="none")
        data = response.parsed_data
        return Permission(login=login, permission=data.permission, role_name=data.role_name or "")

    async def comments(self, full_name: str, number: int) -> list[Comment]:
        owner, name = split_repo(full_name)
        raw = await self._all_pages(
            f"list comments of {full_name}#{number}",
            lambda page: self._gh.rest.issues.async_list_comments(
                owner, name, number, per_page=PER_PAGE, page=page
            ),
        )
        return [
            Comment(
                id=int(c["id"]),
                author=user_login(c),
                body=c.get("body") or "",
                author_is_bot=(c.get("user") or {}).get("type") == "Bot",
            )
            for c in raw
        ]

    # --- writes (paced) ---

    async def comment(self, full_name: str, number: int, body: str) -> None:
        owner, name = split_repo(full_name)
        await self._call(
            f"comment on {full_name}#{number}",
            lambda: self._gh.rest.issues.async_create_comment(owner, name, number, body=body),
            write=True,
        )
        log.info("github.commented repo=%s issue=%s", full_name, number)

    async def add_labels(self, full_name: str, number: int, labels: list[str]) -> None:
        owner, name = split_repo(full_name)
        await self._call(
            f"label {full_name}#{number}",
            lambda: self._gh.rest.issues.async_add_labels(
                owner, name, number, data={"labels": labels}
            ),
            write=True,
        )
        log.info("github.labelled repo=%s issue=%s labels=%s", full_name, number, ",".join(labels))

    async def remove_label(self, full_name: str, number: int, label: str) -> bool:
        """Remove `label`; False when the issue did not have it."""
        owner, name = split_repo(full_name)
        try:
            await self._call(
                f"unlabel {full_name}#{number}",
                lambda: self._gh.rest.issues.async_remove_label(owner, name, number, label),
                write=True,
            )
        except NotFoundError:
            return False
        log.info("github.unlabelled repo=%s issue=%s label=%s", full_name, number, label)
        return True

    # --- the one way out ---

    async def _all_pages(
        self, what: str, page_call: Callable[[int], Awaitable[Response[Any]]]
    ) -> list[dict[str, Any]]:
        """Every item of a paged list (`page_call(page)` asks for one page), up to MAX_PAGES."""
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            response = await self._call(what, lambda page=page: page_call(page))
            raw = response.json()
            found.extend(raw)
            if len(raw) < PER_PAGE:
                break
        return found

    async def _call(self, what: str, call: Callable[[], Awaitable[T]], *, write: bool = False) -> T:
        attempt = 0
        while True:
            try:
                if write:
                    async with self._pacer:
                        return await call()
                return await call()
            except RequestFailed as exc:
                response = exc.response
                status = response.status_code
                message = _message(response)
                delay = retry_delay(
                    status,
                    response.headers,
                    message,
                    attempt,
                    backoff_s=self._backoff_s,
                    server_backoff_s=self._server_backoff_s,
                )
                if delay is None:
                    raise _translate(what, status, message) from exc
                log.warning(
                    "github.retry what=%r status=%s wait_s=%.1f attempt=%d",
                    what,
                    status,
                    delay,
                    attempt + 1,
                )
            except RequestError as exc:  # timeouts and transport errors: status 0
                delay = retry_delay(0, {}, "", attempt, server_backoff_s=self._server_backoff_s)
                if delay is None:
                    raise GitHubUnavailableError(
                        f"GitHub did not answer: {what} ({type(exc.exc).__name__})"
                    ) from exc
                log.warning(
                    "github.retry what=%r error=%s wait_s=%.1f", what, type(exc.exc).__name__, delay
                )
            except GitHubException as exc:
                raise GitHubUnavailableError(
                    f"GitHub request failed: {what} ({type(exc).__name__})"
                ) from exc
            await self._sleep(delay)
            attempt += 1


def _issue(full_name: str, raw: dict[str, Any]) -> Issue:
    labels = tuple(
        str(label.get("name") if isinstance(label, dict) else label)
        for label in raw.get("labels") or []
    )
    return Issue(
        repo=full_name,
        number=int(raw["number"]),
        title=str(raw.get("title") or ""),
        body=str(raw.get("body") or ""),
        html_url=str(raw.get("html_url") or ""),
        state=str(raw.get("state") or "open"),
        labels=labels,
        author=user_login(raw),
    )


def _issue_text(raw: dict[str, Any]) -> IssueText:
    """GraphQL's issue as `IssueText`. Edits GitHub counts but did not list become edits by
    nobody known: at the last edit for the body, before the oldest listed for the title."""
    page = raw.get("userContentEdits") or {}
    nodes = [n for n in page.get("nodes") or [] if n]
    bodies = [_edit("body", n.get("editedAt"), n.get("editor")) for n in nodes]
    complete = len(nodes) >= (page.get("totalCount") or 0)
    author, _ = _login(raw.get("author"))
    if raw.get("includesCreatedEdit") and bodies and complete and author is not None:
        # The original is the author's entry at the earliest time. Dropping it is right even
        # on a tie within a second: it never hides an edit by anyone but the author.
        earliest = min(edit.at for edit in bodies)
        original = next((e for e in bodies if e.at == earliest and e.editor == author), None)
        if original is not None:
            bodies.remove(original)
    if not complete and raw.get("lastEditedAt"):
        bodies.append(_edit("body", raw["lastEditedAt"], None))
    timeline = raw.get("timelineItems") or {}
    events = [n for n in timeline.get("nodes") or [] if n and n.get("createdAt")]
    titles = [_edit("title", n["createdAt"], n.get("actor")) for n in events]
    if len(events) < (timeline.get("totalCount") or 0):
        oldest = min((edit.at for edit in titles), default=datetime.max.replace(tzinfo=UTC))
        titles.append(ContentEdit(part="title", at=oldest, editor=None))
    return IssueText(
        title=str(raw.get("title") or ""),
        body=str(raw.get("body") or ""),
        edits=tuple(sorted(bodies + titles, key=lambda edit: edit.at)),
    )


def _login(actor: Any) -> tuple[str | None, bool]:
    """A GraphQL actor's login as REST spells it (a Bot's lacks `[bot]` there), and is it a bot."""
    actor = actor if isinstance(actor, dict) else {}
    login = str(actor.get("login") or "") or None
    is_bot = actor.get("__typename") == "Bot"
    if login and is_bot and not login.endswith("[bot]"):
        login = f"{login}[bot]"
    return login, is_bot


def _edit(part: Literal["body", "title"], at: Any, actor: Any) -> ContentEdit:
    login, is_bot = _login(actor)
    return ContentEdit(
        part=part, at=datetime.fromisoformat(str(at)), editor=login, editor_is_bot=is_bot
    )


def _message(response: Response[Any]) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.raw_response.reason_phrase or ""
    return str(body.get("message") or "") if isinstance(body, dict) else ""


def _translate(what: str, status: int, message: str) -> FactoryError:
    detail = f"GitHub refused to {what} (HTTP {status}{': ' + message if message else ''})"
    if status == 401:
        return AuthError(
            f"GitHub rejected the token (HTTP 401) trying to {what}; is GITHUB_TOKEN right?"
        )
    if status == 403 or status == 429:
        if status == 429 or "rate limit" in message.lower():
            return GitHubUnavailableError(f"GitHub kept rate-limiting: {what} (HTTP {status})")
        return AuthError(detail)
    if status == 404:
        return NotFoundError(f"GitHub: not found trying to {what} (HTTP 404)")
    if status in (409, 422):
        return InvalidInputError(detail)
    return GitHubUnavailableError(detail)
