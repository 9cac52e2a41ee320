"""Pull requests after they open: pushes, mergeability, merging, reviews and their threads.

A mixin of `StandinState` (same lock, ids and users). What GitHub does, kept here:

- a push to an open pull's head branch moves `head.sha` (the old one is kept for the
  `synchronize` webhook's `before`); a push to its base branch moves `base.sha`;
- mergeability comes from the real repository (`git merge-tree --write-tree`): "dirty"
  on conflicts, else "draft", "unstable" (a check run on the head failed or is still
  running) or "clean". It is computed lazily, like GitHub's background job: with
  `lazy_mergeable`, the first read after the head or base moved answers
  `mergeable: null, mergeable_state: "unknown"` and the next read has the answer;
- merging makes a merge commit of head into base (committer GitHub), then `merged` and
  `closed` events;
- a review is submitted on the current head; its comments each start a thread; a
  single review comment (or reply) is a review of its own (state COMMENTED, empty
  body), as GitHub records it; a reply to a reply joins the same thread, and
  `in_reply_to_id` always names the thread's first comment;
- a review comment follows the head while its file does not change; when a push changes
  the file it is outdated (`line`/`position` null, `commit_id` left behind).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import git_repos
from .errors import ApiError
from .ids import node_id, utcnow
from .models import Issue, Repo, Review, ReviewComment, ReviewThread, User

REVIEW_STATES = ("COMMENTED", "CHANGES_REQUESTED", "APPROVED")
DOCS_REVIEW_COMMENTS = "https://docs.github.com/rest/pulls/comments"
# A check run whose latest conclusion is one of these does not make a pull "unstable".
PASSING = ("success", "neutral", "skipped")


class PullState:
    # Provided by StandinState.
    lock: threading.RLock
    lazy_mergeable: bool
    next_id: Callable[[str], int]
    user: Callable[..., User]
    _event: Callable[..., None]
    set_state: Callable[..., None]
    head_checks_pass: Callable[[Repo, str], bool]

    # -- pushes -------------------------------------------------------------------------

    def refresh_pulls(self, repo: Repo) -> None:
        """Follow pushes: open pulls take their branches' new tips (GitHub's `synchronize`)."""
        with self.lock:
            tips = git_repos.branches(repo.path)
            for issue in repo.issues.values():
                pull = issue.pull
                if pull is None or issue.state != "open":
                    continue
                head, base = tips.get(pull.head_ref), tips.get(pull.base_ref)
                moved = False
                if head and head != pull.head_sha:
                    pull.previous_head_sha, pull.head_sha = pull.head_sha, head
                    self._follow_comments(repo, issue)
                    moved = True
                if base and base != pull.base_sha:
                    pull.base_sha = base
                    moved = True
                if moved:
                    comparison = git_repos.compare(repo.path, pull.base_sha, pull.head_sha)
                    if comparison is not None:
                        pull.commits = comparison.commits
                        pull.additions = comparison.additions
                        pull.deletions = comparison.deletions
                        pull.changed_files = comparison.changed_files
                    issue.updated_at = utcnow()

    def _follow_comments(self, repo: Repo, issue: Issue) -> None:
        """Move live comments to the new head; outdate those whose file changed."""
        assert issue.pull is not None
        head = issue.pull.head_sha
        for comment in issue.pull.review_comments:
            if comment.outdated:
                continue
            before = git_repos.blob_id(repo.path, comment.commit_id, comment.path)
            if before == git_repos.blob_id(repo.path, head, comment.path):
                spot = git_repos.diff_spot(repo.path, issue.pull.base_sha, head, comment.path,
                                           comment.line)
                comment.commit_id = head
                comment.position = spot.position if spot else comment.position
            else:
                comment.outdated = True
                comment.line = None
                comment.position = None

    # -- mergeability and merging --------------------------------------------------------

    def mergeability(self, repo: Repo, issue: Issue, *, settle: bool = False,
                     peek: bool = False) -> tuple[bool | None, str]:
        """(`mergeable`, `mergeable_state`) as a read of the pull sees them now.

        `settle` computes a pending answer at once (the tests' control API); `peek`
        reports only an answer already computed, starting nothing (webhook bodies).
        """
        with self.lock:
            pull = issue.pull
            assert pull is not None
            if issue.state != "open":
                return None, "unknown"
            key = (pull.head_sha, pull.base_sha)
            if pull.checked != key:
                if peek:
                    return None, "unknown"
                if self.lazy_mergeable and not settle and pull.requested != key:
                    pull.requested = key  # GitHub starts its background job
                    return None, "unknown"
                pull.conflicts = git_repos.conflicts(repo.path, pull.base_sha, pull.head_sha)
                pull.checked = key
            if pull.conflicts:
                return False, "dirty"
            if pull.draft:
                return True, "draft"
            if not self.head_checks_pass(repo, pull.head_sha):
                return True, "unstable"
            return True, "clean"

    def merge_pull(self, repo: Repo, issue: Issue, *, actor: str) -> str:
        """Merge the pull's head into its base with a merge commit; return its sha."""
        with self.lock:
            pull = issue.pull
            assert pull is not None
            if issue.state != "open":
                raise ApiError(405, "Pull Request is not mergeable",
                               "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request")
            self.refresh_pulls(repo)
            merger = self.user(actor)
            message = (f"Merge pull request #{issue.number} from"
                       f" {pull.head_owner}/{pull.head_ref}\n\n{issue.title}")
            try:
                sha = git_repos.merge(repo.path, pull.base_ref, pull.head_sha, message,
                                      author=(merger.login, _noreply(merger)))
            except ValueError as exc:
                raise ApiError(405, "Pull Request is not mergeable",
                               "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"
                               ) from exc
            now = utcnow()
            pull.merged_at, pull.merged_by, pull.merge_commit_sha = now, merger, sha
            self._event(issue, "merged", actor, commit_id=sha)
            self.set_state(issue, "closed", actor=actor, commit_id=sha)
            repo.pushed_at = now
            self.refresh_pulls(repo)  # the base moved under the other pulls
            return sha

    # -- reviews ------------------------------------------------------------------------

    def add_review(self, repo: Repo, issue: Issue, *, actor: str, state: str, body: str,
                   comments: Iterable[Mapping[str, Any]] = ()) -> Review:
        """Submit a review on the pull's current head; each comment starts a thread."""
        with self.lock:
            pull = issue.pull
            if pull is None:
                raise ApiError.not_found()
            if state not in REVIEW_STATES:
                raise ValueError(f"review state must be one of {REVIEW_STATES}, not {state!r}")
            reviewer = self.user(actor)
            if state != "COMMENTED" and reviewer.login.lower() == issue.user.login.lower():
                what = "approve" if state == "APPROVED" else "request changes on"
                raise ApiError.validation({"resource": "PullRequestReview", "code": "custom",
                                           "message": f"Can not {what} your own pull request"})
            if state != "APPROVED" and not body and not comments:
                raise ApiError.validation({"resource": "PullRequestReview", "field": "body",
                                           "code": "missing_field"})
            spots = [self._spot(repo, issue, str(c["path"]), c.get("line")) for c in comments]
            review = self._review(issue, reviewer, state, body)
            for comment, spot in zip(comments, spots, strict=True):
                self._comment(issue, review, reviewer, str(comment["body"]),
                              str(comment["path"]), comment.get("line"), spot)
            return review

    def add_review_comment(self, repo: Repo, issue: Issue, *, actor: str, body: str,
                           path: str | None = None, line: int | None = None,
                           in_reply_to: int | None = None) -> ReviewComment:
        """One review comment on the head (a review of its own), or a reply in a thread."""
        with self.lock:
            pull = issue.pull
            if pull is None:
                raise ApiError.not_found()
            if not body:
                raise ApiError.validation({"resource": "PullRequestReviewComment",
                                           "field": "body", "code": "missing_field"})
            author = self.user(actor)
            if in_reply_to is not None:
                parent = self.review_comment(issue, in_reply_to)
                thread = self.thread_of(issue, parent.id)
                root = self.review_comment(issue, thread.comment_ids[0])
                review = self._review(issue, author, "COMMENTED", "")
                return self._reply(issue, review, author, body, root, thread)
            if not path:
                raise ApiError.validation({"resource": "PullRequestReviewComment",
                                           "field": "path", "code": "missing_field"})
            spot = self._spot(repo, issue, path, line)
            review = self._review(issue, author, "COMMENTED", "")
            return self._comment(issue, review, author, body, path, line, spot)

    def review_comment(self, issue: Issue, comment_id: int) -> ReviewComment:
        assert issue.pull is not None
        for comment in issue.pull.review_comments:
            if comment.id == comment_id:
                return comment
        raise ApiError.not_found()

    def thread_of(self, issue: Issue, comment_id: int) -> ReviewThread:
        assert issue.pull is not None
        for thread in issue.pull.threads:
            if comment_id in thread.comment_ids:
                return thread
        raise ApiError.not_found()

    def resolve_thread(self, issue: Issue, comment_id: int, *, actor: str | None,
                       resolved: bool = True) -> ReviewThread:
        with self.lock:
            if issue.pull is None:
                raise ApiError.not_found()
            thread = self.thread_of(issue, comment_id)
            thread.is_resolved = resolved
            thread.resolved_by = self.user(actor) if resolved and actor else None
            return thread

    def _spot(self, repo: Repo, issue: Issue, path: str,
              line: int | None) -> git_repos.DiffSpot:
        assert issue.pull is not None
        spot = git_repos.diff_spot(repo.path, issue.pull.base_sha, issue.pull.head_sha, path,
                                   line)
        if spot is None:
            where = f"line {line} of {path}" if line is not None else path
            raise ApiError.validation(
                {"resource": "PullRequestReviewComment", "code": "custom",
                 "field": "pull_request_review_thread.line",
                 "message": f"could not be resolved ({where} is not part of the diff)"},
                documentation_url=f"{DOCS_REVIEW_COMMENTS}#create-a-review-comment-for-a-pull-request",
            )
        return spot

    def _review(self, issue: Issue, reviewer: User, state: str, body: str) -> Review:
        assert issue.pull is not None
        rid = self.next_id("review")
        review = Review(id=rid, node_id=node_id("review", rid), pull_number=issue.number,
                        user=reviewer, body=body, state=state, commit_id=issue.pull.head_sha,
                        submitted_at=utcnow())
        issue.pull.reviews.append(review)
        issue.updated_at = review.submitted_at
        return review

    def _comment(self, issue: Issue, review: Review, author: User, body: str, path: str,
                 line: int | None, spot: git_repos.DiffSpot) -> ReviewComment:
        assert issue.pull is not None
        tid = self.next_id("thread")
        thread = ReviewThread(id=tid, node_id=node_id("thread", tid), pull_number=issue.number)
        issue.pull.threads.append(thread)
        head = issue.pull.head_sha
        return self._store(issue, thread, ReviewComment(
            id=0, node_id="", pull_number=issue.number, review_id=review.id, thread_id=tid,
            user=author, body=body, path=path, line=line, original_line=line,
            position=spot.position, original_position=spot.position, commit_id=head,
            original_commit_id=head, diff_hunk=spot.diff_hunk,
            subject_type="line" if line is not None else "file",
            created_at=review.submitted_at, updated_at=review.submitted_at,
        ))

    def _reply(self, issue: Issue, review: Review, author: User, body: str,
               root: ReviewComment, thread: ReviewThread) -> ReviewComment:
        return self._store(issue, thread, ReviewComment(
            id=0, node_id="", pull_number=issue.number, review_id=review.id,
            thread_id=thread.id, user=author, body=body, path=root.path, line=root.line,
            original_line=root.original_line, position=root.position,
            original_position=root.original_position, commit_id=root.commit_id,
            original_commit_id=root.original_commit_id, diff_hunk=root.diff_hunk,
            subject_type=root.subject_type, created_at=review.submitted_at,
            updated_at=review.submitted_at, in_reply_to_id=root.id,
        ))

    def _store(self, issue: Issue, thread: ReviewThread,
               comment: ReviewComment) -> ReviewComment:
        assert issue.pull is not None
        comment.id = self.next_id("review_comment")
        comment.node_id = node_id("review_comment", comment.id)
        issue.pull.review_comments.append(comment)
        thread.comment_ids.append(comment.id)
        return comment


def _noreply(who: User) -> str:
    return f"{who.id}+{who.login}@users.noreply.github.com"
