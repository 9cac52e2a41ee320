"""The lock files install what pyproject.toml asks for, and pin a tested Claude Code.

`make up` installs requirements.txt and `make test` requirements-test.txt with
``--no-deps``: a dependency added to pyproject.toml but not locked would be missing at
run time, so these tests say to run `make lock`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ai_factory.worker.agent.versions import SDK_DIST, TESTED_CLI, in_range, sdk_range

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    assert "--hash=sha256:" in text, f"{lock} must carry hashes"
    return {canonicalize_name(name): version for name, version in _PIN.findall(text)}


def wanted(extra: str | None = None) -> list[Requirement]:
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    if extra:
        lines += project["optional-dependencies"][extra]
    env = default_environment()
    return [r for r in map(Requirement, lines) if r.marker is None or r.marker.evaluate(env)]


@pytest.mark.parametrize(("lock", "extra"), [("requirements.txt", None),
                                             ("requirements-test.txt", "test")])  # fmt: skip
def test_every_dependency_is_locked_at_a_version_it_accepts(lock: str, extra: str | None) -> None:
    locked = pins(lock)
    for requirement in wanted(extra):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{lock} pins {name}=={locked[name]}, outside {requirement.specifier}: run `make lock`"
        )


def test_the_test_lock_pins_the_runtime_lock_alike() -> None:
    runtime, test = pins("requirements.txt"), pins("requirements-test.txt")
    assert {n: v for n, v in test.items() if n in runtime} == runtime


def test_claude_agent_sdk_is_a_closed_range_and_the_lock_is_inside_it() -> None:
    (requirement,) = [r for r in PYPROJECT["project"]["dependencies"] if r.startswith(SDK_DIST)]
    low, high = sdk_range(requirement)
    assert in_range(pins("requirements.txt")[SDK_DIST], low, high)
    assert in_range(TESTED_CLI[0], *TESTED_CLI)


def test_an_open_range_is_refused() -> None:
    with pytest.raises(ValueError, match="closed range"):
        sdk_range("claude-agent-sdk>=0.1.0")
    assert sdk_range("claude-agent-sdk==0.2.189") == ("0.2.189", "0.2.189")
    assert in_range("2.1.332", "2.1.314", "2.1.332") and not in_range("2.1.333", "2.1.314", "2.1.332")
