"""The Dockerfile, without a Docker daemon: hadolint finds nothing in it, it installs exactly what
tests/packaging/test_wheel.py installs (so that test stands for the image), its build context
makes the same wheel as the whole checkout, and what it runs (entrypoint, default command,
environment, healthcheck) works when run here.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from drone_sim.__main__ import build_parser as build_sim_parser
from servers.cli import plan
from servers.registry import SERVERS

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
WHEEL_TEST = REPO / "tests" / "conftest.py"
HADOLINT = Path(sys.executable).parent / "hadolint"
TELLO_MCP = Path(sys.executable).parent / "tello-mcp"


# ---- reading the Dockerfile ----


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form ENTRYPOINT/CMD/HEALTHCHECK CMD."""
        text = self.args.split(" CMD ", 1)[1] if self.keyword == "HEALTHCHECK" else self.args
        value: Any = json.loads(text)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.args}"
        return [str(v) for v in value]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]


def instructions(text: str) -> list[Instruction]:
    """Logical instructions: comment lines dropped, backslash continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return [Instruction(kw.upper(), rest.strip()) for kw, rest in (line.split(None, 1) for line in logical)]


def stages(text: str) -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            found.append([])
        assert found, f"{instruction.keyword} before the first FROM"
        found[-1].append(instruction)
    return found


def only(stage: list[Instruction], keyword: str) -> Instruction:
    [found] = [i for i in stage if i.keyword == keyword]
    return found


def commands(run: Instruction) -> Iterator[list[str]]:
    """The `&&`-separated commands of a shell-form RUN, its `--mount=` flags left out."""
    words = [w for w in shlex.split(run.args) if not w.startswith("--mount=")]
    command: list[str] = []
    for word in [*words, "&&"]:
        if word == "&&":
            yield command
            command = []
        else:
            command.append(word)


def pip_commands(stage: list[Instruction], verb: str) -> list[list[str]]:
    """`[PIP_X=V ...] python -m pip VERB ...` commands of a stage's RUNs, as `VERB ...` with each
    `PIP_X=V` prefix spelled as its option `--x V` (pip reads every option from PIP_*)."""
    found: list[list[str]] = []
    for run in (i for i in stage if i.keyword == "RUN"):
        for command in commands(run):
            options: list[str] = []
            while command and re.fullmatch(r"PIP_[A-Z_]+=.*", command[0]):
                name, _, value = command.pop(0).partition("=")
                options += ["--" + name.removeprefix("PIP_").lower().replace("_", "-"), value]
            if command[:4] == ["python", "-m", "pip", verb]:
                found.append([verb, *command[4:], *options])
    return found


def environment(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in (i for i in stage if i.keyword == "ENV"):
        for pair in shlex.split(instruction.args):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


@pytest.fixture(scope="module")
def dockerfile() -> list[list[Instruction]]:
    return stages(DOCKERFILE.read_text(encoding="utf-8"))


# ---- hadolint ----


def hadolint(text: str, tmp_path: Path) -> list[dict[str, Any]]:
    """hadolint's findings at every level (style included), with no config file and no
    `# hadolint ignore=` pragmas honoured: nothing can be waved through."""
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n", encoding="utf-8")
    done = subprocess.run(
        [str(HADOLINT), "--config", str(config), "--disable-ignore-pragma", "--no-fail", "-f", "json", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    assert hadolint(DOCKERFILE.read_text(encoding="utf-8"), tmp_path) == []


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (('ENTRYPOINT ["tello-mcp"]', "ENTRYPOINT tello-mcp"), "DL3025"),
        (("USER 10001", "USER root"), "DL3002"),
        (("--no-cache-dir --no-index", "--no-index"), "DL3042"),
    ],
    ids=["shell-form-entrypoint", "root-user", "pip-cache"],
)
def test_hadolint_catches_what_it_must(tmp_path: Path, change: tuple[str, str], rule: str) -> None:
    """The lint is live: the same Dockerfile, made worse in one known way, is flagged."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert change[0] in text
    codes = {f["code"] for f in hadolint(text.replace(change[0], change[1]), tmp_path)}
    assert rule in codes


# ---- what the image is ----


def test_two_stages_on_the_same_slim_python(dockerfile: list[list[Instruction]]) -> None:
    build, runtime = dockerfile
    assert only(build, "FROM").args == "python:3.11-slim AS build"
    # The wheels built in the first stage are for its interpreter: the runtime must match it.
    assert only(runtime, "FROM").args.split()[0] == only(build, "FROM").args.split()[0]


def test_the_runtime_stage_installs_the_built_wheel_and_nothing_else(
    dockerfile: list[list[Instruction]],
) -> None:
    build, runtime = dockerfile
    assert only(build, "COPY").args == ". ."
    ours, dependencies = pip_commands(build, "wheel")
    assert ours[-1] == ".", "our wheel is built from the context"
    assert dependencies[-1] == "/dist/tello_mcp-*.whl", "the dependencies are those of that wheel"
    # Nothing of the source tree reaches the runtime stage: only the build stage's wheels, mounted.
    assert not [i for i in runtime if i.keyword in ("COPY", "ADD")]
    [install] = pip_commands(runtime, "install")
    assert {"--no-deps", "--no-index"} <= set(install)
    values = {install[install.index("--python") + 1]}
    wheels = [w for w in install[1:] if not w.startswith("-") and w not in values]
    assert wheels == ["/wheels/*.whl"]
    mounts = re.findall(r"--mount=(\S+)", only(runtime, "RUN").args)
    assert mounts == ["type=bind,from=build,source=/wheels,target=/wheels"]
    assert pip_commands(runtime, "check"), "with --no-deps, pip check proves the dependencies complete"


def _pip_argv_of_wheel_test(verb: str) -> set[str]:
    """The constant flags of the wheel fixture's `pip VERB` call (tests/conftest.py `wheel_venv`)."""
    tree = ast.parse(WHEEL_TEST.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.List):
            words = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if "pip" in words and verb in words:
                return set(words[words.index(verb) + 1 :]) - {"--quiet"}
    raise AssertionError(f"no pip {verb} call in {WHEEL_TEST}")


def test_the_image_installs_as_the_wheel_test_does(dockerfile: list[list[Instruction]]) -> None:
    """The flags the wheel test builds and installs with, the Dockerfile uses too."""
    build, runtime = dockerfile
    same = {"-w": "--wheel-dir"}
    built = {same.get(w, w) for w in _pip_argv_of_wheel_test("wheel")}
    assert built <= set(pip_commands(build, "wheel")[0])
    [install] = pip_commands(runtime, "install")
    assert "--python" in install, "installed into a fresh venv by the outer pip, like the test"
    assert install[install.index("--python") + 1] == "/opt/tello-mcp/bin/python"
    assert _pip_argv_of_wheel_test("install") <= set(install)


def test_runs_unprivileged_and_any_server_by_subcommand(dockerfile: list[list[Instruction]]) -> None:
    runtime = dockerfile[-1]
    user = only(runtime, "USER").args
    assert user.isdigit(), "a numeric UID, so runAsNonRoot can check it"
    assert int(user) != 0
    assert only(runtime, "ENTRYPOINT").exec_form() == ["tello-mcp"]
    assert only(runtime, "CMD").exec_form() == ["serve", "--sim"]  # run bare: the simulator demo
    env = environment(runtime)
    assert env["PATH"].startswith("/opt/tello-mcp/bin:"), "`tello-mcp` is the venv's"
    assert only(runtime, "EXPOSE").args == env["TELLO_MCP_PORT"]
    default = plan(only(runtime, "CMD").exec_form()[1:], environ=env)  # `docker run tello-mcp`
    assert default.servers["drone"].sim  # every server, the drone on the embedded simulator
    assert default.common.host == "0.0.0.0"
    assert str(default.common.port) == env["TELLO_MCP_PORT"]
    assert set(default.servers) == {name for name, entry in SERVERS.items() if entry.in_all}


def _documented_runs() -> list[list[str]]:
    """`docker run ... tello-mcp ARGS` in the Dockerfile's header comment: the ARGS."""
    runs: list[list[str]] = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") and "docker run" in line:
            words = shlex.split(line.lstrip("# ").split("  #")[0])
            runs.append(words[words.index("tello-mcp") + 1 :])
    return runs


@pytest.mark.parametrize("argv", _documented_runs(), ids=" ".join)
def test_every_documented_run_resolves(argv: list[str], dockerfile: list[list[Instruction]]) -> None:
    if argv[0] == "sim":
        assert build_sim_parser().parse_args(argv[1:]).host == "0.0.0.0"
        return
    assert argv[0] == "serve"
    chosen = plan(argv[1:], environ=environment(dockerfile[-1]))
    named = [a for a in argv[1:] if not a.startswith("-")]
    assert list(chosen.servers) == (named or list(chosen.servers))
    assert chosen.common.host == "0.0.0.0"


# ---- the build context ----

_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".*cache",
    ".hypothesis",
    "node_modules",
)


def _glob(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (moby's matcher, for the forms used: `*`, `?`, `**`)."""
    out = ""
    rest = pattern.strip("/")
    while rest:
        if rest.startswith("**/"):
            out, rest = out + "(?:[^/]+/)*", rest[3:]
        elif rest.startswith("**"):
            out, rest = out + ".*", rest[2:]
        elif rest[0] == "*":
            out, rest = out + "[^/]*", rest[1:]
        elif rest[0] == "?":
            out, rest = out + "[^/]", rest[1:]
        else:
            out, rest = out + re.escape(rest[0]), rest[1:]
    return re.compile(out)


def context_filter(dockerignore: str) -> Any:
    """`path -> excluded?` for a .dockerignore: the last pattern matching the path or one of its
    parents decides. Negations are plain names here, so an excluded directory with no negation
    below it can be skipped whole."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for line in dockerignore.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        assert not set(line) & set("[]\\"), f"unsupported .dockerignore pattern {line!r}"
        assert not negated or not set(line) & set("*?"), f"negation with a wildcard: {line!r}"
        rules.append((negated, _glob(line.removeprefix("!"))))

    def excluded(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for negated, rule in rules:
            if any(rule.fullmatch(p) for p in prefixes):
                verdict = not negated
        return verdict

    return excluded


def copy_context(source: Path, target: Path) -> None:
    """What `docker build` sends for `source`: its files less those .dockerignore excludes."""
    excluded = context_filter((source / ".dockerignore").read_text(encoding="utf-8"))
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_file() and not excluded(relative):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)


def test_the_context_filter_reads_dockerignore_like_docker() -> None:
    excluded = context_filter("*\n!servers\n**/__pycache__\n")
    assert excluded(".venv/bin/python")
    assert excluded("tests/test_x.py")
    assert not excluded("servers/drone/app.py")
    assert excluded("servers/drone/__pycache__/app.cpython-311.pyc")
    assert excluded("serversx/a.py")


def _wheel_record(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        [record] = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        lines = archive.read(record).decode().splitlines()
    return sorted(line for line in lines if not line.startswith(record))


@pytest.mark.anyio
async def test_the_build_context_makes_the_same_wheel_as_the_checkout(
    dockerfile: list[list[Instruction]], tmp_path: Path
) -> None:
    """The first stage's `pip wheel` run on the context .dockerignore admits, and on the whole
    checkout (a clean copy of both, taken at one moment): same files, same bytes. A package or
    data file the context misses fails here, not in a build nobody runs."""
    checkout, context = tmp_path / "checkout", tmp_path / "context"
    shutil.copytree(REPO, checkout, ignore=_NOT_SOURCE)
    context.mkdir()
    copy_context(checkout, context)
    assert not (context / "tests").exists()
    argv = pip_commands(dockerfile[0], "wheel")[0]

    async def build(where: Path) -> Path:
        out = where.parent / f"{where.name}-dist"
        words = [out.as_posix() if w == "/dist" else w for w in argv if w != "--no-cache-dir"]
        await anyio.run_process([sys.executable, "-m", "pip", *words, "--quiet"], cwd=where, check=True)
        [wheel] = out.glob("tello_mcp-*.whl")
        return wheel

    wheels: dict[str, Path] = {}

    async def build_into(name: str, where: Path) -> None:
        wheels[name] = await build(where)

    with anyio.fail_after(240):
        async with anyio.create_task_group() as tg:
            tg.start_soon(build_into, "checkout", checkout)
            tg.start_soon(build_into, "context", context)
    from_checkout, from_context = _wheel_record(wheels["checkout"]), _wheel_record(wheels["context"])
    assert any(line.startswith("skills/") for line in from_checkout)
    assert from_context == from_checkout


# ---- the healthcheck, run against the entrypoint ----


async def _healthcheck(command: list[str], port: int) -> int:
    """The HEALTHCHECK command as Docker runs it (its `python` is the image's venv's: ours here)."""
    argv = [sys.executable if command[0] == "python" else command[0], *command[1:]]
    env = {**os.environ, "TELLO_MCP_PORT": str(port)}
    with anyio.fail_after(30):
        done = await anyio.run_process(argv, env=env, check=False)
    return done.returncode


@pytest.fixture
async def entrypoint(
    dockerfile: list[list[Instruction]], tmp_path: Path, anyio_backend: object
) -> AsyncGenerator[tuple[anyio.abc.Process, int]]:
    """ENTRYPOINT + CMD (the simulator demo) with the image's environment (but on 127.0.0.1, port 0)."""
    runtime = dockerfile[-1]
    argv = [str(TELLO_MCP), *only(runtime, "ENTRYPOINT").exec_form()[1:], *only(runtime, "CMD").exec_form()]
    env = {
        **os.environ,
        **{k: v for k, v in environment(runtime).items() if k != "PATH"},
        "TELLO_MCP_HOST": "127.0.0.1",
        "TELLO_MCP_PORT": "0",
    }
    errors = (tmp_path / "stderr.log").open("wb")
    process = await anyio.open_process(argv, env=env, cwd=tmp_path, stderr=errors)
    try:
        assert process.stdout is not None
        stdout = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(60):
            banner = ""
            while (found := re.search(r"probes http://127\.0\.0\.1:(\d+)/healthz", banner)) is None:
                banner += (await stdout.receive_until(b"\n", 65536)).decode() + "\n"
        yield process, int(found.group(1))
    finally:
        if process.returncode is None:
            process.terminate()
        with anyio.move_on_after(20):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.aclose()
        errors.close()


@pytest.mark.anyio
async def test_the_healthcheck_passes_while_serving_and_fails_after(
    dockerfile: list[list[Instruction]], entrypoint: tuple[anyio.abc.Process, int]
) -> None:
    healthcheck = only(dockerfile[-1], "HEALTHCHECK")
    command = healthcheck.exec_form()
    assert command[:2] == ["python", "-c"], "stdlib Python: slim images have no curl"
    process, port = entrypoint
    assert await _healthcheck(command, port) == 0
    process.terminate()
    with anyio.fail_after(30):
        await process.wait()
    assert await _healthcheck(command, port) != 0
