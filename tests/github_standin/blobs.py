"""Signed, short-lived download URLs on the stand-in, like the blob storage GitHub uses.

`GET .../actions/jobs/{job_id}/logs` answers 302 to `job_log_url(...)`; the server
serves it without authentication while the signature holds and the minute lasts
(403 after, as blob storage does).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import parse_qs

LINK_TTL_S = 60
BLOB_PREFIX = "/_blobs/actions-results/"
_JOB_LOG = re.compile(r"^/_blobs/actions-results/(?P<repo>\d+)/jobs/(?P<job>\d+)/logs\.txt$")


def _sign(key: bytes, path: str, expiry: int) -> str:
    return hmac.new(key, f"{path}\n{expiry}".encode(), hashlib.sha256).hexdigest()


def job_log_url(key: bytes, web: str, repo_id: int, job_id: int, *,
                ttl_s: int = LINK_TTL_S) -> str:
    path = f"{BLOB_PREFIX}{repo_id}/jobs/{job_id}/logs.txt"
    expiry = int(time.time()) + ttl_s
    return f"{web}{path}?sv=2021-12-02&se={expiry}&sp=r&sig={_sign(key, path, expiry)}"


def job_log_target(key: bytes, path: str, query: str) -> tuple[int, int] | None:
    """(repo id, job id) a valid, unexpired URL names; None when it does not hold."""
    found = _JOB_LOG.match(path)
    args = parse_qs(query)
    try:
        expiry = int(args["se"][-1])
        signature = args["sig"][-1]
    except (KeyError, ValueError, IndexError):
        return None
    if not found or expiry < time.time():
        return None
    if not hmac.compare_digest(signature, _sign(key, path, expiry)):
        return None
    return int(found["repo"]), int(found["job"])
