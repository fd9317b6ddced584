"""`/metrics` read back with Prometheus's own parser (`prometheus_client.parser`).

`scrape(base)` GETs a served process's `/metrics` over HTTP, with the pod IP as Host (how
Prometheus scrapes, and what the main port's Host allow-list would refuse for MCP);
`scrape_app()` GETs it from the `--metrics-port` app in process, for tests on virtual time,
where no socket may be involved. The registry is the process's: counters carry what earlier
tests did, so every check is a difference between two scrapes, or a gauge's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import httpx
from prometheus_client.parser import text_string_to_metric_families

from servers.metrics import METRICS_PATH, metrics_app

POD_HOST: Final = "10.42.0.17:9090"

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Scrape:
    text: str
    samples: dict[Key, float]
    families: frozenset[str]
    """Family names as the parser gives them (counters without `_total`)."""

    @classmethod
    def parse(cls, text: str) -> Scrape:
        families = list(text_string_to_metric_families(text))
        samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
        return cls(text, samples, frozenset(f.name for f in families))

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 for a labelled child not created yet (a counter that never moved)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample, labels in self.samples if sample == name]


async def scrape(base: str) -> Scrape:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base}{METRICS_PATH}", headers={"Host": POD_HOST})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape.parse(response.text)


async def scrape_app() -> Scrape:
    transport = httpx.ASGITransport(app=metrics_app())
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{POD_HOST}") as http:
        response = await http.get(METRICS_PATH)
    assert response.status_code == 200, response.text
    return Scrape.parse(response.text)
