"""A worker's context: which learnings go into its prompt, within a token budget.

A worker is given its repository's learnings and the global ones, ranked against its
spec, until the next one would pass the budget (``LEARNINGS_BUDGET_TOKENS``). When all of
a scope's learnings fit, all go in, best match first: a fixed top five left out relevant
learnings the ranking put sixth, and a budget costs the same tokens whatever the count.

Tokens are estimated, not counted: Claude's tokenizer is not public, and English prose
and code run at about four characters a token. Each learning also costs its list bullet
and line break. The estimate only has to keep the prompt's size in check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from uuid import UUID

CHARS_PER_TOKEN = 4
LINE_TOKENS = 1  # "- " and the line break of each learning in the prompt
DEFAULT_BUDGET_TOKENS = 1500


def estimate_tokens(text: str) -> int:
    """About how many tokens `text` takes in a prompt."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def learning_tokens(chars: int) -> int:
    """The tokens one learning of `chars` characters adds to the prompt's list."""
    return math.ceil(chars / CHARS_PER_TOKEN) + LINE_TOKENS


def within_budget(
    ranked: Sequence[UUID], rest: Sequence[UUID], chars: dict[UUID, int], budget_tokens: int
) -> list[UUID]:
    """The learnings a worker gets: all of them when they fit `budget_tokens`, best ranked
    first; otherwise the ranked ones in order, each that still fits (a long one that does
    not is skipped for shorter ones after it), then the `rest` (unranked: they matched
    neither half of the search) the same way."""
    order = list(dict.fromkeys([*ranked, *rest]))
    order = [i for i in order if i in chars]
    if sum(learning_tokens(chars[i]) for i in order) <= budget_tokens:
        return order
    chosen: list[UUID] = []
    used = 0
    for learning_id in order:
        cost = learning_tokens(chars[learning_id])
        if used + cost <= budget_tokens:
            chosen.append(learning_id)
            used += cost
    return chosen
