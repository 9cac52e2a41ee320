"""Command line for the scripted model server: ``python -m ai_factory.sim``.

Prints the URL to put in ``ANTHROPIC_BASE_URL`` and serves until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from ai_factory.sim.scenario import Scenario, ScenarioName
from ai_factory.sim.server import SimServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ai_factory.sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--scenario", choices=[s.value for s in ScenarioName], default=ScenarioName.NORMAL.value
    )
    parser.add_argument(
        "--limit-after", type=int, default=0, help="usage_limit: requests served first"
    )
    parser.add_argument(
        "--reset-after", type=float, default=60.0, help="usage_limit: seconds to reset"
    )
    parser.add_argument(
        "--warn-utilization", type=float, default=0.8, help="usage_limit: warn from here"
    )
    parser.add_argument(
        "--window-requests", type=int, default=100, help="windows: main requests per window"
    )
    parser.add_argument("--window-s", type=float, default=60.0, help="windows: window length (s)")
    parser.add_argument("--overloaded", type=int, default=1, help="overloaded: 529s before success")
    parser.add_argument("--delay", type=float, default=5.0, help="slow: pause in each stream (s)")
    parser.add_argument(
        "--delay-phase", choices=["mid_stream", "before_headers"], default="mid_stream"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.verbose:
        logging.getLogger("ai_factory.sim").setLevel(logging.DEBUG)
    scenario = Scenario(
        name=ScenarioName(args.scenario),
        limit_after=args.limit_after,
        reset_after_s=args.reset_after,
        warn_utilization=args.warn_utilization,
        window_requests=args.window_requests,
        window_s=args.window_s,
        overloaded_count=args.overloaded,
        delay_s=args.delay,
        delay_phase=args.delay_phase,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SimServer(scenario=scenario, host=args.host, port=args.port) as server:
        print(server.url, flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
