"""Factory settings, read once per process from the environment and `.env`.

The core names (DATABASE_URL, REDIS_URL, MAX_WORKERS, DAILY_BUDGET,
COOLDOWN_SECONDS, GITHUB_TOKEN, REPOS, INTAKE_LABEL, POLL_INTERVAL, PORT) and
their defaults are kept stable for those who set them
(docs/design.md#names-kept-from-the-original-specification). With no DATABASE_URL
the factory starts an embedded PostgreSQL, and with no REDIS_URL coordination runs
on PostgreSQL, so a first run needs nothing installed
(docs/design.md#defaults-that-need-nothing-installed).

`load_settings()` turns a validation failure into one `ConfigError` line that
names the variable, e.g. ``MAX_WORKERS: must be an integer (got 'abc')``.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ai_factory.core.errors import ConfigError

DEFAULT_FACTORY_HOME = Path("~/.ai-factory")
# As root the agent runs as FACTORY_AGENT_USER, which must reach FACTORY_HOME: not under /root.
ROOT_FACTORY_HOME = Path("/var/lib/ai-factory")


def default_factory_home() -> Path:
    return ROOT_FACTORY_HOME if os.geteuid() == 0 else DEFAULT_FACTORY_HOME
K8S_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"  # a Kubernetes object name (RFC 1123)
K8S_DEADLINE_SLACK_S = 6 * 3600  # set-up, delivery, and one wait for a usage-limit reset


def _named(old: str) -> AliasChoices:
    """A setting renamed to carry its unit (`<old>_seconds`); the old name still works."""
    return AliasChoices(f"{old}_seconds", old)


class Settings(BaseSettings):
    """Every knob of the factory. Field name == environment variable (upper case); a
    `validation_alias` adds the other names a setting is read from (POLL_INTERVAL, the
    names the timings had before they carried their unit)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    # --- database, capacity and budget, GitHub, API port ---
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = Field(default="factory", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    max_workers: int = Field(default=2, ge=0)
    daily_budget: int = Field(default=200, ge=0)
    cooldown_seconds: float = Field(default=60, ge=0)
    github_token: SecretStr | None = None
    repos: Annotated[list[str], NoDecode] = Field(default_factory=list)
    intake_label: str = "ai-factory"
    poll_interval_ms: int = Field(default=60000, ge=1000, validation_alias="poll_interval")
    port: int = Field(default=3000, ge=0, le=65535)

    # --- home, API address and token, worker liveness ---
    factory_home: Path = Field(default_factory=default_factory_home)
    # local repositories (paths) the factory may work on and push to: only under these
    # folders (comma-separated), never inside FACTORY_HOME (core.repos.LocalRepoPolicy)
    local_repo_roots: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [Path.home()])
    host: str = "127.0.0.1"
    orchestrator_url: str = "http://127.0.0.1:3000"
    factory_api_token: SecretStr | None = None
    # `factory up` refuses a HOST other than loopback without FACTORY_API_TOKEN (anyone who
    # reaches the port could queue work and run agents); 1 serves such an open factory anyway.
    factory_allow_open: bool = False
    # wrong tokens one client address may present within AUTH_FAILURE_WINDOW_SECONDS (counted
    # per secret: the API token, worker tokens) before its tries are answered 429 until the
    # window passes (orchestrator.api.auth_throttle)
    auth_failure_limit: int = Field(default=10, ge=1)
    auth_failure_window_seconds: float = Field(default=60, gt=0)
    heartbeat_timeout_seconds: float = Field(default=120, gt=0)
    heartbeat_interval_seconds: float = Field(default=30, gt=0, validation_alias=_named("heartbeat_interval"))
    max_attempts: int = Field(default=3, ge=1)
    log_level: str = "INFO"

    # runtime (scheduler, spawners, limits)
    factory_spawner: Literal["process", "bwrap", "docker", "kubernetes"] = "process"
    factory_worker_image: str = "factory-worker:latest"
    # kubernetes spawner: one batch/v1 Job per worker (orchestrator/spawners/kubernetes.py)
    factory_k8s_namespace: str = Field(default="default", pattern=K8S_NAME)
    factory_k8s_secret: str = Field(default="ai-factory", pattern=K8S_NAME)  # Claude credentials
    factory_k8s_service_account: str = Field(default="ai-factory-worker", pattern=K8S_NAME)
    factory_k8s_requests: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: {"cpu": "500m", "memory": "1Gi"}
    )
    factory_k8s_limits: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: {"cpu": "2", "memory": "4Gi"}
    )
    factory_k8s_home_claim: str | None = Field(default=None, pattern=K8S_NAME)  # else emptyDir
    factory_k8s_ttl_seconds: int = Field(default=600, ge=0)  # a finished Job stays this long
    # a worker's wall-clock cap (activeDeadlineSeconds); unset: derived, see k8s_deadline_seconds
    factory_k8s_deadline_seconds: int | None = Field(default=None, ge=1)
    factory_worker_command: str | None = None  # shell-style argv replacing `factory worker`
    factory_worker_mounts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    health_check_interval_seconds: float = Field(
        default=5, gt=0, validation_alias=_named("health_check_interval")
    )
    shutdown_grace_seconds: float = Field(default=30, ge=0)
    # a worker that could not be started gives its item back, attempt refunded, this long
    spawn_retry_seconds: float = Field(default=30, ge=0)
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=4096)
    factory_timezone: str | None = None
    daily_cost_budget_usd: float | None = Field(default=None, ge=0)
    monthly_cost_budget_usd: float | None = Field(default=None, ge=0)

    # worker
    factory_agent: Literal["claude", "command"] = "claude"
    factory_agent_command: str = "ralph run --headless --spec SPEC.md"
    # A worker running as root runs the agent (Claude Code, the agent command, the gate and
    # its git in the worktree) as this unprivileged user, created if missing; empty: as root
    # (worker/agent_user.py). Not used when the worker is not root.
    factory_agent_user: str = Field(
        default="factory-agent", pattern=r"^([a-z_][a-z0-9_-]{0,31})?$"
    )
    factory_test_command: str | None = None
    factory_model: str | None = None
    max_iterations: int = Field(default=20, ge=1)
    stuck_after: int = Field(default=3, ge=1)
    # spending caps: one agent run (Claude Code's max_budget_usd) and one attempt at an item
    # (reached: the item stops as stuck, its work pushed)
    max_iteration_cost_usd: float | None = Field(default=None, gt=0)
    max_item_cost_usd: float | None = Field(default=None, gt=0)
    # after a usage limit's announced reset, workers wait this much longer before a request
    limit_reset_margin_seconds: float = Field(default=60, ge=0)
    # once Claude warns that a window is close to its limit, one worker at a time sends requests
    limit_single_file: bool = True
    iteration_idle_timeout_seconds: float = Field(
        default=600, gt=0, validation_alias=_named("iteration_idle_timeout")
    )
    iteration_timeout_seconds: float = Field(
        default=3600, gt=0, validation_alias=_named("iteration_timeout")
    )
    gate_timeout_seconds: float = Field(default=600, gt=0, validation_alias=_named("gate_timeout"))

    # learnings: auto (WordLlama when installed, else hashing) | wordllama | hashing
    # | sentence-transformers:<local model>
    factory_embedder: str = "auto"
    # the learnings a worker gets, in (estimated) tokens; all of a repo's when they fit
    learnings_budget_tokens: int = Field(default=1500, ge=0, le=100_000)
    # cosine similarity from which a new learning is merged into one of its repo that says
    # the same; unset: chosen per embedder (core/learnings/store.py), 1: exact repeats only
    learnings_merge_similarity: float | None = Field(default=None, gt=0, le=1)

    # intake
    github_api_url: str = "https://api.github.com"
    github_webhook_secret: SecretStr | None = None
    trusted_bots: Annotated[list[str], NoDecode] = Field(default_factory=list)
    spec_generator: Literal["claude", "anthropic"] = "claude"
    # seconds between two GitHub writes (GitHub asks for >= 1 s), and the
    # key SPEC_GENERATOR=anthropic uses (the claude generator uses the subscription login)
    intake_write_interval_s: float = Field(default=1.0, ge=0)
    # follow-ups on the factory's own pull requests (intake/followups.py): the mention that
    # asks for one, at most this many rounds per pull request, and at most this many
    # attempts at fixing failing checks per pull request
    followup_handle: str = Field(default="@ai-factory", min_length=2, max_length=100)
    followup_max_rounds: int = Field(default=5, ge=0, le=100)
    followup_max_ci_fixes: int = Field(default=3, ge=0, le=100)
    anthropic_api_key: SecretStr | None = None

    @field_validator("repos", "trusted_bots", "factory_worker_mounts", "local_repo_roots",
                     mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("factory_k8s_requests", "factory_k8s_limits", mode="before")
    @classmethod
    def _split_resources(cls, value: object) -> object:
        # "cpu=500m,memory=1Gi" -> {"cpu": "500m", "memory": "1Gi"}; "" -> none
        if not isinstance(value, str):
            return value
        pairs = [part.strip() for part in value.split(",") if part.strip()]
        if not all("=" in pair for pair in pairs):
            raise ValueError("must be resource=quantity pairs, e.g. cpu=500m,memory=1Gi")
        return dict(pair.split("=", 1) for pair in pairs)

    @field_validator("repos")
    @classmethod
    def _repo_names(cls, value: list[str]) -> list[str]:
        # One spelling for every reader (polling, webhooks): owner/repo.
        return [normalise_repo(entry) for entry in value]

    @field_validator("factory_worker_command")
    @classmethod
    def _check_worker_command(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            if not shlex.split(value):
                return None
        except ValueError as exc:
            raise ValueError(f"must be a shell-style command line ({exc})") from None
        return value

    @field_validator("factory_worker_mounts")
    @classmethod
    def _check_mounts(cls, value: list[str]) -> list[str]:
        for mount in value:
            parts = mount.split(":")
            if len(parts) not in (2, 3) or not all(parts[:2]) or parts[2:] not in ([], ["ro"], ["rw"]):
                raise ValueError(f"{mount!r} is not host:container[:ro|rw]")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError("must be a postgresql:// URL")
        if not (parts.hostname or "host=" in parts.query or parts.path.strip("/")):
            raise ValueError("must name a host or a socket directory")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("orchestrator_url", "github_api_url")
    @classmethod
    def _check_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/")

    @field_validator("factory_home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("local_repo_roots")
    @classmethod
    def _absolute_roots(cls, value: list[Path]) -> list[Path]:
        roots = [root.expanduser() for root in value]
        for root in roots:
            if not root.is_absolute():
                raise ValueError(f"{str(root)!r} is not an absolute path")
        return roots

    @property
    def pg_data_dir(self) -> Path:
        return self.factory_home / "pg"

    @property
    def worker_command(self) -> list[str] | None:
        """FACTORY_WORKER_COMMAND as an argv list (None: the real `factory worker`)."""
        return shlex.split(self.factory_worker_command) if self.factory_worker_command else None

    @property
    def k8s_deadline_seconds(self) -> int:
        """A worker Job's activeDeadlineSeconds: FACTORY_K8S_DEADLINE_SECONDS, else every
        iteration and gate at its cap, plus set-up, delivery and one usage-limit wait."""
        if self.factory_k8s_deadline_seconds is not None:
            return self.factory_k8s_deadline_seconds
        per_iteration = self.iteration_timeout_seconds + self.gate_timeout_seconds
        return int(self.max_iterations * per_iteration + K8S_DEADLINE_SLACK_S)

    @property
    def api_url(self) -> str:
        """Where this machine's factory API is: ORCHESTRATOR_URL when it is set, otherwise
        HOST and PORT (a wildcard bind address becomes loopback), so one `.env` with
        PORT=8080 serves `factory up` and the CLI alike."""
        if "orchestrator_url" in self.model_fields_set:
            return self.orchestrator_url
        host = self.host.strip("[]")
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def api_token(self) -> str | None:
        return self.factory_api_token.get_secret_value() if self.factory_api_token else None

    def secret_values(self) -> list[str]:
        """Every secret setting's value (to register with `core.logging.register_secret`)."""
        return [
            value.get_secret_value()
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr)
        ]


_REPO_PREFIX = re.compile(r"^(?:https?://[^/]+/|git@[^:]+:)")


def normalise_repo(entry: str) -> str:
    """`owner/repo` from `owner/repo`, a GitHub URL or an ssh remote (as REPOS may name it)."""
    name = _REPO_PREFIX.sub("", entry.strip()).strip("/")
    return name.removesuffix(".git")


def _describe(error: dict) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ())) or "settings"
    message = error.get("msg", "invalid value")
    message = message.removeprefix("Value error, ")
    value = error.get("input")
    shown = f" (got {value!r})" if isinstance(value, (str, int, float)) and value != "" else ""
    return f"{loc.upper()}: {message}{shown}"


def load_settings(**overrides: object) -> Settings:
    """Read settings once; raise `ConfigError` with one line naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0])) from None
