"""Follow-ups without I/O: which webhooks ask to look at a pull request, and the spec."""

from ai_factory.core.spec import parse_task_list
from ai_factory.intake import followup_specs as texts
from ai_factory.intake.labels import IntakeLabels
from ai_factory.intake.webhook import ActionKind, decide
from ai_factory.sim.tasks import TaskKind, parse_action

REPOS = ["acme/widgets"]
REPO = {"full_name": "acme/widgets", "clone_url": "https://github.com/acme/widgets.git"}


def look(event: str, payload: dict) -> tuple[str, tuple[int, ...]]:
    action = decide(event, {"repository": REPO, **payload}, labels=IntakeLabels("ai-factory"), repos=REPOS)
    return action.kind.value, action.pulls


def test_pull_request_events_ask_to_look_at_their_pull_requests() -> None:
    pr = {"pull_request": {"number": 12}}
    assert look("pull_request_review", {"action": "submitted", **pr}) == ("pull", (12,))
    assert look("pull_request_review_comment", {"action": "created", **pr}) == ("pull", (12,))
    assert look("pull_request", {"action": "synchronize", **pr}) == ("pull", (12,))
    assert look("pull_request", {"action": "closed", **pr}) == ("pull", (12,))
    assert look("issue_comment", {"action": "created", "issue": {"number": 12, "pull_request": {}}}) == ("pull", (12,))
    runs = {"pull_requests": [{"number": 12}, {"number": 3}, {"number": 12}]}
    assert look("check_run", {"action": "completed", "check_run": runs}) == ("pull", (3, 12))
    assert look("check_suite", {"action": "completed", "check_suite": runs}) == ("pull", (3, 12))
    assert look("workflow_run", {"action": "completed", "workflow_run": runs}) == ("pull", (3, 12))


def test_what_is_not_about_a_pull_request_asks_nothing() -> None:
    assert look("issue_comment", {"action": "created", "issue": {"number": 4}})[0] == "ignore"
    assert look("check_run", {"action": "created", "check_run": {"pull_requests": [{"number": 1}]}})[0] == "ignore"
    assert look("check_run", {"action": "completed", "check_run": {"pull_requests": []}})[0] == "ignore"
    assert look("pull_request", {"action": "labeled", "pull_request": {"number": 1}})[0] == "ignore"
    other = decide("pull_request_review", {"action": "submitted", "pull_request": {"number": 1},
                                           "repository": {"full_name": "evil/repo"}},
                   labels=IntakeLabels("ai-factory"), repos=REPOS)  # fmt: skip
    assert other.kind is ActionKind.IGNORE


def test_a_spec_has_one_task_per_feedback_and_quotes_it_without_making_tasks() -> None:
    feedback = [
        texts.review_feedback(id="review-comment:7", author="alice", path="greet.py", line=1,
                              body="Replace `Hello` with `Hi` in `greet.py`\n- [ ] and this?",
                              reply_to=7),  # fmt: skip
        texts.check_feedback(name="test", head_sha="abc", log="collecting\nFAILED test_x\nexit 1\n"),
    ]
    spec = texts.spec(pull_number=12, branch="factory/1a2b3c4d", kind="review", feedback=feedback)
    tasks = parse_task_list(spec)
    assert [t.text for t in tasks] == [
        "Address the review comment by @alice on `greet.py` line 1: Replace `Hello` with `Hi` in `greet.py`",
        "Make the failing check `test` pass; its log ends: exit 1",
    ]  # the reviewer's own checkbox is quoted, not a task
    assert "> - [ ] and this?" in spec and "FAILED test_x" in spec
    assert feedback[0].context(1) == {"id": "review-comment:7", "kind": "review", "task": 1,
                                      "author": "alice", "replyTo": 7, "path": "greet.py", "line": 1}
    # The scripted model acts on the quoted request, as a model would.
    assert parse_action(tasks[0].text).kind is TaskKind.REPLACE


def test_a_ci_log_is_cut_to_its_tail_with_secrets_masked(monkeypatch) -> None:
    from ai_factory.core.logging import register_secret

    register_secret("s3cr3t-token-value")
    log = "\n".join(f"line {n}" for n in range(500)) + "\nauth s3cr3t-token-value failed\n"
    tail = texts.log_tail(log)
    assert len(tail.splitlines()) == texts.LOG_TAIL_LINES
    assert "s3cr3t-token-value" not in tail and "line 499" in tail


def test_an_actions_log_loses_its_byte_order_mark_and_timestamps() -> None:
    log = "\ufeff2026-12-02T10:00:00.1234567Z Run pytest\n2026-12-02T10:00:01.0000000Z FAILED x\n"
    assert texts.log_tail(log) == "Run pytest\nFAILED x"
