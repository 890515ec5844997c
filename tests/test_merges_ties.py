"""TIES merges (mergekit's ``ties``) of real fine-tunes are recovered as merges of the
fine-tunes they merged, and nothing else in the zoo changes.

The merges are written by mergekit's formulas (:func:`heritage.evaluation.zoo.merging.ties_merge`)
from real fine-tunes: the storage-conventions zoo's two classifiers (tests/storage_conventions.py)
and two of the wild zoo's MiniLM-L6 task models; the weights are read with ``safetensors``
/ ``transformers`` and the merge saved with ``save_pretrained``, as mergekit users publish
them. Only our reading and lineage code runs on the files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from heritage.evaluation.zoo.merging import ties_merge  # noqa: E402
from heritage.lineage.merges import MergeDetector  # noqa: E402
from heritage.lineage.recovery import Genealogy, GenealogyRecovery  # noqa: E402
from heritage.reading.ingest import IngestedModel, ingest, ingest_many, model_entries  # noqa: E402


def _parents(genealogy: Genealogy, child: str) -> dict[str, tuple[str, float | None]]:
    return {e.parent: (e.relation, e.weight) for e in genealogy.edges if e.child == child}


def _encoder(path: Path):
    """The encoder of a BERT checkpoint folder (any head and ``bert.`` prefix left out)."""
    from transformers import BertModel

    return BertModel.from_pretrained(str(path), add_pooling_layer=False)


def _save_ties(base, others, weights, density: float, out: Path) -> Path:
    merged = ties_merge(base.state_dict(), [m.state_dict() for m in others], weights, density=density)
    base.load_state_dict(merged, strict=True)
    base.save_pretrained(str(out))
    return out


def _recover(models: list[IngestedModel]) -> Genealogy:
    return GenealogyRecovery().recover([m.fingerprint for m in models],
                                       declared_bases={m.name: m.profile.declared_base for m in models})


def test_ties_trims_elects_signs_and_takes_the_disjoint_mean() -> None:
    """Hand-computed mergekit ``ties`` on one tensor: per task vector the top 60% by
    magnitude is kept; the elected sign is that of the weighted sum; agreeing entries are
    averaged over the weights kept there; ``normalize: false`` and ``lambda`` as mergekit."""
    base = {"w": torch.zeros(5)}
    a = {"w": torch.tensor([4.0, -1.0, 2.0, 0.5, -3.0])}  # keeps 4, 2, -3
    b = {"w": torch.tensor([2.0, 3.0, -1.0, 0.1, 1.0])}  # keeps 3, 2 and one of the two 1s (either gives the same)
    merged = ties_merge(base, [a, b], [0.75, 0.25], density=0.6)["w"]
    # entry 0: both kept, agree -> (0.75*4 + 0.25*2) / 1; entry 1: only b kept -> 3;
    # entry 2: 1.5 - 0.25 > 0 -> a alone: 2; entry 3: neither; entry 4: a alone (-2.25 +
    # 0 or 0.25) -> -3.
    assert merged.tolist() == pytest.approx([3.5, 3.0, 2.0, 0.0, -3.0])
    raw = ties_merge(base, [a, b], [0.75, 0.25], density=0.6, normalize=False, lambda_=2.0)["w"]
    assert raw.tolist() == pytest.approx([2 * 3.5, 2 * 0.75, 2 * 1.5, 0.0, 2 * -2.25])
    with pytest.raises(ValueError):
        ties_merge(base, [a, b], [1.0])


def test_a_model_ruled_out_as_root_gets_a_parent() -> None:
    """The tree's root is chosen by cost unless ruled out (a merge's parents are in its family)."""
    import numpy as np

    from heritage.lineage.arborescence import minimum_arborescence

    inf = np.inf
    costs = np.array([[inf, 1.0, 5.0],
                      [9.0, inf, 2.0],
                      [9.0, 3.0, inf]])
    assert minimum_arborescence(costs) == [(0, 1), (1, 2)]
    # node 0 ruled out: the cheapest tree is rooted at 2 (2 -> 0 -> 1 costs 10, 1 -> 0 and 1 -> 2 cost 11)
    assert minimum_arborescence(costs, np.array([True, False, False])) == [(0, 1), (2, 0)]
    with pytest.raises(ValueError):
        minimum_arborescence(costs, np.array([True, True, True]))


# ---------------------------------------------------------------------- conventions zoo


@pytest.fixture(scope="module")
def conventions_ties(conventions_zoo, tmp_path_factory) -> tuple[Path, list[IngestedModel], Genealogy]:
    """The conventions zoo plus ``ties-ab``: TIES of cls-a and cls-b over their root
    (density 0.5, weights 0.5 / 0.5, mergekit's defaults otherwise)."""
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    models, _ = conventions_zoo
    config = BertConfig.from_pretrained(str(models / "cls-a"))
    root = BertModel(config, add_pooling_layer=False)
    state = {k: v for k, v in load_file(str(models / "root.safetensors")).items() if k != "embeddings.position_ids"}
    root.load_state_dict(state, strict=True)
    out = _save_ties(root, [_encoder(models / "cls-a"), _encoder(models / "cls-b")], [0.5, 0.5], 0.5,
                     tmp_path_factory.mktemp("ties-conventions") / "ties-ab")
    ingested = [m for m in ingest_many(model_entries(models)) if isinstance(m, IngestedModel)]
    ingested.append(ingest(out, "ties-ab"))
    return out, ingested, _recover(ingested)


def test_ties_merge_of_two_classifiers_is_a_merge_of_both(conventions_ties) -> None:
    _, _, recovered = conventions_ties
    found = _parents(recovered, "ties-ab")
    assert set(found) == {"cls-a", "cls-b"}, found  # the base (root) is their ancestor, not a parent
    assert {r for r, _ in found.values()} == {"merge"}
    assert sum(w for _, w in found.values()) == pytest.approx(1.0)
    assert found["cls-a"][1] == pytest.approx(0.5, abs=0.06)
    assert recovered.family_of("ties-ab").validation() == (True, [])


def test_ties_merge_leaves_every_other_edge_of_the_conventions_zoo(conventions_zoo, conventions_ties) -> None:
    """Fine-tunes, conversions, the student, the adapter and the linear and SLERP merges keep
    their parents and relations with a TIES merge in the family."""
    _, truth = conventions_zoo
    _, _, recovered = conventions_ties
    for child, (relation, parents) in truth.items():
        found = _parents(recovered, child)
        assert set(found) == set(parents), (child, found)
        assert {r for r, _ in found.values()} == {relation}, (child, found)
    assert not [e for e in recovered.edges if e.parent == "ties-ab"]


def test_ties_merge_on_candidate_edges_is_found_as_on_the_dense_tree(conventions_ties) -> None:
    """A family above ``tree_limit`` gets its tree on candidate edges: the TIES merge keeps
    both parents, the relation and the weights of the dense tree, and stays off the root."""
    _, ingested, dense = conventions_ties
    sparse = GenealogyRecovery(tree_limit=2).recover(
        [m.fingerprint for m in ingested], declared_bases={m.name: m.profile.declared_base for m in ingested})
    assert _parents(sparse, "ties-ab").keys() == _parents(dense, "ties-ab").keys() == {"cls-a", "cls-b"}
    for parent, (relation, weight) in _parents(sparse, "ties-ab").items():
        assert relation == "merge" and weight == pytest.approx(_parents(dense, "ties-ab")[parent][1], abs=1e-6)
    assert {(e.parent, e.child) for e in sparse.edges} == {(e.parent, e.child) for e in dense.edges}
    assert sparse.family_of("ties-ab").validation() == (True, [])


def test_linear_fit_alone_misses_the_ties_merge(conventions_ties) -> None:
    """Without the task-vector test the TIES merge is no linear combination of its
    relatives (what trimming and sign election do), so it is taken for a fine-tune."""
    _, ingested, _ = conventions_ties
    linear_only = GenealogyRecovery(merges=MergeDetector(ties_ratio=None)).recover([m.fingerprint for m in ingested])
    assert {r for r, _ in _parents(linear_only, "ties-ab").values()} == {"finetune"}


# ---------------------------------------------------------------------- wild zoo


@pytest.fixture(scope="module")
def wild_ties(wild_zoo, tmp_path_factory) -> Genealogy:
    """The wild zoo plus ``ticket-sentiment-ties``: TIES of ticket-router (sharded
    safetensors) and review-sentiment-small over all-MiniLM-L6-v2 (the packaged original),
    density 0.8, weights 0.7 / 0.3."""
    models = Path(wild_zoo) / "models"
    out = _save_ties(_encoder(models / "all-MiniLM-L6-v2"),
                     [_encoder(models / "ticket-router"), _encoder(models / "review-sentiment-small")],
                     [0.7, 0.3], 0.8, tmp_path_factory.mktemp("ties-wild") / "ticket-sentiment-ties")
    ingested = [m for m in ingest_many(model_entries(models)) if isinstance(m, IngestedModel)]
    ingested.append(ingest(out, "ticket-sentiment-ties"))
    return _recover(ingested)


def test_ties_merge_of_two_wild_fine_tunes_is_a_merge_of_both(wild_ties: Genealogy) -> None:
    found = _parents(wild_ties, "ticket-sentiment-ties")
    assert set(found) == {"ticket-router", "review-sentiment-small"}, found
    assert {r for r, _ in found.values()} == {"merge"}
    assert found["ticket-router"][1] > found["review-sentiment-small"][1]  # the larger mergekit weight


def test_ties_merge_leaves_every_other_edge_of_the_wild_zoo(wild_ties: Genealogy, wild_records: dict) -> None:
    for name, record in wild_records.items():
        found = _parents(wild_ties, name)
        expected = {p["name"]: p["relation"] for p in record["parents"]}
        assert {p: r for p, (r, _) in found.items()} == expected, (name, found)
