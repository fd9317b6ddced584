"""Who may see and work the deck, over real HTTP: with access control on, the page shell is
served without a token (it holds no data), the stream and frame need `drone:read`, the
controls `drone:admin`; `GET /` indexes the endpoints."""

from __future__ import annotations

import httpx
import pytest

from servers.auth.settings import AccessSettings
from tests.drone_server.harness import http_settings, serving

pytestmark = pytest.mark.anyio

TOKEN = "deck-test-token-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("scopes", "events", "control"),
    [
        (("drone:read",), 200, 403),
        (("drone:fly",), 403, 403),
        (("drone:read", "drone:admin"), 200, 200),
    ],
)
async def test_scopes_decide_viewing_and_controls(scopes: tuple[str, ...], events: int, control: int) -> None:
    access = AccessSettings(token=TOKEN, static_scopes=scopes)
    async with serving(http=http_settings(access=access)) as served, httpx.AsyncClient(timeout=10) as http:
        base, auth = served.base, {"Authorization": f"Bearer {TOKEN}"}
        page = await http.get(f"{base}/deck")
        assert page.status_code == 200
        assert "Flight deck" in page.text
        assert (await http.get(f"{base}/deck/events")).status_code == 401  # no token: no data
        assert (await http.post(f"{base}/admin/deck/hold", json={})).status_code == 401
        async with http.stream("GET", f"{base}/deck/events", headers=auth) as stream:
            assert stream.status_code == events
            if events == 200:
                first = await anext(stream.aiter_lines())
                assert first.startswith("data: {")
        held = await http.post(f"{base}/admin/deck/hold", json={}, headers=auth)
        assert held.status_code == control, held.text
        assert (served.runtime.hold.state is not None) == (control == 200)


async def test_index_lists_every_endpoint_and_the_viewer_cap_holds() -> None:
    from tests.drone_server.harness import http_drone_settings

    async with (
        serving(http_drone_settings(deck_max_viewers=1)) as served,
        httpx.AsyncClient(timeout=10) as http,
    ):
        index = await http.get(f"{served.base}/")
        assert index.status_code == 200
        for path in ("/deck", "/drone", "/drone-search", "/drone-code", "/drone-codesearch", "/drone-status"):
            assert f">{path}<" in index.text, path
        async with http.stream("GET", f"{served.base}/deck/events") as first:
            assert first.status_code == 200
            second = await http.get(f"{served.base}/deck/events")
            assert second.status_code == 503
            assert "deck_max_viewers" in second.text


def test_the_page_is_small_and_fetches_nothing_from_outside() -> None:
    from servers.deck.routes import static_text

    files = {name: static_text(name) for name in ("deck.html", "deck.css", "deck.js")}
    assert sum(len(text.encode()) for text in files.values()) < 150_000
    for name, text in files.items():
        assert "http://" not in text, name  # no CDN, no hard-coded URL
        assert "https://" not in text, name
        assert "ui://" not in text, name
