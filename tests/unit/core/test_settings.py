import os
from pathlib import Path

import pytest

from ai_factory.core.errors import ConfigError
from ai_factory.core.settings import load_settings


def settings_from_env(monkeypatch: pytest.MonkeyPatch, **env: str):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings(_env_file=None)


def test_reference_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAX_WORKERS", "DAILY_BUDGET", "COOLDOWN_SECONDS", "INTAKE_LABEL", "POLL_INTERVAL", "PORT"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings(_env_file=None)
    assert (s.max_workers, s.daily_budget, s.cooldown_seconds) == (2, 200, 60)
    assert (s.intake_label, s.poll_interval_ms, s.port) == ("ai-factory", 60000, 3000)
    # As root the agent's own user must reach it, so not under /root.
    home = Path("/var/lib/ai-factory") if os.geteuid() == 0 else Path("~/.ai-factory").expanduser()
    assert s.factory_home == home


def test_max_workers_zero_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from_env(monkeypatch, MAX_WORKERS="0").max_workers == 0


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MAX_WORKERS", "abc", "MAX_WORKERS: "),
        ("DATABASE_URL", "mysql://localhost/x", "DATABASE_URL: must be a postgresql:// URL"),
        ("DATABASE_URL", "not a url", "DATABASE_URL: "),
        ("REDIS_URL", "http://localhost", "REDIS_URL: must be a redis:// URL"),
        ("PORT", "70000", "PORT: "),
        ("FACTORY_SPAWNER", "vm", "FACTORY_SPAWNER: "),
    ],
)
def test_invalid_values_name_the_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_env(monkeypatch, **{name: value})
    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from_env(monkeypatch, REPOS="acme/a, acme/b,,", TRUSTED_BOTS="renovate[bot]")
    assert s.repos == ["acme/a", "acme/b"]
    assert s.trusted_bots == ["renovate[bot]"]


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAX_WORKERS", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("MAX_WORKERS=7\nFACTORY_API_TOKEN=s3cret-token\n")
    s = load_settings(_env_file=env_file)
    assert s.max_workers == 7
    assert s.api_token == "s3cret-token"
    assert "s3cret-token" not in repr(s)


def test_socket_database_url_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://postgres:@/factory?host=/tmp/pg"
    assert settings_from_env(monkeypatch, DATABASE_URL=url).database_url == url


def test_timings_carry_their_unit_and_the_older_names_still_work(monkeypatch) -> None:
    from ai_factory.core.settings import load_settings

    monkeypatch.setenv("HEARTBEAT_INTERVAL", "7")
    monkeypatch.setenv("GATE_TIMEOUT_SECONDS", "9")
    monkeypatch.setenv("GATE_TIMEOUT", "99")  # the new name wins
    monkeypatch.setenv("POLL_INTERVAL", "5000")
    settings = load_settings(_env_file=None)
    assert settings.heartbeat_interval_seconds == 7
    assert settings.gate_timeout_seconds == 9
    assert settings.poll_interval_ms == 5000
