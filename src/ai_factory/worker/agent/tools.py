"""Which tool calls edit files, and the file each one names (no SDK import needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})


def edited_path(tool_input: dict[str, Any]) -> str | None:
    """The file an edit tool call names (``file_path``, or ``notebook_path``)."""
    value = tool_input.get("file_path") or tool_input.get("notebook_path")
    return value if isinstance(value, str) and value else None


def repo_relative(path: str, root: Path) -> str:
    """`path` relative to the workspace root when inside it, else as given."""
    candidate = Path(path) if os.path.isabs(path) else root / path
    try:
        resolved = Path(os.path.realpath(candidate))
        return resolved.relative_to(Path(os.path.realpath(root))).as_posix()
    except ValueError:
        return path
