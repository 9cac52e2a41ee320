"""Which Claude Code the factory was tested with, and which one is installed.

Owns: the tested range. pyproject.toml pins ``claude-agent-sdk`` to a closed range
(``>=LOW,<=HIGH``); the SDK bundles the CLI, so the range of CLIs is the two CLIs those
wheels carry (`TESTED_CLI`). `.ci/sdk-range` runs the e2e worker tests against both
bounds and checks that each wheel bundles the CLI named here; `factory doctor` warns
when the installed SDK or the CLI the worker would run lies outside. Moving the range:
change pyproject.toml and TESTED_CLI together, `make lock`, and run `.ci/sdk-range`.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from importlib import metadata
from pathlib import Path

SDK_DIST = "claude-agent-sdk"
TESTED_CLI = ("2.1.314", "2.1.332")  # bundled in the lowest and highest SDK of the range
_BOUND = re.compile(r"(>=|<=|==)\s*([0-9][0-9A-Za-z.]*)")


def installed_cli() -> Path | None:
    """The Claude Code binary workers run, as the SDK picks it: the one inside
    claude-agent-sdk's package (found without importing the SDK, which is slow), else
    `claude` on PATH."""
    spec = importlib.util.find_spec("claude_agent_sdk")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "_bundled" / "claude"
        if bundled.is_file():
            return bundled
    found = shutil.which("claude")
    return Path(found) if found else None


def version_key(version: str) -> tuple[int, ...]:
    """'2.1.332' -> (2, 1, 332); anything after the numbers is ignored."""
    numbers = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(n) for n in numbers.group(1).split(".")) if numbers else ()


def sdk_range(requirement: str | None = None) -> tuple[str, str]:
    """The (lowest, highest) claude-agent-sdk the package requires; both must be named."""
    if requirement is None:
        requirement = next(
            (r for r in metadata.requires("ai-factory") or [] if _dist_name(r) == SDK_DIST), ""
        )
    bounds = {op: value for op, value in _BOUND.findall(requirement)}
    low = bounds.get(">=") or bounds.get("==")
    high = bounds.get("<=") or bounds.get("==")
    if not low or not high:
        raise ValueError(f"{SDK_DIST} must be pinned to a closed range, got {requirement!r}")
    return low, high


def installed_sdk() -> str | None:
    try:
        return metadata.version(SDK_DIST)
    except metadata.PackageNotFoundError:
        return None


def in_range(version: str, low: str, high: str) -> bool:
    return version_key(low) <= version_key(version) <= version_key(high)


def _dist_name(requirement: str) -> str:
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return name.group(1).lower().replace("_", "-") if name else ""
