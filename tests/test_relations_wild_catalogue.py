"""Declared merges against recovered ones, on the wild zoo's real files and cards, through
the catalogue (Neo4j), the REST API and the CLI.

The wild zoo's merge cards: ``polarity-blend`` truthfully declares its two parents
(``base_model`` list, ``base_model_relation: merge``); ``support-fusion`` deliberately
declares a fine-tune of one of its two parents; ``movie-review-polarity`` names its
grandparent. A declared merge agrees only when its recovered parents are exactly its
declared bases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from heritage.catalogue import Catalogue
from heritage.cli import main

SUBSET = ["all-MiniLM-L6-v2", "review-sentiment-small", "spam-guard-mini", "ticket-router", "intent-detector",
          "polarity-blend", "support-fusion", "movie-review-polarity"]


@pytest.fixture
def models(wild_zoo) -> Path:
    return Path(wild_zoo) / "models"


def _import(catalogue: Catalogue, entries: list[tuple[str, Path]]) -> dict[str, str]:
    summary = catalogue.import_many(entries)
    assert summary.failed == 0, [r.error for r in summary.results if r.error]
    return {r.name: r.model_id for r in summary.results}


def _mismatches(found: list[dict]) -> dict[str, tuple]:
    return {m["name"]: (m["reason"], m["declared_name"], m["relation"], m["relation_to_declared"],
                        sorted(b["name"] for b in m["declared_bases"]),
                        sorted((p["name"], p["relation"]) for p in m["recovered_parents"]))
            for m in found}


EXPECTED = {
    # declares a fine-tune of ticket-router; it is a SLERP merge of ticket-router and intent-detector
    "support-fusion": ("relation", "ticket-router", "finetune", "merge", ["ticket-router"],
                       [("intent-detector", "merge"), ("ticket-router", "merge")]),
    # names its grandparent as its base
    "movie-review-polarity": ("parent", "all-MiniLM-L6-v2", "finetune", None, ["all-MiniLM-L6-v2"],
                              [("review-sentiment-small", "finetune")]),
}


def test_wild_merge_cards_through_catalogue_api_and_cli(catalogue: Catalogue, models: Path, api_client,
                                                         capsys) -> None:
    ids = _import(catalogue, [(name, models / name) for name in SUBSET])
    blend = catalogue.get_model(ids["polarity-blend"])
    assert sorted((p["name"], p["relation"]) for p in blend["parents"]) == [
        ("review-sentiment-small", "merge"), ("spam-guard-mini", "merge")]
    assert blend["declared_bases"] == ["lumen-labs/review-sentiment-small", "mailshield/spam-guard-mini"]

    found = catalogue.declared_mismatches()
    assert _mismatches(found) == EXPECTED  # the truthful merge card agrees: not listed
    assert {m["id"] for m in found} == {ids["support-fusion"], ids["movie-review-polarity"]}

    body = api_client.get("/api/lineage/declared-mismatches").json()
    assert _mismatches(body) == EXPECTED
    fusion = next(m for m in body if m["name"] == "support-fusion")
    assert fusion["declared_bases"] == [{"id": ids["ticket-router"], "name": "ticket-router", "external": False}]

    assert main(["mismatches"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert set(lines) == {"support-fusion", "movie-review-polarity"}
    assert "relation" in lines["support-fusion"] and "intent-detector (merge)" in lines["support-fusion"]
    assert "parent" in lines["movie-review-polarity"]


def test_a_merge_card_naming_a_wrong_second_base_is_listed(catalogue: Catalogue, models: Path, tmp_path: Path,
                                                          api_client, capsys) -> None:
    """polarity-blend's weights under a card that declares it a merge of review-sentiment-small
    and intent-detector (it merges review-sentiment-small and spam-guard-mini)."""
    blend = tmp_path / "polarity-blend"
    blend.mkdir()
    for file in ("config.json", "model.safetensors"):
        (blend / file).symlink_to(models / "polarity-blend" / file)
    card = (models / "polarity-blend" / "README.md").read_text()
    assert "- mailshield/spam-guard-mini\n" in card
    (blend / "README.md").write_text(card.replace("- mailshield/spam-guard-mini\n", "- voicebot/intent-detector\n"))
    names = ["all-MiniLM-L6-v2", "review-sentiment-small", "spam-guard-mini", "intent-detector"]
    _import(catalogue, [(name, models / name) for name in names] + [("polarity-blend", blend)])

    expected = {"polarity-blend": ("parent", "intent-detector", "merge", None,
                                   ["intent-detector", "review-sentiment-small"],
                                   [("review-sentiment-small", "merge"), ("spam-guard-mini", "merge")])}
    assert _mismatches(catalogue.declared_mismatches()) == expected
    assert _mismatches(api_client.get("/api/lineage/declared-mismatches").json()) == expected
    assert main(["mismatches"]) == 0
    out = capsys.readouterr().out
    assert "polarity-blend" in out and "intent-detector, review-sentiment-small (merge)" in out
