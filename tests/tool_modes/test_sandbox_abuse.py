"""The escape and abuse battery: each attack ends with a bounded, clear error (or is harmless),
the runner stays healthy, and the next run on the same runner works."""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import AsyncGenerator

import anyio
import pytest
from sandbox_support import TEST_LIMITS, TOOLS, ToolTable, code_runner, run_ok

from tool_modes.code import CodeRunner, RunOutcome

pytestmark = pytest.mark.anyio

NORMAL = "const a = await add({a: 1, b: 2}); (await add({a: a.sum, b: 4})).sum"


@pytest.fixture
async def runner(anyio_backend: str) -> AsyncGenerator[CodeRunner]:
    async with code_runner() as running:
        yield running


async def still_healthy(runner: CodeRunner) -> None:
    """The next run works, and promptly (a normal run is milliseconds; this allows for load)."""
    with anyio.fail_after(5):
        assert await run_ok(runner, NORMAL) == 7


@pytest.mark.parametrize(
    ("code", "limit", "words"),
    [
        ("for (;;) {}", "cpu", f"script CPU time limit exceeded ({TEST_LIMITS.exec_s:g} s"),
        ("let n = 0; while (true) { try { for (;;) n++ } catch (e) {} }", "cpu", "CPU time limit"),
        ("function f(n) { return f(n + 1) + 1 } f(0)", "stack", "stack limit exceeded (128 KiB)"),
        ("const f = async (n) => (await f(n + 1)) + 1; await f(0)", "stack", "stack limit"),
        (
            "const a = []; for (;;) a.push(new Array(100000).fill(1))",
            "memory",
            "memory limit exceeded (8 MiB)",
        ),
        ("let s = 'x'; for (;;) s = s + s + 'y'", "memory", "memory limit exceeded (8 MiB)"),
        ("let s = 'ab'; for (;;) s += s; s", "memory", "memory limit"),
        ("'x'.repeat(100000)", "output", "output size limit exceeded (16384 bytes"),
        ("await new Promise(() => {})", "never_settles", "can never settle"),
        ("await new Promise((resolve) => { globalThis.later = resolve })", "never_settles", "never settle"),
        ("const big = 'y'.repeat(30000); " * 1000, "code_size", "code size limit exceeded"),
        ("(" * 5000 + "1" + ")" * 5000, "stack", "nested too deeply"),
    ],
)
async def test_limits_end_the_run_with_an_error_naming_them(
    runner: CodeRunner, code: str, limit: str, words: str
) -> None:
    with anyio.fail_after(15):
        outcome = await runner.run(code, TOOLS, ToolTable())
    assert outcome.limit == limit, outcome.error
    assert outcome.error is not None
    assert words in outcome.error
    assert outcome.to_result().is_error
    await still_healthy(runner)


async def test_a_limit_keeps_the_calls_already_made(runner: CodeRunner) -> None:
    with anyio.fail_after(15):
        outcome = await runner.run(
            "await add({a: 1, b: 1}); await echo({text: 'x'}); for (;;) {}", TOOLS, ToolTable()
        )
    assert outcome.limit == "cpu"
    assert [(t.name, t.outcome) for t in outcome.trace] == [("add", "ok"), ("echo", "ok")]
    structured = outcome.to_result().structured_content
    assert structured is not None
    assert [t["name"] for t in structured["trace"]] == ["add", "echo"]


async def test_huge_logs_are_truncated_not_fatal(runner: CodeRunner) -> None:
    with anyio.fail_after(15):
        outcome = await runner.run(
            "for (let i = 0; i < 100000; i++) console.log('line', i); 'ok'", TOOLS, ToolTable()
        )
    assert outcome.error is None
    assert outcome.result == "ok"
    assert outcome.logs[-1].startswith("[logs truncated")
    assert sum(len(line) + 1 for line in outcome.logs) < 2 * TEST_LIMITS.max_output_bytes


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("throw 42", "uncaught number: 42"),
        ("throw null", "uncaught object: null"),
        ("throw undefined", "uncaught undefined"),
        ("throw Symbol('s')", "uncaught symbol: Symbol(s)"),
        ("throw {code: 7}", 'uncaught value: {"code":7}'),
        ("throw {toString() { for (;;) {} }}", "uncaught value"),
        ("throw {toJSON() { for (;;) {} }}", "describing it failed"),
        ("throw {get message() { for (;;) {} }, toJSON() { return this.message }}", "describing it failed"),
        ("throw new Proxy({}, {get() { for (;;) {} }, ownKeys() { for (;;) {} }})", "describing it failed"),
        (
            "const e = new Error('x'); Object.defineProperty(e, 'message', {get() { for (;;) {} }}); throw e",
            "failed",
        ),
        ("throw Object.create(null)", "uncaught value"),
        ("const e = []; e.push(e); throw e", "uncaught value: [object Array]"),
        ("Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)", "cannot block"),
    ],
)
async def test_throwing_non_error_values(runner: CodeRunner, code: str, words: str) -> None:
    with anyio.fail_after(15):
        outcome = await runner.run(code, TOOLS, ToolTable())
    assert outcome.error is not None
    assert words in outcome.error
    await still_healthy(runner)


async def test_prototype_pollution_cannot_hijack_the_tool_functions(runner: CodeRunner) -> None:
    table = ToolTable()
    code = """
        JSON.stringify = () => '{"a": 666, "b": 0}';
        JSON.parse = () => ({sum: 666});
        Function.prototype.call = Function.prototype.apply = () => 666;
        Promise.prototype.then = function () { throw new Error('hijacked then') };
        Reflect.apply = () => 666;
        Object.create = () => ({});
        Object.defineProperty(add, 'name', {value: 'evil'});
        add.constructor = null;
        Object.setPrototypeOf(add, null);
        const r = await add({a: 1, b: 2});
        r.sum
    """
    with anyio.fail_after(10):
        outcome = await runner.run(code, TOOLS, table)
    assert outcome.error is None, outcome.error
    assert outcome.result == 3
    assert table.calls == [("add", {"a": 1, "b": 2})]
    assert [t.arguments for t in outcome.trace] == [{"a": 1, "b": 2}]


async def test_polluting_the_scripts_own_data_stays_in_the_run(runner: CodeRunner) -> None:
    code = """
        const hijack = {set() { throw new Error('hijacked') }, configurable: true};
        Object.defineProperty(Array.prototype, '0', hijack);
        Object.prototype.toJSON = function () { return {a: 666, b: 0} };
        await add({a: 1, b: 2})
    """
    with anyio.fail_after(10):
        outcome = await runner.run(code, TOOLS, ToolTable())
    assert outcome.error is not None  # its own arguments no longer serialise: its problem, bounded
    clean = "[typeof Object.prototype.toJSON, JSON.stringify([1]), typeof add.constructor]"
    for _ in range(4):  # every worker
        assert await run_ok(runner, clean) == ["undefined", "[1]", "function"]


async def test_constructor_chains_reach_only_the_sandbox(runner: CodeRunner) -> None:
    code = """
        const F = add.constructor.constructor;
        const g = F('return globalThis')();
        const AsyncF = (async () => {}).constructor;
        const viaAsync = await AsyncF('return typeof globalThis.process')();
        const names = ['process', 'require', 'module', 'std', 'os', 'Deno', 'Bun', 'fetch',
                       'XMLHttpRequest', 'WebSocket', 'setTimeout', 'setInterval', '_quickjs', 'python',
                       'print', 'WebAssembly'];
        ({leaks: names.filter((n) => typeof g[n] !== 'undefined'), viaAsync, same: g === globalThis})
    """
    assert await run_ok(runner, code) == {"leaks": [], "viaAsync": "undefined", "same": True}


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("require('fs')", "ReferenceError: require is not defined"),
        ("import fs from 'fs'; fs", "SyntaxError: 'import' and 'export' may appear only"),
        ("await import('os')", "could not load module 'os'"),
        ("await import('./worker.py')", "could not load module"),
        ("Function('return import(\"std\")')()", "could not load module 'std'"),
        ("export const x = 1", "SyntaxError"),
    ],
)
async def test_no_module_loading(runner: CodeRunner, code: str, words: str) -> None:
    with anyio.fail_after(10):
        outcome = await runner.run(code, TOOLS, ToolTable())
    assert outcome.error is not None
    assert words in outcome.error
    await still_healthy(runner)


async def test_no_state_leaks_between_runs(runner: CodeRunner) -> None:
    plant = """
        globalThis.secret = 'planted'; var leakedVar = 1;
        Object.prototype.polluted = true; Array.prototype.extra = 1; add.mark = 'x';
        console = {log() { throw new Error('hijacked') }};
        1
    """
    look = """
        console.log('still works');
        [typeof secret, typeof leakedVar, ({}).polluted, [].extra, add.mark]
    """
    for _ in range(3):  # with two workers, some lookups land on the worker that was planted in
        assert await run_ok(runner, plant) == 1
        with anyio.fail_after(10):
            outcome = await runner.run(look, TOOLS, ToolTable())
        assert outcome.error is None, outcome.error
        assert outcome.result == ["undefined", "undefined", None, None, None]
        assert outcome.logs == ["still works"]


async def test_a_hundred_concurrent_runs(runner: CodeRunner) -> None:
    results: dict[int, object] = {}
    table = ToolTable()

    async def one(i: int) -> None:
        results[i] = await run_ok(
            runner, f"const x = await add({{a: {i}, b: 1}}); (await add({{a: x.sum, b: 1}})).sum", table
        )

    with anyio.fail_after(40):
        async with anyio.create_task_group() as group:
            for i in range(100):
                group.start_soon(one, i)
    assert results == {i: i + 2 for i in range(100)}
    assert len(table.calls) == 200


async def test_a_worker_that_stops_answering_is_killed_and_replaced(anyio_backend: str) -> None:
    limits = dataclasses.replace(TEST_LIMITS, exec_s=30.0, unresponsive_s=0.3)
    async with code_runner(limits, workers=1) as runner:
        [pid] = runner.worker_pids
        with anyio.fail_after(10):
            outcome = await runner.run("await add({a: 1, b: 1}); for (;;) {}", TOOLS, ToolTable())
        assert outcome.limit == "cpu"
        assert outcome.error is not None
        assert "stopped answering and was killed" in outcome.error
        assert [t.outcome for t in outcome.trace] == ["ok"]
        await still_healthy(runner)
        assert pid not in runner.worker_pids


@pytest.mark.parametrize("moment", ["computing", "awaiting a tool"])
async def test_sigkill_of_a_worker_mid_run(anyio_backend: str, moment: str) -> None:
    table = ToolTable()
    code = "await enter({}); for (;;) {}" if moment == "computing" else "await gate({}); 1"
    async with code_runner(workers=1) as runner:
        [pid] = runner.worker_pids

        async def kill_when_entered() -> None:
            await table.entered.wait()
            os.kill(pid, signal.SIGKILL)
            table.gate_open.set()

        outcome = RunOutcome()
        with anyio.fail_after(15):
            async with anyio.create_task_group() as group:
                group.start_soon(kill_when_entered)
                outcome = await runner.run(code, TOOLS, table)
        assert outcome.error is not None
        assert "sandbox process died mid-run" in outcome.error
        assert outcome.trace[0].name in ("enter", "gate")
        await still_healthy(runner)
        assert pid not in runner.worker_pids
        assert len(runner.worker_pids) == 1


@pytest.mark.parametrize("moment", ["computing", "awaiting a tool"])
async def test_cancelling_the_caller_stops_the_script(anyio_backend: str, moment: str) -> None:
    table = ToolTable()
    code = "await enter({}); for (;;) {}" if moment == "computing" else "await gate({}); 1"
    async with code_runner(workers=1) as runner:
        [pid] = runner.worker_pids
        with anyio.fail_after(5):  # far less than the script's own budget would allow
            async with anyio.create_task_group() as group:

                async def run() -> None:
                    await runner.run(code, TOOLS, table)

                group.start_soon(run)
                await table.entered.wait()
                group.cancel_scope.cancel()
        if moment == "awaiting a tool":
            assert table.cancelled == ["gate"]
        await still_healthy(runner)
        assert pid not in runner.worker_pids


async def test_closing_the_runner_fails_runs_in_flight_cleanly(anyio_backend: str) -> None:
    table = ToolTable()
    outcomes: list[RunOutcome] = []
    pids: frozenset[int] = frozenset()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group, code_runner(workers=1) as runner:
            pids = runner.worker_pids

            async def run() -> None:
                outcomes.append(await runner.run("await enter({}); for (;;) {}", TOOLS, table))

            group.start_soon(run)
            await table.entered.wait()
            # leaving the block closes the runner first, with the run still in flight
    [outcome] = outcomes
    assert outcome.error is not None
    assert "sandbox process died mid-run" in outcome.error
    assert [t.name for t in outcome.trace] == ["enter"]
    [pid] = pids
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)
