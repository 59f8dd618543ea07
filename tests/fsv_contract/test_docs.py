"""docs/mqtt.md is generated from the contract and must match it."""

from pathlib import Path

from fsv_contract.docs import render

DOC = Path(__file__).parents[2] / "docs" / "mqtt.md"


def test_docs_match_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/mqtt.md is stale: run `python -m fsv_contract.docs > docs/mqtt.md`"
    )
