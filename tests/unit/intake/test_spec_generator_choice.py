"""SPEC_GENERATOR picks the spec generator; the anthropic one needs a package `make up`
does not install (an extra), and says so in one line at start-up."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ai_factory.core.errors import ConfigError
from ai_factory.intake.spec_gen import (
    AnthropicSpecGenerator,
    ClaudeSpecGenerator,
    generator_from_settings,
)
from tests.support.settings import make_settings


def test_the_default_generator_is_claude_code(tmp_path: Path) -> None:
    assert isinstance(generator_from_settings(make_settings(tmp_path)), ClaudeSpecGenerator)


def test_the_anthropic_generator_without_its_package_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, spec_generator="anthropic", anthropic_api_key="sk-ant-test")
    assert isinstance(generator_from_settings(settings), AnthropicSpecGenerator)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "anthropic" else real(name, *a))  # fmt: skip
    with pytest.raises(ConfigError, match=r"pip install 'ai-factory\[anthropic\]'"):
        generator_from_settings(settings)
