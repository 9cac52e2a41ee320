"""Issue text is data: strip what a reader of the issue on GitHub cannot see.

A prompt-injection payload hides in an issue where the maintainer who labels it
will not notice it: HTML comments, zero-width and bidi characters, Unicode tag
characters, elements that hide their content, image alt text and link titles,
entities that decode to invisible characters. `sanitize` removes all of these
before the text reaches a prompt or a spec, and keeps everything visible.

Code (fenced blocks and inline code spans) is shown literally by GitHub, so tags
inside it are kept (a task may well say "Create `a.html` containing `<b>hi</b>`").
Invisible characters and HTML comments are removed everywhere, code included, and
hiding elements everywhere outside fenced blocks: losing a literal `<!-- -->` or
`<div hidden>..</div>` inside a code span is a small price for never letting
hidden text that contains a backtick through.
"""

from __future__ import annotations

import html
import re

# Zero-width, joiners, bidi controls, invisible separators and operators, the Hangul
# fillers, variation selectors, byte-order mark, interlinear annotations and the
# Unicode tag block (used for "ASCII smuggling"), plus C0/C1 controls except tab and newline.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff"
    "\uffa0\ufff0-\ufffb\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
_EMPTY_COMMENT = re.compile(r"<!---?>")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_OPEN_COMMENT = re.compile(r"<!--.*\Z", re.DOTALL)  # GitHub hides an unclosed one to the end
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HIDING_ELEMENT = re.compile(
    r"<(script|style|template|noscript|textarea|title|head|object|iframe)\b[^>]*>.*?</\1\s*>",
    re.DOTALL | re.IGNORECASE,
)
_HIDDEN_ATTRIBUTE = re.compile(
    r"<([A-Za-z][\w-]*)\b[^>]*?(?:\shidden\b|style\s*=\s*[\"'][^\"']*"
    r"(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0)"
    r")[^>]*>.*?</\1\s*>",
    re.DOTALL | re.IGNORECASE,
)
_TAG = re.compile(r"</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>|<![A-Za-z][^<>]*>|<\?.*?\?>", re.DOTALL)
_IMAGE_ALT = re.compile(r"!\[[^\]]*\]\(")
_LINK_TITLE = re.compile(r"(\]\(\s*<?[^\s()<>]+>?)\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\))\s*\)")
_REFERENCE_TITLE = re.compile(
    r"^( {0,3}\[[^\]]+\]:\s*\S+)\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\))\s*$", re.MULTILINE
)
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_BLANK_RUNS = re.compile(r"\n{3,}")


def sanitize(text: str | None) -> str:
    """The visible text of an issue title or body, safe to quote in a prompt."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _EMPTY_COMMENT.sub("", text)
    text = _COMMENT.sub("", text)
    text = _OPEN_COMMENT.sub("", text)
    parts = [part if code else _clean_prose(part) for part, code in _split_code(text)]
    text = "".join(parts)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _clean_prose(text: str) -> str:
    # Hiding elements go first, code spans inside them included: GitHub hides those too.
    text = _HIDING_ELEMENT.sub("", text)
    text = _HIDDEN_ATTRIBUTE.sub("", text)
    pieces = []
    last = 0
    for match in _CODE_SPAN.finditer(text):
        pieces.append(_clean_markup(text[last : match.start()]))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(_clean_markup(text[last:]))
    return "".join(pieces)


def _clean_markup(text: str) -> str:
    text = _TAG.sub("", text)
    text = _IMAGE_ALT.sub("![](", text)
    text = _LINK_TITLE.sub(r"\1)", text)
    text = _REFERENCE_TITLE.sub(r"\1", text)
    return _ENTITY.sub(_visible_entity, text)


def _visible_entity(match: re.Match[str]) -> str:
    decoded = html.unescape(match.group(0))
    return "" if decoded != match.group(0) and _INVISIBLE.fullmatch(decoded) else match.group(0)


def _split_code(text: str) -> list[tuple[str, bool]]:
    """(segment, is_fenced_code) pieces, in order; an unclosed fence runs to the end."""
    segments: list[tuple[str, bool]] = []
    prose: list[str] = []
    code: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            opened = _FENCE.match(line)
            if opened:
                segments.append(("".join(prose), False))
                prose = []
                fence = opened.group(1)
                code = [line + "\n"]
            else:
                prose.append(line + "\n")
        else:
            code.append(line + "\n")
            closing = _FENCE.match(line)
            if (
                closing
                and closing.group(1)[0] == fence[0]
                and len(closing.group(1)) >= len(fence)
                and not line.strip()[len(closing.group(1)) :].strip()
            ):
                segments.append(("".join(code), True))
                code = []
                fence = None
    if fence is not None:
        segments.append(("".join(code), True))
    segments.append(("".join(prose), False))
    joined = [(s, c) for s, c in segments if s]
    if joined and text and not text.endswith("\n"):  # undo the newline added to the last line
        last, is_code = joined[-1]
        joined[-1] = (last[:-1], is_code)
    return joined
