"""Markdown to safe HTML for specs: CommonMark with raw HTML off, tables, task lists.

Raw HTML in a spec (``<script>``, ``<img onerror=...>``) is shown as text, and
markdown-it's link check drops ``javascript:`` and similar URLs. A list item that
starts with ``[ ]`` or ``[x]`` becomes a disabled checkbox, as GitHub shows it
(the only HTML added here is that fixed ``<input>`` element).
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup

_TASK = re.compile(r"^\[([ xX])\]\s+")
_CHECKED = '<input class="task" type="checkbox" disabled checked> '
_UNCHECKED = '<input class="task" type="checkbox" disabled> '


def _task_lists(state: StateCore) -> None:
    tokens = state.tokens
    for i in range(2, len(tokens)):
        inline = tokens[i]
        if (
            inline.type != "inline"
            or tokens[i - 1].type != "paragraph_open"
            or tokens[i - 2].type != "list_item_open"
            or not inline.children
        ):
            continue
        first = inline.children[0]
        match = _TASK.match(first.content) if first.type == "text" else None
        if match is None:
            continue
        first.content = first.content[match.end() :]
        box = Token("html_inline", "", 0)
        box.content = _UNCHECKED if match.group(1) == " " else _CHECKED
        inline.children.insert(0, box)
        tokens[i - 2].attrSet("class", "task-item")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.core.ruler.push("task_lists", _task_lists)
    return md


class MarkdownRenderer:
    """Renders user markdown (specs, issue text) to HTML that is safe to embed."""

    def __init__(self) -> None:
        self._md = _parser()

    def render(self, text: str) -> Markup:
        return Markup(self._md.render(text))
