"""The flight recorder's files over HTTP, for the deck's Recordings panel and for `curl`.

* `GET /flights`: `{"recording_on", "flights": [{"name", "start", "duration_s", "size",
  "url", "open"}, ...]}`, oldest first; `open` marks the flight being recorded now (its file
  is readable up to its last whole chunk).
* `GET /flights/{name}`: that MCAP file as `application/vnd.mcap` (IANA's registration),
  as an attachment. Only names the recorder gives (`is_recording_name`: no path, no dots) are
  looked up, in the recording directory only, never through a symlink.

Access: with access control on, both need `drone:read`, as the deck's stream does (a recording
holds what the live deck shows: state, the flight log with its callers, the photos). With it
off they are served to loopback clients only, as the deck's controls are: a recording is the
history of every flight for a month (`--flight-recording-max-age-days`), photos of the room
included, and without tokens there is nobody to grant it to. The Host and Origin checks of
every route (`RouteGuard`) apply either way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Final

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from servers.drone.recorder import is_recording_name, list_recordings
from servers.drone.runtime import DroneRuntime
from servers.drone.scopes import READ

__all__ = ["FLIGHTS_PATH", "MCAP_MEDIA_TYPE", "flight_routes"]

FLIGHTS_PATH: Final = "/flights"
MCAP_MEDIA_TYPE: Final = "application/vnd.mcap"
_CHUNK: Final = 64 * 1024
_LOOPBACK: Final = ("127.", "::1", "localhost")
_NAME_FORM: Final = "flight-YYYYMMDDTHHMMSSZ.mcap or flight-YYYYMMDDTHHMMSSZ-N.mcap (see GET /flights)"
_OFF: Final = (
    "flight recording is off: serve the drone with --flight-recording-dir DIR "
    "(TELLO_MCP_FLIGHT_RECORDING_DIR)"
)


def _refusal(request: Request) -> Response | None:
    user = request.scope.get("user")
    if isinstance(user, AuthenticatedUser):
        if READ in user.scopes:
            return None
        return JSONResponse(
            {"error": "insufficient_scope", "error_description": f"flight recordings need the {READ} scope"},
            status_code=403,
        )
    peer = request.client.host if request.client else ""
    if peer.startswith(_LOOPBACK):
        return None
    return JSONResponse(
        {"error": "with access control off, flight recordings are only served to loopback clients"},
        status_code=403,
    )


def _open_recording(path: Path) -> tuple[int, int] | None:
    """An open descriptor and the size of the regular file at `path` (no symlink followed), or
    None. Read from the descriptor, the file may be pruned meanwhile: the download still ends
    whole, at the size it had when opened (the one being written grows only by whole chunks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st.st_size


class _Recording(Response):
    """The first `size` bytes of the open file `fd`, read off the event loop; `fd` is closed
    however the response ends (done, client gone, cancelled)."""

    def __init__(self, fd: int, size: int, name: str) -> None:
        super().__init__(
            media_type=MCAP_MEDIA_TYPE,
            headers={
                "content-length": str(size),
                "content-disposition": f'attachment; filename="{name}"',
                "cache-control": "no-store",
                "x-content-type-options": "nosniff",
            },
        )
        self.fd, self.size = fd, size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            left = 0 if scope["method"] == "HEAD" else self.size
            while left > 0:
                chunk = await anyio.to_thread.run_sync(os.read, self.fd, min(_CHUNK, left))
                if not chunk:  # a file that only grows never ends early; never hang on one
                    break
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(self.fd)


def flight_routes(runtime: DroneRuntime) -> list[BaseRoute]:
    def directory() -> Path | None:
        configured = runtime.settings.flight_recording_dir
        return Path(configured) if configured else None

    def current() -> str | None:
        recorder = runtime.recorder
        recording = None if recorder is None else recorder.recording
        return None if recording is None else recording.path.name

    async def listing(request: Request) -> Response:
        refused = _refusal(request)
        if refused is not None:
            return refused
        where = directory()
        if where is None:
            return JSONResponse({"recording_on": False, "flights": [], "note": _OFF})
        # Reading each file's summary is disk work: off the event loop, which flies the drone.
        found = await anyio.to_thread.run_sync(list_recordings, where)
        now = current()
        flights: list[dict[str, Any]] = [
            {**item, "url": f"{FLIGHTS_PATH}/{item['name']}", "open": item["name"] == now} for item in found
        ]
        return JSONResponse({"recording_on": True, "flights": flights}, headers={"cache-control": "no-store"})

    async def download(request: Request) -> Response:
        refused = _refusal(request)
        if refused is not None:
            return refused
        name: str = request.path_params["name"]
        if not is_recording_name(name):
            return JSONResponse({"error": f"name: a recording's name is {_NAME_FORM}"}, status_code=400)
        where = directory()
        if where is None:
            return JSONResponse({"error": _OFF}, status_code=404)
        opened = await anyio.to_thread.run_sync(_open_recording, where / name)
        if opened is None:
            return JSONResponse({"error": f"no recording {name} (see GET {FLIGHTS_PATH})"}, status_code=404)
        return _Recording(*opened, name)

    return [
        Route(FLIGHTS_PATH, listing, methods=["GET"]),
        Route(FLIGHTS_PATH + "/{name}", download, methods=["GET"]),
    ]
