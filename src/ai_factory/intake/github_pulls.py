"""The pull-request reads of intake's GitHub client (follow-ups on the factory's own PRs).

A mixin of `github.GitHubIntakeClient`, so every call goes through the same `_call`
(pacing, rate limits, error translation). JSON is read from the responses rather
than githubkit's models, as elsewhere in the client, so that fields GitHub adds or
omits do not break intake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from ai_factory.core.errors import InvalidInputError, NotFoundError
from ai_factory.intake.models import CheckRun, PullInfo, Review, ReviewComment

T = TypeVar("T")


class _Client(Protocol):
    """What the mixin uses of `github.GitHubIntakeClient`."""

    _gh: Any

    async def _call(self, what: str, call: Callable[[], Awaitable[T]], *, write: bool = False) -> T: ...

    async def _all_pages(
        self, what: str, fetch: Callable[[int], Awaitable[Any]]
    ) -> list[dict[str, Any]]: ...

PER_PAGE = 100
MAX_LOG_BYTES = 2_000_000  # a job log is read for its tail: more than enough
REVIEW_THREADS_QUERY = """
query ReviewThreads($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100) {
        nodes { isResolved comments(first: 100) { nodes { databaseId } } }
      }
    }
  }
}
"""


class PullRequestReads:
    async def pull(self: _Client, full_name: str, number: int) -> PullInfo | None:
        owner, name = split_repo(full_name)
        try:
            response = await self._call(
                f"read pull request {full_name}#{number}",
                lambda: self._gh.rest.pulls.async_get(owner, name, number),
            )
        except NotFoundError:
            return None
        return _pull(response.json())

    async def open_pulls(self: _Client, full_name: str) -> list[PullInfo]:
        owner, name = split_repo(full_name)
        raw = await self._all_pages(
            f"list pull requests of {full_name}",
            lambda page: self._gh.rest.pulls.async_list(
                owner, name, state="open", per_page=PER_PAGE, page=page
            ),
        )
        return [_pull(each) for each in raw]

    async def reviews(self: _Client, full_name: str, number: int) -> list[Review]:
        owner, name = split_repo(full_name)
        raw = await self._all_pages(
            f"list reviews of {full_name}#{number}",
            lambda page: self._gh.rest.pulls.async_list_reviews(
                owner, name, number, per_page=PER_PAGE, page=page
            ),
        )
        return [
            Review(id=int(r["id"]), author=user_login(r), author_is_bot=_is_bot(r),
                   state=str(r.get("state") or ""), body=r.get("body") or "",
                   commit_id=str(r.get("commit_id") or ""))
            for r in raw
        ]  # fmt: skip

    async def review_comments(
        self: _Client, full_name: str, number: int
    ) -> list[ReviewComment]:
        owner, name = split_repo(full_name)
        raw = await self._all_pages(
            f"list review comments of {full_name}#{number}",
            lambda page: self._gh.rest.pulls.async_list_review_comments(
                owner, name, number, per_page=PER_PAGE, page=page
            ),
        )
        return [
            ReviewComment(
                id=int(c["id"]), author=user_login(c), author_is_bot=_is_bot(c),
                body=c.get("body") or "", path=str(c.get("path") or ""),
                line=c.get("line") or c.get("original_line"),
                in_reply_to=c.get("in_reply_to_id"),
                review_id=c.get("pull_request_review_id"),
            )
            for c in raw
        ]  # fmt: skip

    async def resolved_comments(
        self: _Client, full_name: str, number: int
    ) -> set[int]:
        """Ids of review comments in threads a reviewer marked resolved (GraphQL)."""
        owner, name = split_repo(full_name)
        data = await self._call(
            f"read the review threads of {full_name}#{number}",
            lambda: self._gh.async_graphql(
                REVIEW_THREADS_QUERY, {"owner": owner, "name": name, "number": number}
            ),
        )
        pull = ((data.get("repository") or {}).get("pullRequest")) or {}
        resolved: set[int] = set()
        for thread in (pull.get("reviewThreads") or {}).get("nodes") or []:
            if thread.get("isResolved"):
                for comment in (thread.get("comments") or {}).get("nodes") or []:
                    if isinstance(comment.get("databaseId"), int):
                        resolved.add(comment["databaseId"])
        return resolved

    async def check_runs(self: _Client, full_name: str, ref: str) -> list[CheckRun]:
        """The latest check run of each name on `ref` (a sha or a branch)."""
        owner, name = split_repo(full_name)
        response = await self._call(
            f"list check runs of {full_name}@{ref[:12]}",
            lambda: self._gh.rest.checks.async_list_for_ref(
                owner, name, ref, filter_="latest", per_page=PER_PAGE
            ),
        )
        runs = response.json().get("check_runs") or []
        return [
            CheckRun(
                id=int(r["id"]), name=str(r.get("name") or ""), status=str(r.get("status") or ""),
                conclusion=r.get("conclusion"), head_sha=str(r.get("head_sha") or ""),
                title=str((r.get("output") or {}).get("title") or ""),
                summary=str((r.get("output") or {}).get("summary") or ""),
                text=str((r.get("output") or {}).get("text") or ""),
            )
            for r in runs
        ]  # fmt: skip

    async def job_log(self: _Client, full_name: str, job_id: int) -> str | None:
        """An Actions job's log (GitHub answers with a redirect to it), or None."""
        owner, name = split_repo(full_name)
        try:
            response = await self._call(
                f"read the log of job {job_id} of {full_name}",
                lambda: self._gh.rest.actions.async_download_job_logs_for_workflow_run(
                    owner, name, job_id
                ),
            )
        except NotFoundError:
            return None
        return response.content[-MAX_LOG_BYTES:].decode("utf-8", errors="replace")


def split_repo(full_name: str) -> tuple[str, str]:
    owner, _, name = full_name.strip().strip("/").partition("/")
    if not owner or not name or "/" in name:
        raise InvalidInputError(f"{full_name!r} is not an owner/repo name")
    return owner, name


def user_login(raw: dict[str, Any]) -> str:
    """The login of a REST object's `user` ("" when GitHub gives none)."""
    return str((raw.get("user") or {}).get("login") or "")


def _is_bot(raw: dict[str, Any]) -> bool:
    user = raw.get("user") or {}
    return user.get("type") == "Bot" or str(user.get("login") or "").endswith("[bot]")


def _pull(raw: dict[str, Any]) -> PullInfo:
    head, base = raw.get("head") or {}, raw.get("base") or {}
    return PullInfo(
        number=int(raw["number"]),
        html_url=str(raw.get("html_url") or ""),
        state=str(raw.get("state") or ""),
        merged=bool(raw.get("merged") or raw.get("merged_at")),
        head_ref=str(head.get("ref") or ""),
        head_sha=str(head.get("sha") or ""),
        base_ref=str(base.get("ref") or ""),
        base_sha=str(base.get("sha") or ""),
        mergeable=raw.get("mergeable"),
        mergeable_state=raw.get("mergeable_state"),
        author=user_login(raw),
    )
