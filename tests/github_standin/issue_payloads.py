"""GitHub's JSON for issues, pull requests and their comments and events.

Issues and pulls share numbers (a pull is an issue with `pull_request`); the
pull itself comes in two shapes, `PullRequestSimple` in lists and the full
`PullRequest` alone. Same conventions as `payloads`.
"""

from __future__ import annotations

from .models import Comment, Issue, IssueEvent, Permission, Repo, User
from .payloads import Json, Urls, label, repository, ts, user


def author_association(repo: Repo, who: User) -> str:
    if who.login.lower() == repo.owner.login.lower():
        return "OWNER"
    role = repo.roles.get(who.login.lower(), Permission.NONE)
    return "COLLABORATOR" if role is not Permission.NONE else "NONE"


def reactions(url: str) -> Json:
    kinds = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")
    counts = dict.fromkeys(kinds, 0)
    return {"url": f"{url}/reactions", "total_count": 0, **counts}


def issue(urls: Urls, repo: Repo, item: Issue) -> Json:
    api = f"{urls.repo_api(repo)}/issues/{item.number}"
    body: Json = {
        "url": api,
        "repository_url": urls.repo_api(repo),
        "labels_url": f"{api}/labels{{/name}}",
        "comments_url": f"{api}/comments",
        "events_url": f"{api}/events",
        "html_url": urls.issue_web(repo, item),
        "id": item.id,
        "node_id": item.node_id,
        "number": item.number,
        "title": item.title,
        "user": user(urls, item.user),
        "labels": [label(urls, repo, each) for each in item.labels],
        "state": item.state,
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": len(item.comments),
        "created_at": ts(item.created_at),
        "updated_at": ts(item.updated_at),
        "closed_at": ts(item.closed_at),
        "author_association": author_association(repo, item.user),
        "type": None,
        "active_lock_reason": None,
        "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
        "body": item.body,
        "closed_by": user(urls, item.closed_by) if item.closed_by else None,
        "reactions": reactions(api),
        "timeline_url": f"{api}/timeline",
        "performed_via_github_app": None,
        "state_reason": item.state_reason,
    }
    if item.pull is not None:
        web = urls.issue_web(repo, item)
        body["draft"] = item.pull.draft
        body["pull_request"] = {
            "url": f"{urls.repo_api(repo)}/pulls/{item.number}",
            "html_url": web,
            "diff_url": f"{web}.diff",
            "patch_url": f"{web}.patch",
            "merged_at": ts(item.pull.merged_at),
        }
    return body


def comment(urls: Urls, repo: Repo, item: Comment, parent: Issue) -> Json:
    url = f"{urls.repo_api(repo)}/issues/comments/{item.id}"
    return {
        "url": url,
        "html_url": f"{urls.issue_web(repo, parent)}#issuecomment-{item.id}",
        "issue_url": f"{urls.repo_api(repo)}/issues/{parent.number}",
        "id": item.id,
        "node_id": item.node_id,
        "user": user(urls, item.user),
        "created_at": ts(item.created_at),
        "updated_at": ts(item.updated_at),
        "author_association": author_association(repo, item.user),
        "body": item.body,
        "reactions": reactions(url),
        "performed_via_github_app": None,
    }


def event(urls: Urls, repo: Repo, item: IssueEvent) -> Json:
    body: Json = {
        "id": item.id,
        "node_id": item.node_id,
        "url": f"{urls.repo_api(repo)}/issues/events/{item.id}",
        "actor": user(urls, item.actor),
        "event": item.event,
        "commit_id": item.commit_id,
        "commit_url": (f"{urls.repo_api(repo)}/commits/{item.commit_id}" if item.commit_id
                       else None),
        "created_at": ts(item.created_at),
        "performed_via_github_app": None,
    }
    if item.label is not None:
        body["label"] = {"name": item.label.name, "color": item.label.color}
    if item.event == "closed":
        body["state_reason"] = item.state_reason
    if item.rename is not None:
        body["rename"] = {"from": item.rename[0], "to": item.rename[1]}
    return body


def _branch(urls: Urls, repo: Repo, owner: User, ref: str, sha: str) -> Json:
    return {
        "label": f"{owner.login}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user(urls, owner),
        "repo": repository(urls, repo),
    }


def pull(urls: Urls, repo: Repo, item: Issue, *, full: bool, head_owner: User,
         mergeable: bool | None = None, mergeable_state: str = "unknown") -> Json:
    """A pull request: `PullRequestSimple` in lists, `PullRequest` (`full`) alone.

    `mergeable`/`mergeable_state` are what the state computed for this read.
    """
    assert item.pull is not None
    pr = item.pull
    api = f"{urls.repo_api(repo)}/pulls/{item.number}"
    issue_api = f"{urls.repo_api(repo)}/issues/{item.number}"
    web = urls.issue_web(repo, item)
    links = {
        "self": api, "html": web, "issue": issue_api, "comments": f"{issue_api}/comments",
        "review_comments": f"{api}/comments",
        "review_comment": f"{urls.repo_api(repo)}/pulls/comments{{/number}}",
        "commits": f"{api}/commits", "statuses": f"{urls.repo_api(repo)}/statuses/{pr.head_sha}",
    }
    body: Json = {
        "url": api,
        "id": pr.id,
        "node_id": pr.node_id,
        "html_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "issue_url": issue_api,
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "number": item.number,
        "state": item.state,
        "locked": False,
        "title": item.title,
        "user": user(urls, item.user),
        "body": item.body,
        "labels": [label(urls, repo, each) for each in item.labels],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": ts(item.created_at),
        "updated_at": ts(item.updated_at),
        "closed_at": ts(item.closed_at),
        "merged_at": ts(pr.merged_at),
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": _branch(urls, repo, head_owner, pr.head_ref, pr.head_sha),
        "base": _branch(urls, repo, repo.owner, pr.base_ref, pr.base_sha),
        "_links": {name: {"href": href} for name, href in links.items()},
        "author_association": author_association(repo, item.user),
        "auto_merge": None,
        "draft": pr.draft,
    }
    if full:
        body.update({
            "merged": pr.merged_at is not None,
            "mergeable": mergeable,
            "rebaseable": mergeable,
            "mergeable_state": mergeable_state,
            "merged_by": user(urls, pr.merged_by) if pr.merged_by else None,
            "comments": len(item.comments),
            "review_comments": len(pr.review_comments),
            "maintainer_can_modify": pr.maintainer_can_modify,
            "commits": pr.commits,
            "additions": pr.additions,
            "deletions": pr.deletions,
            "changed_files": pr.changed_files,
        })
    return body
