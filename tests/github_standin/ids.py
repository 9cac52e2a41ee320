"""Ids, node ids and timestamps shaped like GitHub's, shared by every part of the state."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

# Where each id sequence starts, so ids look like GitHub's and never collide across kinds.
ID_STARTS = {
    "user": 1_000_001,
    "repo": 700_000_001,
    "label": 5_000_000_001,
    "issue": 2_100_000_001,
    "pull": 1_800_000_001,
    "comment": 2_600_000_001,
    "event": 14_000_000_001,
    "edit": 9_100_000_001,
    "review": 2_400_000_001,
    "review_comment": 1_900_000_001,
    "thread": 3_300_000_001,
    "check_suite": 24_000_000_001,
    "check_run": 27_000_000_001,  # an Actions job has its check run's id
    "workflow": 90_000_001,
    "workflow_run": 11_000_000_001,
}
NODE_PREFIX = {
    "User": "U",
    "Bot": "BOT",
    "Organization": "O",
    "repo": "R",
    "label": "LA",
    "issue": "I",
    "pull": "PR",
    "comment": "IC",
    "labeled": "LE",
    "unlabeled": "UNLE",
    "closed": "CE",
    "reopened": "REE",
    "renamed": "RTE",
    "merged": "ME",
    "edit": "UCE",
    "review": "PRR",
    "review_comment": "PRRC",
    "thread": "PRRT",
    "check_suite": "CS",
    "check_run": "CR",
    "job": "CR",
    "workflow": "W",
    "workflow_run": "WFR",
    "app": "A",
}


def utcnow() -> datetime:
    """Now, to the second, as GitHub reports times."""
    return datetime.now(UTC).replace(microsecond=0)


def node_id(kind: str, number: int) -> str:
    packed = base64.urlsafe_b64encode(number.to_bytes(8, "big").lstrip(b"\0")).decode()
    return f"{NODE_PREFIX[kind]}_kwDO{packed.rstrip('=')}"
