"""The README's instructions for trying the factory without an account work as written:
its example spec is in the scripted model's task language, and its exports are the
scripted model's own environment."""

from __future__ import annotations

import re
from pathlib import Path

from ai_factory.sim import sim_env
from ai_factory.sim.tasks import TaskKind, parse_spec

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_example_spec_is_one_the_scripted_model_can_do() -> None:
    example = README.split("A spec is a Markdown task list", 1)[1].split("```markdown\n", 1)[1]
    spec = example.split("```", 1)[0]
    tasks = parse_spec(spec)
    assert len(tasks) == 3
    assert all(t.action.kind is not TaskKind.UNKNOWN for t in tasks), [t.text for t in tasks]
    assert tasks[0].action.path == "greet.py" and 'return f"Hello, {name}!"' in tasks[0].action.content


def test_the_scripted_model_exports_match_what_the_demo_gives_workers() -> None:
    section = README.split("### The whole factory on the scripted model", 1)[1].split("\n### ", 1)[0]
    exports = dict(re.findall(r"\b([A-Z_]+)=(\S*)", section.split("export ", 1)[1].split("factory up")[0]))
    expected = sim_env("http://127.0.0.1:8123")
    for name, value in exports.items():
        assert expected[name] == value, name
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "FACTORY_SCRIPTED_MODEL"):
        assert name in exports
    assert "python -m ai_factory.sim --port 8123" in section
