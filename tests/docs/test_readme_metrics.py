"""The README's metrics table is the registry's: a family added, renamed or relabelled in
`servers.metrics` without the table (or the other way round) fails here."""

from __future__ import annotations

from pathlib import Path

from servers.metrics import families, metrics_table

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _documented() -> str:
    return README.split("<!-- metrics:start -->\n", 1)[1].split("<!-- metrics:end -->", 1)[0]


def test_the_metrics_table_is_the_generated_one() -> None:
    assert _documented() == metrics_table()


def test_every_family_has_one_row_and_every_row_is_a_family() -> None:
    rows = [line for line in _documented().splitlines() if line.startswith("| `tello_mcp_")]
    documented = [row.split("`", 2)[1] for row in rows]
    assert documented == [name for name, *_ in families()]
    assert len(set(documented)) == len(documented)
