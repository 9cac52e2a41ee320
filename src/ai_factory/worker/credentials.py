"""The git credential helper that hands git the factory's GitHub token.

git runs it as ``python -I -m ai_factory.worker.credentials get`` (see
`ai_factory.worker.git`), with the token in the git process's environment
(`TOKEN_ENV`) and the one host it may be sent to (`HOST_ENV`). The token is
therefore never in a URL, an argv or a config file. It answers only `get`, only
for http(s) and only for that host, so a redirect or a rewritten remote cannot
carry the token elsewhere; `store` and `erase` are read and ignored.

This module must stay importable on its own (no imports from the rest of the
factory): it runs once per git request, in a fresh interpreter.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

TOKEN_ENV = "FACTORY_GIT_TOKEN"
HOST_ENV = "FACTORY_GIT_CREDENTIAL_HOST"
USERNAME = "x-access-token"
_PROTOCOLS = ("https", "http")


def read_request(stream: TextIO) -> dict[str, str]:
    """git's credential request: ``key=value`` lines up to a blank line or EOF."""
    request: dict[str, str] = {}
    for line in stream:
        line = line.rstrip("\n")
        if not line:
            break
        key, sep, value = line.partition("=")
        if sep:
            request[key] = value
    return request


def answer(operation: str, request: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """The fields to print for `operation`; empty when this helper has nothing to say."""
    token = env.get(TOKEN_ENV, "")
    allowed_host = env.get(HOST_ENV, "").lower()
    if operation != "get" or not token or not allowed_host or "\n" in token or "\0" in token:
        return {}
    if request.get("protocol", "").lower() not in _PROTOCOLS:
        return {}
    if request.get("host", "").lower() != allowed_host:
        return {}
    return {"username": USERNAME, "password": token}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    operation = args[-1] if args else ""
    request = read_request(sys.stdin)
    for key, value in answer(operation, request, os.environ).items():
        sys.stdout.write(f"{key}={value}\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
