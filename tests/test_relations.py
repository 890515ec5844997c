"""Lineage across storage conventions: each convention recovers the right parent AND relation.

The models are written by the ecosystem's own writers (tests/storage_conventions.py:
transformers, peft, safetensors, gguf, mergekit's formulas) and trained with real AdamW steps;
the zoo is built once and cached like the other zoos.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heritage.cli import main
from heritage.lineage.recovery import Genealogy, GenealogyRecovery
from heritage.reading.ingest import ingest_many, model_entries


@pytest.fixture(scope="session")
def ingested(conventions_zoo):
    models, _ = conventions_zoo
    return list(ingest_many(model_entries(models)))


@pytest.fixture(scope="session")
def recovered(ingested) -> Genealogy:
    return GenealogyRecovery().recover([m.fingerprint for m in ingested],
                                       declared_bases={m.name: m.profile.declared_base for m in ingested})


def _parents(genealogy: Genealogy, child: str) -> dict[str, tuple[str, float | None]]:
    return {e.parent: (e.relation, e.weight) for e in genealogy.edges if e.child == child}


CONVENTIONS = {
    "cls-a": "wrapper prefix (bert.) and a new classification head",
    "cls-a-more": "a fine-tune of a fine-tune (three levels)",
    "mlm-more-tokens": "resized vocabulary (8 added tokens)",
    "head-only": "frozen backbone, only a new head trained",
    "root-bf16": "dtype conversion to bfloat16",
    "cls-a-fp16": "dtype conversion to float16 of a child with a head",
    "merge-linear": "mergekit linear merge (0.3 / 0.7)",
    "merge-slerp": "mergekit SLERP merge with per-layer t",
    "student": "layer-subset student (blocks 0 and 2)",
    "adapter": "unmerged PEFT LoRA adapter",
    "llama-tuned": "causal LM with its tied head stored, model. prefix",
    "llama-tuned-Q8_0": "GGUF Q8_0 (gguf's writer and gguf.quants, llama.cpp names, q/k permuted)",
    "llama-tuned-Q4_0": "GGUF Q4_0 (gguf's writer and gguf.quants, llama.cpp names, q/k permuted)",
}


@pytest.mark.parametrize("child", sorted(CONVENTIONS), ids=lambda c: f"{c}: {CONVENTIONS[c]}")
def test_each_convention_recovers_parent_and_relation(child: str, conventions_zoo, recovered) -> None:
    _, truth = conventions_zoo
    relation, parents = truth[child]
    found = _parents(recovered, child)
    assert set(found) == set(parents), (child, found)
    assert {r for r, _ in found.values()} == {relation}, (child, found)


def test_original_root_with_its_buffer_heads_its_family(ingested, recovered) -> None:
    """The pretrained file carries an int64 position_ids buffer its re-saved children lack
    (and they carry task heads it lacks); it still shares one family with them, as its root."""
    root = next(m for m in ingested if m.name == "root")
    child = next(m for m in ingested if m.name == "cls-a")
    assert root.profile.buffers == 1 and child.profile.buffers == 0
    assert root.profile.structure_hash == child.profile.structure_hash  # buffers and heads left out
    assert root.fingerprint.backbone_key == child.fingerprint.backbone_key
    family = recovered.family_of("root")
    assert family.root == "root"
    assert {"cls-a", "mlm-more-tokens", "student", "merge-linear", "adapter"} <= set(family.members)
    assert family.validation() == (True, [])


def test_merge_weights_are_estimated(recovered) -> None:
    weights = {p: w for p, (_, w) in _parents(recovered, "merge-linear").items()}
    assert weights == pytest.approx({"cls-a": 0.3, "cls-b": 0.7}, abs=0.03)
    slerp = {p: w for p, (_, w) in _parents(recovered, "merge-slerp").items()}
    assert sum(slerp.values()) == pytest.approx(1.0) and slerp["cls-a"] == pytest.approx(0.5, abs=0.1)


def test_aligned_share_is_stored_on_edges(recovered) -> None:
    edges = {(e.parent, e.child): e for e in recovered.edges}
    assert edges[("root", "cls-a")].aligned == pytest.approx(1.0)
    assert edges[("root", "student")].aligned == pytest.approx(1.0)  # every student block maps
    assert all(0.0 <= e.confidence <= 1.0 for e in recovered.edges)


@pytest.mark.parametrize("quant", ["Q8_0", "Q4_0"])
def test_quantised_gguf_is_a_leaf_under_its_float_model(quant: str, ingested, recovered) -> None:
    """A GGUF copy of the fine-tune (values quantised by gguf's own formulas, stored under
    llama.cpp's names with the q/k rows permuted) is read as quantised and hangs under the
    fine-tune, not its parent, as a ``quantization`` leaf."""
    name = f"llama-tuned-{quant}"
    gguf = next(m for m in ingested if m.name == name)
    tuned = next(m for m in ingested if m.name == "llama-tuned")
    assert gguf.profile.format == "gguf" and gguf.profile.quantization == quant
    assert gguf.fingerprint.quantization == quant and tuned.fingerprint.quantization is None
    assert gguf.profile.structure_hash == tuned.profile.structure_hash  # names and shapes mapped back
    assert _parents(recovered, name) == {"llama-tuned": ("quantization", None)}
    assert not [e for e in recovered.edges if e.parent == name]


def test_recover_out_lists_relations_and_merge_weights(conventions_zoo, tmp_path: Path, capsys) -> None:
    models, truth = conventions_zoo
    out = tmp_path / "recovered.json"
    assert main(["recover", str(models), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(merge, weight 0.70" in printed and "(head_only" in printed and "(distillation" in printed
    document = json.loads(out.read_text())
    assert all({"relation", "weight", "aligned"} <= set(e) for e in document["edges"])
    merge = sorted((e["parent"], e["relation"], round(e["weight"], 1)) for e in document["edges"]
                   if e["child"] == "merge-linear")
    assert merge == [("cls-a", "merge", 0.3), ("cls-b", "merge", 0.7)]
    assert all(e["weight"] is None for e in document["edges"] if e["relation"] != "merge")
