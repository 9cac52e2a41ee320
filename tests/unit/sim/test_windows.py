"""The scripted model's subscription windows (`ai_factory.sim.scenario`, scenario ``windows``)."""

from __future__ import annotations

from ai_factory.sim.scenario import Gatekeeper, Scenario, ScenarioName


def test_each_window_serves_its_requests_then_refuses_until_it_closes() -> None:
    now = [1000.0]
    gate = Gatekeeper(
        Scenario(name=ScenarioName.WINDOWS, window_requests=2, window_s=10), clock=lambda: now[0]
    )

    first = [gate.admit(main=True) for _ in range(2)]
    now[0] = 1001.0
    refused = gate.admit(main=True)
    now[0] = 1001.5
    late = gate.admit(main=True)
    now[0] = 1010.0  # the first window closed: a new one opens with this request
    again = gate.admit(main=True)

    assert [v.status for v in first] == [200, 200] and again.status == 200
    assert refused.status == late.status == 429
    assert refused.headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert refused.headers["anthropic-ratelimit-unified-reset"] == "1010"
    assert refused.headers["retry-after"] == "9"
    one, two = gate.windows
    assert (one.served, one.refused, one.first_refused_at, one.after_refusal) == (2, 2, 1001.0, 1)
    assert one.late_s == [0.5]
    assert (two.opened_at, two.closes_at, two.served, two.refused) == (1010.0, 1020.0, 1, 0)
