"""SDK messages of one session → IterationResult (the shapes docs/claude-cli-notes.md records)."""

from __future__ import annotations

from pathlib import Path

from claude_agent_sdk import (
    AssistantMessage,
    RateLimitEvent,
    RateLimitInfo,
    ResultError,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from ai_factory.worker.agent.stream import StreamRecorder

ROOT = Path("/work/tree")


def tool(id_: str, name: str, **tool_input: object) -> AssistantMessage:
    return AssistantMessage(content=[ToolUseBlock(id=id_, name=name, input=tool_input)], model="m")


def outcome(id_: str, text: str = "ok", *, error: bool = False) -> UserMessage:
    return UserMessage(content=[ToolResultBlock(tool_use_id=id_, content=text, is_error=error)])


def result(**kwargs: object) -> ResultMessage:
    values: dict[str, object] = {
        "subtype": "success", "duration_ms": 1200, "duration_api_ms": 900, "is_error": False,
        "num_turns": 6, "session_id": "s-1", "total_cost_usd": 0.25, "result": "Done.",
        "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 5000,
                  "cache_creation_input_tokens": 300},
    }  # fmt: skip
    values.update(kwargs)
    return ResultMessage(**values)  # type: ignore[arg-type]


def test_a_normal_session() -> None:
    recorder = StreamRecorder(root=ROOT, iteration=1)
    for message in [
        SystemMessage(subtype="init", data={"session_id": "s-1", "model": "m"}),
        AssistantMessage(content=[TextBlock(text="Let me read the spec.")], model="m"),
        tool("t1", "Read", file_path="/work/tree/SPEC.md"),
        outcome("t1"),
        tool("t2", "Write", file_path="/work/tree/src/a.py", content="x"),
        outcome("t2"),
        tool("t3", "Bash", command="git commit -m x"),
        outcome("t3"),
        tool("t4", "Edit", file_path="SPEC.md", old_string="[ ]", new_string="[x]"),
        outcome("t4"),
        tool("t5", "NotebookEdit", notebook_path="/elsewhere/n.ipynb", new_source=""),
        outcome("t5"),
        result(),
    ]:
        recorder.add(message)

    r = recorder.finish()

    assert r.files_edited == ["src/a.py", "SPEC.md", "/elsewhere/n.ipynb"]
    assert (r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_creation_tokens) == (
        100, 20, 5000, 300)  # fmt: skip
    assert r.tokens == 120 and r.cost_usd == 0.25 and r.num_turns == 6
    assert r.session_id == "s-1" and r.tool_calls == 5 and r.got_result and not r.failed


def test_a_denied_edit_is_not_a_file_edited() -> None:
    recorder = StreamRecorder(root=ROOT, iteration=1)
    recorder.add(tool("t1", "Edit", file_path="/work/tree/a.txt", old_string="a", new_string="b"))
    recorder.add(outcome("t1", "PreToolUse:Edit hook error: a.txt is being edited by another worker",
                         error=True))  # fmt: skip

    r = recorder.finish()

    assert r.files_edited == [] and r.denied_edits == ["a.txt"]


def test_usage_limit_session_keeps_events_errors_and_raw_extras() -> None:
    recorder = StreamRecorder(root=ROOT, iteration=3)
    info = RateLimitInfo(status="rejected", resets_at=1795526341, rate_limit_type="five_hour",
                         raw={"unifiedWindows": {"five_hour": {"utilization": 1}}})  # fmt: skip
    recorder.add(RateLimitEvent(rate_limit_info=info, uuid="u", session_id="s"))
    recorder.add(AssistantMessage(content=[TextBlock(text="You've hit your 5-hour limit")],
                                  model="<synthetic>", error="rate_limit"))  # fmt: skip
    text = "You've hit your 5-hour limit · resets 1:19pm (UTC)"
    recorder.add(result(is_error=True, api_error_status=429, result=text, total_cost_usd=0,
                        terminal_reason="api_error", usage={}))  # fmt: skip
    recorder.add_error(ResultError("failed", data={
        "subtype": "success", "is_error": True, "result": text, "api_error_status": 429,
        "api_error": "usage_limit_reached", "api_error_type": "rate_limit_error"}, exit_code=1))  # fmt: skip

    r = recorder.finish()

    assert r.rejected is not None and r.rejected.resets_at == 1795526341
    assert r.rejected.window_utilization == 1
    assert r.assistant_errors == ["rate_limit"] and r.api_error_status == 429
    assert r.api_error == "usage_limit_reached" and r.api_error_type == "rate_limit_error"
    assert r.result_text == text and r.failed and r.process_error is None


def test_a_cli_that_dies_without_a_result_keeps_its_stderr() -> None:
    recorder = StreamRecorder(root=ROOT, iteration=1)
    recorder.add_stderr("--dangerously-skip-permissions cannot be used with root/sudo privileges\n")
    recorder.add_error(RuntimeError("Command failed with exit code 1"))

    r = recorder.finish()

    assert r.process_error == "Command failed with exit code 1" and not r.got_result
    assert "root/sudo" in r.output_tail and r.failed


def test_cli_retries_are_counted() -> None:
    recorder = StreamRecorder(root=ROOT, iteration=1)
    for attempt in (1, 2):
        recorder.add(SystemMessage(subtype="api_retry", data={
            "attempt": attempt, "error_status": 529, "retry_delay_ms": 500, "error": "overloaded"}))  # fmt: skip

    assert recorder.finish().api_retries == 2
