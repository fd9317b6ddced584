"""Skills on disk (`skills/<name>/SKILL.md`, `modes/*.md`, `prompts/*.md`) served as MCP
prompts and resources.

A skill is Markdown with a YAML front matter (`name`, `description`); each canned prompt is
a Markdown template with front matter (`name`, `title`, `description`, `arguments`) whose
body names its arguments as `{argument}`. The files are the single source: agents that load
the skill directly and MCP clients that list prompts read the same words.

A skill may have a text per tool mode, `modes/<mode>.md` (same front matter, `name` being the
skill's): the same rules told in the way that mode reaches the tools. `SKILL.md` is the
Standard-mode text (`modes/standard.md` is a byte-identical copy, so that every mode has a
file). Every mode path serves its own text at the one URI `skill://<name>/SKILL.md`
(`register_mode_text` on the mode server; `tool_modes.modes.share_resources` lets a mode
server's own resource win over the Standard server's), so a client reads the skill at the same
address on any path and gets the words for the tools it sees there.

Every path also serves the skill through the skills extension (`io.modelcontextprotocol/skills`,
SEP-2640), declared with `directoryRead: true` beside the resources capability: `skills/list`
and `skills/get` give the skill's entry (its URI, its front matter as JSON, and every file of
the folder once, each with its `sha256:` digest and size), and `resources/directory/read` walks
the folder (`skill://<name>`, its `modes/` and `prompts/`, as `inode/directory` entries). Every
file is a resource (`skill://<name>/modes/code.md`, ...). The digests are of the bytes served:
the files are read once, at registration, and served from that snapshot, and a mode path's
manifest has its own `SKILL.md`. Clients without the extension keep the plain resource and
the prompts.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import structlog
import yaml
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument, UserMessage
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, PaginatedRequestParams, RequestParams, Resource

from servers.sdk import lowlevel
from servers.validation import describe

SKILLS_EXTENSION: Final = "io.modelcontextprotocol/skills"
"""The skills extension's identifier (SEP-2640), declared under `capabilities.extensions`."""
DIRECTORY_MIME: Final = "inode/directory"
MARKDOWN_MIME: Final = "text/markdown"
SKILL_FILE: Final = "SKILL.md"
CACHE_TTL_MS: Final = 300_000
"""How long a client may cache `skills/list` and `skills/get` (the files change with a deploy)."""
CACHE_SCOPE: Final = "public"
"""The same skill for every client of a path: a shared cache may keep it."""
SKILLS_DIR = Path(str(importlib.resources.files("skills")))
"""Where the skill files are: the `skills` package, in a checkout or an installed wheel alike."""
_log = structlog.get_logger("servers.skills")
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class SkillError(ValueError):
    """A skill or prompt file that does not have the documented form."""


_RANGE_KEYS = ("type", "minimum", "maximum")
"""What a prompt argument may declare beyond its name: an `integer` or `number` and its range,
checked before the prompt is rendered (prompt arguments arrive as text)."""


@dataclass(frozen=True, slots=True)
class CannedPrompt:
    name: str
    title: str | None
    description: str
    arguments: tuple[PromptArgument, ...]
    template: str
    ranges: tuple[tuple[str, dict[str, Any]], ...] = ()
    """Per argument name, its declared type and range (JSON-schema words)."""

    def render(self, arguments: dict[str, str]) -> str:
        unknown = set(arguments) - {a.name for a in self.arguments}
        if unknown:
            raise SkillError(f"prompt {self.name!r} has no argument(s) {', '.join(sorted(unknown))}")
        missing = [a.name for a in self.arguments if a.required and not arguments.get(a.name)]
        if missing:
            raise SkillError(f"prompt {self.name!r} needs {', '.join(missing)}")
        problems = [p for name, spec in self.ranges if (p := _out_of_range(name, arguments.get(name), spec))]
        if problems:
            raise SkillError(f"prompt {self.name!r}: {'; '.join(problems)}")
        return _PLACEHOLDER.sub(lambda m: arguments.get(m.group(1), ""), self.template)


def _out_of_range(name: str, text: str | None, spec: dict[str, Any]) -> str | None:
    """Why a prompt argument's text is not the number its prompt declares, in the suite's
    wording of argument errors ("side_cm must be an integer between 20 and 200 (got 'abc')")."""
    if not text:  # an optional argument left empty: the prompt says its default
        return None
    try:
        value = int(text) if spec.get("type") == "integer" else float(text)
    except ValueError:
        value = None
    low, high = spec.get("minimum"), spec.get("maximum")
    if value is None or (low is not None and value < low) or (high is not None and value > high):
        return f"{name} must be {describe(spec)} (got {text[:60]!r})"
    return None


@dataclass(frozen=True, slots=True)
class ModeText:
    """The skill told for one tool mode (`modes/<mode>.md`)."""

    mode: str
    description: str
    body: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Skill:
    name: str
    description: str
    body: str
    prompts: tuple[CannedPrompt, ...]
    path: Path
    modes: tuple[ModeText, ...] = ()

    @property
    def text(self) -> str:
        return self.path.joinpath("SKILL.md").read_text(encoding="utf-8")

    @property
    def uri(self) -> str:
        """Where every path serves the skill (the text of that path's mode)."""
        return f"skill://{self.name}/SKILL.md"

    def mode(self, mode: str) -> ModeText:
        for text in self.modes:
            if text.mode == mode:
                return text
        raise SkillError(f"skill {self.name!r} has no text for mode {mode!r} (modes/{mode}.md)")


def _split(path: Path) -> tuple[dict[str, Any], str]:
    return _split_text(path.read_text(encoding="utf-8"), path)


def _split_text(text: str, path: Path) -> tuple[dict[str, Any], str]:
    m = _FRONT_MATTER.match(text)
    if m is None:
        raise SkillError(f"{path}: missing '---' front matter")
    meta: object = yaml.safe_load(m.group(1))
    if not isinstance(meta, dict):
        raise SkillError(f"{path}: front matter must be a mapping")
    return {str(k): v for k, v in cast("dict[object, Any]", meta).items()}, m.group(2)


def _optional(meta: dict[str, Any], key: str, path: Path) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SkillError(f"{path}: front matter {key!r} must be non-empty text")
    return value.strip()


def _required(meta: dict[str, Any], key: str, path: Path) -> str:
    value = _optional(meta, key, path)
    if value is None:
        raise SkillError(f"{path}: front matter needs {key!r}")
    return value


def _argument(item: object, path: Path) -> PromptArgument:
    if not isinstance(item, dict):
        raise SkillError(f"{path}: each argument must be a mapping")
    spec = cast("dict[str, Any]", item)
    return PromptArgument(
        name=_required(spec, "name", path),
        description=_optional(spec, "description", path),
        required=bool(spec.get("required", False)),
    )


def _range(item: object, path: Path) -> dict[str, Any] | None:
    """An argument's declared type and range, if it declares one (`type: integer`, `minimum`,
    `maximum`)."""
    spec = cast("dict[str, Any]", item)
    declared = {k: spec[k] for k in _RANGE_KEYS if k in spec}
    if not declared:
        return None
    if declared.get("type") not in ("integer", "number"):
        raise SkillError(f"{path}: an argument with a range needs type integer or number")
    for key in ("minimum", "maximum"):
        if key in declared and not isinstance(declared[key], int | float):
            raise SkillError(f"{path}: {key} must be a number")
    return declared


def load_prompt(path: Path) -> CannedPrompt:
    meta, body = _split(path)
    name = _required(meta, "name", path)
    description = _required(meta, "description", path)
    raw_args: object = meta.get("arguments") or []
    if not isinstance(raw_args, list):
        raise SkillError(f"{path}: 'arguments' must be a list")
    arguments = [_argument(item, path) for item in cast("list[object]", raw_args)]
    ranges = tuple(
        (a.name, spec)
        for a, item in zip(arguments, cast("list[object]", raw_args), strict=True)
        if (spec := _range(item, path)) is not None
    )
    declared = {a.name for a in arguments}
    used = set(_PLACEHOLDER.findall(body))
    if used != declared:
        raise SkillError(
            f"{path}: placeholders {sorted(used)} do not match declared arguments {sorted(declared)}"
        )
    return CannedPrompt(
        name, _optional(meta, "title", path), description, tuple(arguments), body.strip(), ranges
    )


def load_skill(path: Path) -> Skill:
    meta, body = _split(path / "SKILL.md")
    name = _required(meta, "name", path)
    description = _required(meta, "description", path)
    if name != path.name:
        raise SkillError(f"{path}: skill name {name!r} must match its folder name")
    prompts = tuple(load_prompt(p) for p in sorted((path / "prompts").glob("*.md")))
    names = [p.name for p in prompts]
    if len(set(names)) != len(names):
        raise SkillError(f"{path}: duplicate prompt names {names}")
    modes = tuple(load_mode_text(p, name) for p in sorted((path / "modes").glob("*.md")))
    return Skill(name, description, body, prompts, path, modes)


def load_mode_text(path: Path, skill: str) -> ModeText:
    meta, body = _split(path)
    name = _required(meta, "name", path)
    if name != skill:
        raise SkillError(f"{path}: name {name!r} must be the skill's, {skill!r}")
    return ModeText(path.stem, _required(meta, "description", path), body, path)


def register_skill(server: MCPServer[Any], skill: Skill) -> None:
    """Serve each canned prompt as an MCP prompt, every file of the skill as a resource, and the
    skill through the skills extension."""
    for canned in skill.prompts:
        server.add_prompt(
            Prompt(
                name=canned.name,
                title=canned.title,
                description=canned.description,
                arguments=list(canned.arguments),
                fn=_renderer(canned),
                context_kwarg=None,
            )
        )
    files = skill_files(skill)
    for file in files:
        _serve_file(server, skill, file)
    serve_skills_extension(server, skill, files)


def register_mode_text(server: MCPServer[Any], skill: Skill, mode: str) -> bool:
    """Serve `mode`'s text of `skill` at the skill's URI on `server` (a mode server, whose own
    resources win over the Standard server's it shares; its prompts and the skill's other files
    stay the shared ones), and the skills extension with that text as the skill's `SKILL.md`.

    False, with a warning, when the skill has no text for `mode` (an install without
    `modes/*.md`): the path then serves the shared Standard text rather than failing to start.
    """
    files = skill_files(skill)
    try:
        text = skill.mode(mode)
    except SkillError as exc:
        _log.warning("skill_mode_text_missing", skill=skill.name, mode=mode, error=str(exc))
        serve_skills_extension(server, skill, files)
        return False
    own = SkillFile(SKILL_FILE, text.path.read_bytes(), text.description)
    _serve_file(server, skill, own)
    serve_skills_extension(server, skill, (own, *files[1:]))
    return True


@dataclass(frozen=True, slots=True)
class SkillFile:
    """One file of a skill as served: its path in the skill's folder and its bytes."""

    relative: str
    data: bytes
    description: str | None = None

    @property
    def name(self) -> str:
        return self.relative.rsplit("/", 1)[-1]


def skill_files(skill: Skill) -> tuple[SkillFile, ...]:
    """Every file of the skill's folder, `SKILL.md` first, read now (what the digests cover)."""
    paths = sorted(
        p
        for p in skill.path.rglob("*")
        if p.is_file() and not p.name.startswith(".") and "__pycache__" not in p.parts
    )
    files = [SkillFile(SKILL_FILE, skill.path.joinpath(SKILL_FILE).read_bytes(), skill.description)]
    for path in paths:
        relative = path.relative_to(skill.path).as_posix()
        if relative == SKILL_FILE:
            continue
        description = None
        if path.suffix == ".md":
            meta, _ = _split(path)
            description = _optional(meta, "description", path)
        files.append(SkillFile(relative, path.read_bytes(), description))
    return tuple(files)


def file_uri(skill: Skill, relative: str) -> str:
    return f"skill://{skill.name}/{relative}" if relative else f"skill://{skill.name}"


def _mime(relative: str) -> str:
    return MARKDOWN_MIME if relative.endswith(".md") else "application/octet-stream"


def _serve_file(server: MCPServer[Any], skill: Skill, file: SkillFile) -> None:
    # SKILL.md is named and described from its front matter (SEP-2640); the others by their path.
    name = skill.name if file.relative == SKILL_FILE else f"{skill.name}/{file.relative}"
    data = file.data

    @server.resource(
        file_uri(skill, file.relative),
        name=name,
        description=file.description,
        mime_type=_mime(file.relative),
    )
    async def content() -> str:  # pyright: ignore[reportUnusedFunction]
        return data.decode("utf-8")


class SkillGetParams(RequestParams):
    uri: str


class DirectoryReadParams(RequestParams):
    uri: str
    cursor: str | None = None


def _invalid(message: str, uri: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=message, data={"uri": uri})


def _entry(skill: Skill, files: tuple[SkillFile, ...]) -> dict[str, Any]:
    meta, _ = _split_text(files[0].data.decode("utf-8"), skill.path / SKILL_FILE)
    return {
        "uri": skill.uri,
        "frontmatter": meta,
        "resources": [
            {
                "uri": file_uri(skill, f.relative),
                "digest": f"sha256:{hashlib.sha256(f.data).hexdigest()}",
                "size": len(f.data),
            }
            for f in files
        ],
    }


def _directories(skill: Skill, files: tuple[SkillFile, ...]) -> dict[str, list[Resource]]:
    """Each folder of the skill (by URI) and its direct children: files, then subfolders."""
    children: dict[str, list[Resource]] = {"": []}
    for file in files:
        parts = file.relative.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in children:
                children[folder] = []
                parent = "/".join(parts[: depth - 1])
                children[parent].append(
                    Resource(uri=file_uri(skill, folder), name=parts[depth - 1], mime_type=DIRECTORY_MIME)
                )
        parent = "/".join(parts[:-1])
        name = skill.name if file.relative == SKILL_FILE else file.name
        children[parent].append(
            Resource(
                uri=file_uri(skill, file.relative),
                name=name,
                description=file.description,
                mime_type=_mime(file.relative),
                size=len(file.data),
            )
        )
    return {file_uri(skill, folder): entries for folder, entries in children.items()}


def serve_skills_extension(server: MCPServer[Any], skill: Skill, files: tuple[SkillFile, ...]) -> None:
    """Declare the skills extension on `server` and answer its methods for `skill`, whose files
    (`SKILL.md` first) are the bytes `server` serves."""
    entry = _entry(skill, files)
    folders = _directories(skill, files)
    cache = {"ttlMs": CACHE_TTL_MS, "cacheScope": CACHE_SCOPE}

    async def list_skills(ctx: ServerRequestContext[Any], params: PaginatedRequestParams) -> dict[str, Any]:
        if params.cursor is not None:
            raise MCPError(
                code=INVALID_PARAMS, message=f"unknown cursor {params.cursor!r}: the list has one page"
            )
        return {"skills": [entry], **cache}

    async def get_skill(ctx: ServerRequestContext[Any], params: SkillGetParams) -> dict[str, Any]:
        if params.uri != skill.uri:
            raise _invalid(f"no skill at {params.uri!r}; this server serves {skill.uri}", params.uri)
        return {"skill": entry, **cache}

    async def read_directory(ctx: ServerRequestContext[Any], params: DirectoryReadParams) -> dict[str, Any]:
        listing = folders.get(params.uri.rstrip("/"))
        if listing is None:
            raise _invalid(f"{params.uri!r} is not a directory of this server", params.uri)
        if params.cursor is not None:
            raise _invalid(f"unknown cursor {params.cursor!r}: the directory has one page", params.uri)
        return {"resources": [r.model_dump(by_alias=True, mode="json", exclude_none=True) for r in listing]}

    low = lowlevel(server)
    low.add_request_handler("skills/list", PaginatedRequestParams, list_skills)
    low.add_request_handler("skills/get", SkillGetParams, get_skill)
    low.add_request_handler("resources/directory/read", DirectoryReadParams, read_directory)
    low.extensions[SKILLS_EXTENSION] = {"directoryRead": True}


def _renderer(canned: CannedPrompt) -> Any:
    # async: the SDK would run a plain function in a worker thread, for a string format.
    async def render(**arguments: str) -> list[UserMessage]:
        try:
            return [UserMessage(canned.render(arguments))]
        except SkillError as exc:
            # Invalid params, worded: the SDK turns any other exception into "Internal server
            # error", and the caller would not learn which argument to fix.
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from exc

    return render
