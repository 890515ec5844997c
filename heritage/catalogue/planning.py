"""What a family's stored tree should become: pure compute, no database writes.

A :class:`FamilyPlan` is computed outside any transaction (tree recovery can take a
while) from the members' fingerprints, and remembers the family ``version`` it was
computed from.  :mod:`heritage.catalogue.commit` writes it only if the family is still
at that version, so two writers never interleave half-trees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping, Sequence

from heritage.catalogue.placement import declared_base_candidates
from heritage.reading.fingerprint import Fingerprint
from heritage.lineage.recovery import GenealogyRecovery, RecoveredEdge, RecoveredFamily

__all__ = ["Member", "FamilyPlan", "plan_family", "plan_from_recovered", "member_from_row"]


@dataclass(frozen=True)
class Member:
    """A model as tree building needs it (its fingerprint is looked up by ``id``)."""

    id: str
    name: str
    sha256: str
    is_adapter: bool = False
    declared_base: str | None = None


def member_from_row(row: Mapping[str, Any]) -> Member:
    return Member(id=row["id"], name=row["name"], sha256=row["sha256"],
                  is_adapter=bool(row.get("isAdapter")), declared_base=row.get("declaredBase"))


@dataclass
class FamilyPlan:
    """The complete new state of one family.

    ``expected_version`` / ``expected_members``: the state the plan was computed from
    (``None`` version: a family that does not exist yet).
    """

    family_id: str
    members: list[str]
    edges: list[dict[str, Any]]
    stats: dict[str, Any]
    expected_version: int | None = None
    expected_members: frozenset[str] = field(default_factory=frozenset)

    def write_row(self) -> dict[str, Any]:
        return {"id": self.family_id, "members": self.members, "edges": self.edges}

    def stats_row(self) -> dict[str, Any]:
        return {"id": self.family_id, "stats": self.stats}


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _edge_row(edge: RecoveredEdge) -> dict[str, Any]:
    return {"parent": edge.parent, "child": edge.child, "confidence": _finite(edge.confidence),
            "distance": _finite(edge.distance), "method": edge.method, "relation": edge.relation,
            "weight": None if edge.weight is None else _finite(edge.weight), "aligned": _finite(edge.aligned)}


def plan_family(
    recovery: GenealogyRecovery,
    family_id: str,
    members: Sequence[Member],
    fingerprints: Mapping[str, Fingerprint],
    *,
    expected_version: int | None,
    expected_members: Sequence[str] = (),
) -> FamilyPlan:
    """The tree of ``members`` (full models by MoTHer, adapters attached to their base).

    Fingerprints are keyed and named by model id.  An adapter whose declared base is a
    member is attached to it; otherwise to the family root (see
    :meth:`GenealogyRecovery.attach_adapter`); with no full model in the family it stays
    without a parent.
    """
    full = [fingerprints[m.id] for m in members if not m.is_adapter]
    adapters = [m for m in members if m.is_adapter]
    if full:
        family = recovery.build_family(full)
    else:
        family = RecoveredFamily(
            index=0, members=[], structure_hash=fingerprints[adapters[0].id].structure_hash,
            metric="none", regime="n/a", regime_evidence="adapters without a base in the catalogue",
            mean_distance=0.0, threshold=recovery.threshold,
        )
    edges = list(family.edges)
    if full and adapters:
        by_id = {fp.name: fp for fp in full}
        id_by_name = {m.name: m.id for m in members if not m.is_adapter}
        for adapter in adapters:
            declared = next((id_by_name[n] for n in declared_base_candidates(adapter.declared_base)
                             if n in id_by_name), None)
            attached = recovery.attach_adapter(fingerprints[adapter.id], declared, [family], by_id)
            if attached is not None:
                edges.append(attached[1])
    return plan_from_recovered(recovery, family_id, family, edges, members=[m.id for m in members],
                               expected_version=expected_version, expected_members=expected_members)


def plan_from_recovered(
    recovery: GenealogyRecovery,
    family_id: str,
    family: RecoveredFamily,
    edges: Sequence[RecoveredEdge] | None = None,
    *,
    members: Sequence[str] | None = None,
    expected_version: int | None = None,
    expected_members: Sequence[str] = (),
) -> FamilyPlan:
    """A plan from a family the recovery built (members and edges named by model id)."""
    stats = {
        "meanDistance": _finite(family.mean_distance),
        "structureHash": family.structure_hash,
        "threshold": recovery.threshold,
        "metric": family.metric,
        "regime": family.regime,
        "regimeEvidence": family.regime_evidence,
        "treeMethod": recovery.tree_method.value,
        "lambda": recovery.lam,
    }
    return FamilyPlan(
        family_id=family_id,
        members=list(members if members is not None else family.members),
        edges=[_edge_row(e) for e in (family.edges if edges is None else edges)],
        stats=stats,
        expected_version=expected_version,
        expected_members=frozenset(expected_members),
    )
