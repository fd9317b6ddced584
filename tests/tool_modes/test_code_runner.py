"""`CodeRunner` semantics with an in-test tool table: results, logs, trace, images, budgets."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncGenerator

import anyio
import pytest
from mcp_types import ImageContent, TextContent
from sandbox_support import TEST_LIMITS, TOOLS, ToolTable, code_runner, run_ok

from tool_modes.code import CodeRunner, SandboxLimits

pytestmark = pytest.mark.anyio


@pytest.fixture
async def runner(anyio_backend: str) -> AsyncGenerator[CodeRunner]:
    async with code_runner() as running:
        yield running


async def test_tools_are_async_globals_and_the_last_expression_is_the_result(runner: CodeRunner) -> None:
    table = ToolTable()
    code = """
        const x = await add({a: 1, b: 2});
        console.log("first", x);
        const y = await add({a: x.sum, b: 10});
        console.warn("second", y.sum);
        ({x: x.sum, y: y.sum})
    """
    with anyio.fail_after(10):
        outcome = await runner.run(code, TOOLS, table)
    assert outcome.error is None, outcome.error
    assert outcome.result == {"x": 3, "y": 13}
    assert outcome.logs == ['first {"sum":3}', "[warn] second 13"]
    assert [(t.name, t.arguments, t.outcome) for t in outcome.trace] == [
        ("add", {"a": 1, "b": 2}, "ok"),
        ("add", {"a": 3, "b": 10}, "ok"),
    ]
    assert all(t.ms >= 0 for t in outcome.trace)
    assert table.calls == [("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 10})]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("return 6 * 7", 42),
        ("const a = await add({a: 20, b: 22}); a.sum", 42),
        ("const n = 1", None),
        ("[1, 'two', {three: 3}]", [1, "two", {"three": 3}]),
        ("await echo({text: 'hi'})", "hi"),
        ("await get_sum({})", ""),
        ("undefined", None),
        ("// only a comment", None),
        ("if (1 > 2) { 'no' } else { const x = 'yes'; x }", "yes"),
        ("if (false) 'no'", None),
        (
            "try { throw new Error('e') } catch (e) { 'caught ' + e.message } finally { 'not this' }",
            "caught e",
        ),
        ("try { await add({a: 1, b: 1}) } catch (e) { 'no' }", {"sum": 2}),
        ("{ 1; { 2; 3 } }", 3),
        ("for (const i of [1, 2]) i", None),
        ("'use strict'", None),
        ("'😀' + (await add({a: 1, b: 1})).sum", "😀2"),
    ],
)
async def test_results(runner: CodeRunner, code: str, expected: object) -> None:
    assert await run_ok(runner, code) == expected


async def test_a_failing_tool_throws_a_catchable_tool_error(runner: CodeRunner) -> None:
    caught = await run_ok(runner, "try { await fail({}) } catch (e) { [e.name, e.message] }")
    assert caught == ["ToolError", "it broke"]
    with anyio.fail_after(10):
        outcome = await runner.run("await fail({}); await add({a: 1, b: 1})", TOOLS, ToolTable())
    assert outcome.error is not None
    assert outcome.error.startswith("ToolError: it broke")
    assert [(t.name, t.outcome, t.error) for t in outcome.trace] == [("fail", "error", "it broke")]
    result = outcome.to_result()
    assert result.is_error
    assert result.structured_content is not None
    assert result.structured_content["trace"][0]["outcome"] == "error"


async def test_images_come_back_beside_the_result(runner: CodeRunner) -> None:
    with anyio.fail_after(10):
        outcome = await runner.run("const p = await photo({}); p", TOOLS, ToolTable())
    assert outcome.error is None, outcome.error
    assert outcome.result == [{"type": "image", "mimeType": "image/png", "image": 0}, {"age_s": 0.1}]
    result = outcome.to_result()
    assert not result.is_error
    text, image = result.content
    assert isinstance(text, TextContent)
    assert isinstance(image, ImageContent)
    assert image.mime_type == "image/png"
    assert json.loads(text.text) == result.structured_content
    assert result.structured_content is not None
    assert set(result.structured_content) == {"result", "logs", "trace"}


async def test_each_tool_call_reports_progress(runner: CodeRunner) -> None:
    seen: list[tuple[float, str]] = []

    async def on_progress(progress: float, message: str) -> None:
        seen.append((progress, message))

    code = "for (let i = 0; i < 3; i++) await add({a: i, b: i}); 'done'"
    with anyio.fail_after(10):
        outcome = await runner.run(code, TOOLS, ToolTable(), on_progress=on_progress)
    assert outcome.result == "done"
    assert [p for p, _ in seen] == [1.0, 2.0, 3.0]
    assert all(m.startswith("tool call ") and "add" in m for _, m in seen)


async def test_concurrent_calls_in_one_script_run_concurrently(runner: CodeRunner) -> None:
    table = ToolTable()
    code = """
        const both = Promise.all([gate({}), gate({})]);
        await add({a: 1, b: 1});
        await enter({});
        (await both).join(",")
    """
    async with anyio.create_task_group() as group:

        async def open_gate_when_entered() -> None:
            await table.entered.wait()
            table.gate_open.set()

        group.start_soon(open_gate_when_entered)
        assert await run_ok(runner, code, table) == "open,open"
    assert table.most_at_once >= 2


async def test_awaiting_tools_does_not_spend_the_script_cpu_budget(anyio_backend: str) -> None:
    limits = SandboxLimits(exec_s=0.3, tool_wait_s=5.0, max_tool_calls=10)
    table = ToolTable(seconds=0.25)  # each call is slow, like a takeoff
    async with code_runner(limits, workers=1) as runner:
        code = "for (let i = 0; i < 3; i++) await echo({text: 'up'}); 'flew'"
        assert await run_ok(runner, code, table) == "flew"
    assert table.finished == ["echo", "echo", "echo"]


async def test_the_tool_await_budget_cancels_the_run_and_calls_nothing_more(runner: CodeRunner) -> None:
    table = ToolTable()
    code = "console.log('before'); await gate({}); await add({a: 1, b: 2})"
    with anyio.fail_after(10):
        outcome = await runner.run(code, TOOLS, table)
    assert outcome.limit == "tool_wait"
    assert outcome.error is not None
    assert "tool-await time limit" in outcome.error
    assert f"{TEST_LIMITS.tool_wait_s:g} s" in outcome.error
    assert [(t.name, t.outcome) for t in outcome.trace] == [("gate", "cancelled")]
    assert table.cancelled == ["gate"]
    assert [name for name, _ in table.calls] == ["gate"]
    assert outcome.logs == ["before"]
    assert await run_ok(runner, "(await add({a: 2, b: 2})).sum") == 4


async def test_the_tool_call_cap_ends_the_run_and_keeps_the_trace(runner: CodeRunner) -> None:
    table = ToolTable()
    code = "for (let i = 0; i < 50; i++) { try { await add({a: i, b: 0}) } catch (e) {} } 'never'"
    with anyio.fail_after(10):
        outcome = await runner.run(code, TOOLS, table)
    assert outcome.limit == "tool_calls"
    assert outcome.error is not None
    assert f"tool call limit exceeded ({TEST_LIMITS.max_tool_calls}" in outcome.error
    assert len(outcome.trace) == TEST_LIMITS.max_tool_calls
    assert all(t.outcome == "ok" for t in outcome.trace)
    assert len(table.calls) == TEST_LIMITS.max_tool_calls


async def test_calls_left_behind_when_the_run_ends_are_never_made(runner: CodeRunner) -> None:
    table = ToolTable()
    with anyio.fail_after(10):
        outcome = await runner.run("add({a: 1, b: 1}).then(() => add({a: 2, b: 2})); 'left'", TOOLS, table)
    assert outcome.result == "left"
    assert table.calls == []
    assert [(t.name, t.outcome) for t in outcome.trace] == [("add", "not started")]

    with anyio.fail_after(10):
        outcome = await runner.run("await Promise.race([gate({}), add({a: 1, b: 1})])", TOOLS, table)
    assert outcome.result == {"sum": 2}
    assert table.cancelled == ["gate"]
    assert {(t.name, t.outcome) for t in outcome.trace} == {("gate", "cancelled"), ("add", "ok")}


async def test_bad_arguments_reject_without_calling(runner: CodeRunner) -> None:
    table = ToolTable()
    code = """
        const errors = [];
        for (const bad of [() => add(5), () => add([1]), () => add(null), () => add({a: 1n})]) {
            try { await bad() } catch (e) { errors.push(e.name) }
        }
        errors
    """
    assert await run_ok(runner, code, table) == ["TypeError"] * 4
    assert table.calls == []


async def test_syntax_errors_name_the_line(runner: CodeRunner) -> None:
    with anyio.fail_after(10):
        outcome = await runner.run("const a = 1;\nconst b = ;", TOOLS, ToolTable())
    assert outcome.error is not None
    assert outcome.error.startswith("SyntaxError")
    assert "(2:10)" in outcome.error


async def test_the_server_process_gains_no_threads(anyio_backend: str) -> None:
    before = {t.ident for t in threading.enumerate()}
    async with code_runner(workers=2) as runner:
        assert await run_ok(runner, "(await add({a: 1, b: 2})).sum") == 3
        with anyio.fail_after(10):
            outcome = await runner.run("for (;;) {}", TOOLS, ToolTable())
        assert outcome.limit == "cpu"
        assert {t.ident for t in threading.enumerate()} == before
