"""A scripted Anthropic Messages API that plays the model for tests and the demo.

The real ``claude`` binary runs against it (``ANTHROPIC_BASE_URL=<url>``, any
``ANTHROPIC_API_KEY``); the server streams ``tool_use`` blocks that Claude Code
really executes. Nothing reaches the internet.

In-process::

    with SimServer(scenario=Scenario(name=ScenarioName.NORMAL)) as sim:
        env = sim_env(sim.url)           # for ClaudeAgentOptions(env=...)
        ...
        sim.set_scenario(Scenario(name=ScenarioName.USAGE_LIMIT, limit_after=2))
        sim.main_requests                 # what the agent loop asked

Command line: ``python -m ai_factory.sim --port 8123 --scenario normal``
prints the URL and serves until interrupted.

Modules: `tasks` (the SPEC.md task language), `agent` (the agent protocol the
model follows), `scenario` (scenarios and their parameters, HTTP errors and
rate-limit headers), `conversation` (reading a request), `wire` (the Messages
API format), `server` (HTTP app and `SimServer`), `env` (the CLI environment).
"""

from ai_factory.sim.env import sim_env
from ai_factory.sim.scenario import Scenario, ScenarioName, WindowRecord
from ai_factory.sim.server import RequestRecord, SimServer

__all__ = ["RequestRecord", "Scenario", "ScenarioName", "SimServer", "WindowRecord", "sim_env"]
