"""The `factory` CLI as a user runs it: a subprocess talking to a real server."""

from pathlib import Path

import httpx
import pytest

from tests.support.cli import factory


def test_submit_status_show_cancel(cli_env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "SPEC.md"
    spec.write_text("# Greeting\n- [ ] Create `hello.py` containing `print('hi')`\n")
    submitted = factory("submit", "--repo", "https://git.example/srv/widgets.git", "--spec-file", str(spec), "--priority", "high", env=cli_env)
    assert submitted.returncode == 0, submitted.stderr
    item_id = submitted.stdout.strip()
    assert len(item_id) == 36

    status = factory("status", env=cli_env)
    assert status.returncode == 0 and "queued 1" in status.stdout

    queue = factory("queue", env=cli_env)
    assert item_id[:8] in queue.stdout and "Greeting" in queue.stdout

    show = factory("show", item_id, env=cli_env)
    assert show.returncode == 0
    assert "https://git.example/srv/widgets.git" in show.stdout and "Create `hello.py`" in show.stdout and "submitted" in show.stdout

    cancel = factory("cancel", item_id, env=cli_env)
    assert cancel.returncode == 0 and "cancelled" in cancel.stdout
    assert "queued -> cancelled" in factory("show", item_id, env=cli_env).stdout

    again = factory("cancel", item_id, env=cli_env)
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "cancelled" in again.stderr

    retry = factory("retry", item_id, env=cli_env)
    assert retry.returncode == 0 and "queued" in retry.stdout


def test_spec_from_stdin_and_json_output(cli_env: dict[str, str]) -> None:
    done = factory("submit", "--repo", "https://git.example/srv/x.git", "--spec", "-", "--json", env=cli_env, stdin="- [ ] one\n")
    assert done.returncode == 0, done.stderr
    assert '"spec": "- [ ] one\\n"' in done.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("show", "not-an-id"), "not found"),
        (("submit", "--repo", "https://git.example/srv/x.git", "--spec", "s", "--priority", "urgent"), "priority"),
        (("submit", "--repo", "https://git.example/srv/x.git"), "--spec-file"),
        (("submit", "--repo", "https://git.example/srv/x.git", "--spec-file", "/no/such/file"), "cannot read spec file"),
    ],
)
def test_mistakes_print_one_line_and_exit_non_zero(cli_env: dict[str, str], args, fragment: str) -> None:
    done = factory(*args, env=cli_env)
    assert done.returncode != 0
    assert fragment in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_unreachable_api_is_one_clear_line(tmp_path: Path) -> None:
    done = factory("status", env={"ORCHESTRATOR_URL": "http://127.0.0.1:9", "FACTORY_HOME": str(tmp_path)})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the factory at http://127.0.0.1:9" in lines[0]


def test_invalid_setting_stops_with_the_variable_named(tmp_path: Path) -> None:
    done = factory("status", env={"MAX_WORKERS": "abc", "FACTORY_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: MAX_WORKERS:")
    assert len(done.stderr.strip().splitlines()) == 1


def test_doctor_reports_each_check(tmp_path: Path) -> None:
    ready = {"FACTORY_HOME": str(tmp_path), "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-test"}
    done = factory("doctor", env={**ready, "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"})
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("python", "git", "claude", "user", "login", "gate", "identity", "home", "database", "redis", "github"):
        assert name in done.stdout
    broken = factory("doctor", env={**ready, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"})
    assert broken.returncode == 1 and "FAIL database" in broken.stdout


def test_markup_like_text_in_user_data_is_shown_as_is(cli_env: dict[str, str]) -> None:
    spec = "# Fix [/bold] and [red]colours[/red]\n- [ ] one\n"
    submitted = factory("submit", "--repo", "https://git.example/srv/[weird].git", "--spec", spec, env=cli_env)
    assert submitted.returncode == 0, submitted.stderr
    item_id = submitted.stdout.strip()
    for args in (("queue",), ("show", item_id), ("queue", "--all")):
        done = factory(*args, env=cli_env)
        assert done.returncode == 0, (args, done.stderr)
        assert "[/bold]" in done.stdout and "https://git.example/srv/[weird].git" in done.stdout


def test_submit_resolves_a_local_path_where_it_runs_and_refuses_bad_ones_in_one_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    from tests.support.repos import make_local_repo

    repo = make_local_repo(tmp_path / "projects" / "app")
    (repo / "sub").mkdir()
    done = factory("submit", "--repo", "..", "--spec", "- [ ] one", "--json", env=cli_env, cwd=repo / "sub")
    assert done.returncode == 0, done.stderr
    assert f'"repo": "{repo}"' in done.stdout  # not "..", resolved where the user typed it

    for args, words in (
        (("--repo", str(tmp_path / "nowhere"), "--spec", "- [ ] x"), "does not exist"),
        (("--repo", str(tmp_path), "--spec", "- [ ] x"), "not a git repository"),
        (("--repo", str(repo), "--spec", "no boxes here"), "no task checkboxes"),
        (("--repo", str(repo), "--spec", "- [ ] x", "--base-branch", "develop"), "no branch 'develop'"),
    ):
        bad = factory("submit", *args, env=cli_env)
        assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and words in bad.stderr, bad.stderr


def test_the_short_ids_the_cli_prints_are_accepted_and_an_ambiguous_one_says_so(
    cli_env: dict[str, str], api
) -> None:
    done = factory("submit", "--repo", "https://git.example/srv/x.git", "--spec", "- [ ] one", env=cli_env)
    item_id = done.stdout.strip()
    short = item_id[:8]
    assert short in factory("queue", env=cli_env).stdout
    show = factory("show", short, env=cli_env)
    assert show.returncode == 0 and item_id in show.stdout, show.stderr
    assert factory("cancel", item_id[:6], env=cli_env).returncode == 0
    assert factory("show", item_id[:5], env=cli_env).returncode == 1  # too short to be an id

    # Two ids sharing a prefix (made so): the prefix is refused as ambiguous.
    import psycopg

    with psycopg.connect(api.settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO work_items (id, source, source_id, repo, spec) VALUES"
            " ('abcdef00-0000-4000-8000-000000000001', 'api', 'p1', 'https://git.example/r.git', '- [ ] a'),"
            " ('abcdef00-0000-4000-8000-000000000002', 'api', 'p2', 'https://git.example/r.git', '- [ ] b')"
        )
    ambiguous = factory("show", "abcdef00", env=cli_env)
    assert ambiguous.returncode == 1 and "ambiguous" in ambiguous.stderr
    assert factory("show", "abcdef00-0000-4000-8000-00000000000", env=cli_env).returncode == 1
    assert "- [ ] b" in factory("show", "abcdef00-0000-4000-8000-000000000002", env=cli_env).stdout


def test_kill_takes_an_item_id_too(cli_env: dict[str, str], api) -> None:
    done = factory("submit", "--repo", "https://git.example/srv/x.git", "--spec", "- [ ] one", env=cli_env)
    item_id = done.stdout.strip()
    registered = httpx.post(f"{api.url}/api/worker/register", json={"workItemId": item_id}).json()
    killed = factory("kill", item_id[:8], env=cli_env)
    assert killed.returncode == 0 and registered["workerId"] in killed.stdout, killed.stderr
    assert '"failed"' in factory("show", item_id, "--json", env=cli_env).stdout
