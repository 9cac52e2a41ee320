"""Chromium for the browser tests: where it is, how it is started, the viewports, and
where screenshots go."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot: to docs/screenshots with UPDATE_SCREENSHOTS=1, else to a temp folder
    (so an ordinary test run leaves the work tree clean)."""
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else _scratch()
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


def _scratch() -> Path:
    return Path(tempfile.gettempdir()) / "factory-dashboard-screenshots"
