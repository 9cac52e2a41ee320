"""Named SQL queries, loaded from the `.sql` files beside this module.

A file holds several queries, each introduced by a ``-- name: <query_name>``
line; everything up to the next marker is the query. Parameters use psycopg's
``%(name)s`` style. Only store modules run these.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_MARKER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def load_queries(group: str) -> dict[str, str]:
    """Return ``{name: sql}`` for ``queries/<group>.sql``."""
    text = resources.files(__package__).joinpath("queries", f"{group}.sql").read_text("utf-8")
    return split_queries(text, group=group)


def split_queries(text: str, *, group: str) -> dict[str, str]:
    """``{name: sql}`` of a text of ``-- name:``-marked queries; an empty one is an error."""
    parts = _MARKER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip()
        if not sql:
            raise ValueError(f"query {group}.{name} is empty")
        queries[name] = sql
    return queries
