"""GitHub's JSON for accounts, repositories, labels and rate limits.

Field sets follow docs.github.com's example responses (GitHub Enterprise URL
shapes: API under `/api/v3`, web pages at the host root) and validate against
githubkit's models for the endpoints the factory calls. Issues, pulls, comments
and events are in `issue_payloads`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .models import Issue, Label, Permission, Repo, User

Json = dict[str, Any]

_ROLE_ORDER = [Permission.READ, Permission.TRIAGE, Permission.WRITE, Permission.MAINTAIN,
               Permission.ADMIN]


@dataclass(frozen=True)
class Urls:
    """Where things live on a stand-in listening at `web` (e.g. http://127.0.0.1:PORT)."""

    web: str

    @property
    def api(self) -> str:
        return f"{self.web}/api/v3"

    def repo_api(self, repo: Repo) -> str:
        return f"{self.api}/repos/{repo.full_name}"

    def repo_web(self, repo: Repo) -> str:
        return f"{self.web}/{repo.full_name}"

    def clone(self, repo: Repo) -> str:
        return f"{self.web}/{repo.full_name}.git"

    def issue_web(self, repo: Repo, issue: Issue) -> str:
        kind = "pull" if issue.is_pull else "issues"
        return f"{self.repo_web(repo)}/{kind}/{issue.number}"


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def user(urls: Urls, who: User) -> Json:
    api = f"{urls.api}/users/{quote(who.login)}"
    html = (f"{urls.web}/apps/{quote(who.login.removesuffix('[bot]'))}" if who.type == "Bot"
            else f"{urls.web}/{who.login}")
    return {
        "login": who.login,
        "id": who.id,
        "node_id": who.node_id,
        "avatar_url": f"{urls.web}/avatars/u/{who.id}?",
        "gravatar_id": "",
        "url": api,
        "html_url": html,
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": who.type,
        "user_view_type": "public",
        "site_admin": False,
    }


def organization(urls: Urls, org: User) -> Json:
    """The short organization object webhooks carry."""
    api = f"{urls.api}/orgs/{org.login}"
    return {
        "login": org.login,
        "id": org.id,
        "node_id": org.node_id,
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": f"{urls.web}/avatars/u/{org.id}?",
        "description": None,
    }


def private_user(urls: Urls, who: User) -> Json:
    """`GET /user`: the authenticated user, with the private fields."""
    return {
        **user(urls, who),
        "name": who.name, "company": None, "blog": "", "location": None, "email": who.email,
        "hireable": None, "bio": None, "twitter_username": None, "notification_email": who.email,
        "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
        "created_at": ts(who.created_at), "updated_at": ts(who.created_at),
        "private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0,
        "disk_usage": 0, "collaborators": 0, "two_factor_authentication": True,
        "plan": {"name": "enterprise", "space": 976562499, "collaborators": 0,
                 "private_repos": 9999},
    }


def role_flags(role: Permission) -> Json:
    granted = set(_ROLE_ORDER[: _ROLE_ORDER.index(role) + 1]) if role in _ROLE_ORDER else set()
    return {
        "admin": Permission.ADMIN in granted,
        "maintain": Permission.MAINTAIN in granted,
        "push": Permission.WRITE in granted,
        "triage": Permission.TRIAGE in granted,
        "pull": Permission.READ in granted,
    }


def repository(urls: Urls, repo: Repo, *, role: Permission | None = None,
               open_issues: int = 0) -> Json:
    """`GET /repos/{owner}/{repo}`; `role` adds the caller's `permissions` block."""
    api = urls.repo_api(repo)
    host = urls.web.split("://", 1)[1].split(":")[0]
    body: Json = {
        "id": repo.id,
        "node_id": repo.node_id,
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": user(urls, repo.owner),
        "html_url": urls.repo_web(repo),
        "description": repo.description,
        "fork": False,
        "url": api,
        **{f"{name}_url": f"{api}/{name}" for name in (
            "forks", "teams", "hooks", "events", "tags", "languages", "stargazers",
            "contributors", "subscribers", "subscription", "merges", "downloads", "deployments",
        )},
        "issue_events_url": f"{api}/issues/events{{/number}}",
        "assignees_url": f"{api}/assignees{{/user}}",
        "branches_url": f"{api}/branches{{/branch}}",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "git_tags_url": f"{api}/git/tags{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "trees_url": f"{api}/git/trees{{/sha}}",
        "statuses_url": f"{api}/statuses/{{sha}}",
        "commits_url": f"{api}/commits{{/sha}}",
        "git_commits_url": f"{api}/git/commits{{/sha}}",
        "comments_url": f"{api}/comments{{/number}}",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}",
        "archive_url": f"{api}/{{archive_format}}{{/ref}}",
        "issues_url": f"{api}/issues{{/number}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "milestones_url": f"{api}/milestones{{/number}}",
        "notifications_url": f"{api}/notifications{{?since,all,participating}}",
        "labels_url": f"{api}/labels{{/name}}",
        "releases_url": f"{api}/releases{{/id}}",
        "collaborators_url": f"{api}/collaborators{{/collaborator}}",
        "keys_url": f"{api}/keys{{/key_id}}",
        "created_at": ts(repo.created_at),
        "updated_at": ts(repo.pushed_at),
        "pushed_at": ts(repo.pushed_at),
        "git_url": f"git://{host}/{repo.full_name}.git",
        "ssh_url": f"git@{host}:{repo.full_name}.git",
        "clone_url": urls.clone(repo),
        "svn_url": urls.repo_web(repo),
        "mirror_url": None,
        "homepage": None,
        "language": None,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "subscribers_count": 1,
        "network_count": 0,
        "forks_count": 0,
        "open_issues_count": open_issues,
        "forks": 0,
        "open_issues": open_issues,
        "watchers": 0,
        "default_branch": repo.default_branch,
        "has_issues": True,
        "has_projects": True,
        "has_downloads": True,
        "has_wiki": True,
        "has_pages": False,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "is_template": False,
        "visibility": "private" if repo.private else "public",
        "topics": [],
        "license": None,
        "allow_forking": True,
        "web_commit_signoff_required": False,
        "allow_squash_merge": True,
        "allow_merge_commit": True,
        "allow_rebase_merge": True,
        "allow_auto_merge": False,
        "delete_branch_on_merge": False,
    }
    if repo.owner.type == "Organization":
        body["organization"] = user(urls, repo.owner)
    if role is not None:
        body["permissions"] = role_flags(role)
    return body


def label(urls: Urls, repo: Repo, item: Label) -> Json:
    return {
        "id": item.id,
        "node_id": item.node_id,
        "url": f"{urls.repo_api(repo)}/labels/{quote(item.name, safe='')}",
        "name": item.name,
        "color": item.color,
        "default": item.default,
        "description": item.description,
        "archived_at": None,
        "archived_by": None,
    }


def collaborator_permission(urls: Urls, repo: Repo, who: User, role: Permission) -> Json:
    """`GET .../collaborators/{username}/permission`: maintain reads as write, triage as read."""
    return {
        "permission": role.legacy,
        "role_name": role.value,
        "user": {**user(urls, who), "permissions": role_flags(role), "role_name": role.value},
    }


def rate_limit(core: Json) -> Json:
    """`GET /rate_limit`: `core` is the live window, the other resources stay untouched."""
    reset = core["reset"]

    def fresh(limit: int) -> Json:
        return {"limit": limit, "used": 0, "remaining": limit, "reset": reset}

    resources = {
        "core": core, "search": fresh(30), "graphql": fresh(5000),
        "integration_manifest": fresh(5000), "source_import": fresh(100),
        "code_scanning_upload": fresh(1000), "actions_runner_registration": fresh(10000),
        "scim": fresh(15000), "dependency_snapshots": fresh(100), "code_search": fresh(10),
    }
    return {"resources": resources, "rate": core}
