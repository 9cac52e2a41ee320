"""The learnings search string and file format; the agent's environment."""

from __future__ import annotations

from pathlib import Path

from ai_factory.worker.agent.env import agent_env, sdk_env_overrides
from ai_factory.worker.learnings import collect_new_learnings, render, search_text


def test_search_text_is_the_title_and_tasks_trimmed() -> None:
    spec = (
        "# Add login\n\nLong prose " + "blah " * 500 + "\n- [ ] Create `login.py`\n- [x] Done one\n"
    )

    text = search_text(spec)

    assert text.startswith("Add login Create `login.py` Done one")
    assert "blah" not in text and len(text) <= 500


def test_search_text_of_a_huge_task_list_is_cut_at_a_word() -> None:
    spec = "# T\n" + "".join(f"- [ ] task number {i}\n" for i in range(200))

    text = search_text(spec)

    assert len(text) <= 500 and text.split()[-1].isalnum()


def test_new_learnings_are_bullet_lines_deduplicated(tmp_path: Path) -> None:
    (tmp_path / ".ai").mkdir()
    (tmp_path / ".ai" / "new-learnings.md").write_text(
        "# New learnings\n- use `uv run pytest`\n* [pin the node version]\nnot a bullet\n"
        "- use `uv run pytest`\n-   \n"
    )

    assert collect_new_learnings(tmp_path) == ["use `uv run pytest`", "pin the node version"]
    assert collect_new_learnings(tmp_path / "nowhere") == []


def test_render_uses_the_reference_format() -> None:
    assert render(["a", "b"]) == "# Relevant Learnings from Previous Work\n\n- a\n- b\n"
    assert render([]) == "# No previous learnings found for this task\n"


BASE = {
    "PATH": "/usr/bin", "HOME": "/home/w", "ANTHROPIC_BASE_URL": "http://proxy",
    "CLAUDE_CODE_OAUTH_TOKEN": "oat", "HTTPS_PROXY": "http://p:3128", "CLAUDECODE": "1",
    "WORKER_TOKEN": "secret", "FACTORY_API_TOKEN": "admin", "GITHUB_TOKEN": "ghp", "WORK_ITEM": "{}",
}  # fmt: skip


def test_agent_env_passes_the_users_environment_minus_factory_secrets() -> None:
    env = agent_env(BASE)

    assert env["ANTHROPIC_BASE_URL"] == "http://proxy" and env["CLAUDE_CODE_OAUTH_TOKEN"] == "oat"
    assert env["HTTPS_PROXY"] == "http://p:3128" and env["PATH"] == "/usr/bin"
    for hidden in ("CLAUDECODE", "WORKER_TOKEN", "FACTORY_API_TOKEN", "GITHUB_TOKEN", "WORK_ITEM"):
        assert hidden not in env
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "2"


def test_sdk_overrides_blank_the_hidden_ones_and_cap_retries() -> None:
    overrides = sdk_env_overrides({**BASE, "CLAUDE_CODE_MAX_RETRIES": "10"})

    assert overrides == {
        "WORKER_TOKEN": "", "FACTORY_API_TOKEN": "", "GITHUB_TOKEN": "", "WORK_ITEM": "",
        "CLAUDE_CODE_MAX_RETRIES": "4",
    }  # fmt: skip
    assert sdk_env_overrides({"CLAUDE_CODE_MAX_RETRIES": "0"}) == {"CLAUDE_CODE_MAX_RETRIES": "0"}
