"""Reading the stored catalogue: each function runs named Cypher queries and shapes rows.

Nothing here recomputes a tree from weights: genealogies and lineages are what the last
write stored (the seed rebuilt trees on every GET and could disagree with its own
stored parents).  Tree statistics and validation are computed from the stored edges.
"""

from __future__ import annotations

from typing import Any

from graph.database import Database
from graph.driver import GraphTransaction
from heritage.catalogue.config import MAX_DEPTH
from heritage.catalogue.errors import FamilyNotFound, ModelNotFound
from heritage.catalogue.retry import DataChanged, retry
from heritage.catalogue.records import (
    Ancestor,
    CatalogueStatistics,
    Descendant,
    FamilyGenealogy,
    FamilyRecord,
    GenealogyEdge,
    GenealogyNode,
    Lineage,
    LineageRoot,
    ModelRecord,
    family_record,
    model_record,
    native,
)
from heritage.lineage.trees import TreeValidation, tree_statistics, validate_tree

__all__ = [
    "validate_depth",
    "get_model",
    "find_model",
    "list_models",
    "list_families",
    "get_family",
    "family_models",
    "genealogy",
    "lineage",
    "path_between",
    "lowest_common_ancestor",
    "siblings",
    "declared_mismatches",
    "statistics",
    "family_size_distribution",
]


# A lineage or genealogy read that overlapped a rewrite of its tree is read again, up to
# this many times (see _lineage_rows).
_CONSISTENT_READ_ATTEMPTS = 6
# First pause before reading again (doubled each time): a rewrite commits in milliseconds.
_READ_AGAIN_AFTER_S = 0.005


class _TornRead(DataChanged):
    """A read saw a tree that was being rewritten; read it again."""


def validate_depth(depth: int) -> int:
    """``depth`` as an int in 1..MAX_DEPTH, else ``ValueError`` (Cypher cannot bound
    variable-length patterns by a parameter, so the queries filter a fixed maximum)."""
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise ValueError(f"depth must be an integer, got {depth!r}")
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be between 1 and {MAX_DEPTH}, got {depth}")
    return depth


def _paging(skip: int, limit: int) -> tuple[int, int]:
    if skip < 0:
        raise ValueError("skip must be >= 0")
    if limit < 1:
        raise ValueError("limit must be >= 1")
    return int(skip), int(limit)


def get_model(db: Database, model_id: str) -> ModelRecord:
    rows = db.read("model_get", id=model_id)
    if not rows:
        raise ModelNotFound(model_id)
    return model_record(rows[0])


def find_model(db: Database, ref: str) -> ModelRecord:
    """A model by id or by name."""
    rows = db.read("model_find", ref=ref)
    if not rows:
        raise ModelNotFound(ref)
    return model_record(rows[0])


def list_models(db: Database, q: str | None = None, family_id: str | None = None, format: str | None = None,
                status: str | None = None, skip: int = 0, limit: int = 50) -> tuple[list[ModelRecord], int]:
    """A page of models (newest first) matching the filters, and the total that match."""
    skip, limit = _paging(skip, limit)
    rows = db.read("model_list", q=q or None, familyId=family_id, format=format, status=status,
                skip=skip, limit=limit)
    if not rows:
        return [], 0
    return [model_record(item) for item in rows[0]["items"]], int(rows[0]["total"])


def list_families(db: Database, skip: int = 0, limit: int = 1000) -> list[FamilyRecord]:
    """Families, largest first, each with its real member count and root(s)."""
    skip, limit = _paging(skip, limit)
    return [family_record(r) for r in db.read("family_list", skip=skip, limit=limit)]


def get_family(db: Database, family_id: str) -> FamilyRecord:
    rows = db.read("family_get", id=family_id)
    if not rows:
        raise FamilyNotFound(family_id)
    return family_record(rows[0])


def family_models(db: Database, family_id: str) -> list[ModelRecord]:
    get_family(db, family_id)  # 404 for an unknown family rather than an empty list
    return [model_record(r) for r in db.read("family_models", id=family_id)]


def genealogy(db: Database, family_id: str) -> FamilyGenealogy:
    """A family's stored genealogy: see :class:`~heritage.catalogue.records.FamilyGenealogy`
    (a tree apart from merge children; statistics and validation computed from the stored
    edges, over model ids)."""
    row = _genealogy_row(db, family_id)
    models = {m["id"]: m for m in row["models"]}
    edges = [_genealogy_edge(e, models) for e in row["edges"]]
    parents_of: dict[str, list[GenealogyEdge]] = {}
    for e in edges:
        parents_of.setdefault(e.child, []).append(e)
    parents_of = {child: _main_parent_first(found) for child, found in parents_of.items()}
    ids = list(models)
    triples = [(e.parent, e.child, e.relation) for e in edges]
    nodes = _genealogy_nodes(ids, models, parents_of)
    confidences = [e.confidence for e in edges if e.confidence is not None]
    mean_confidence = sum(confidences) / len(confidences) if confidences else None
    return FamilyGenealogy(
        family=family_record({"family": row["family"], "members": len(models), "edges": len(edges),
                              "meanConfidence": mean_confidence,
                              "roots": [{"id": n.id, "name": n.name} for n in nodes if n.is_root]}),
        models=[_member_record(m, family_id, parents_of.get(m["id"], [])) for m in row["models"]],
        nodes=nodes,
        edges=edges,
        roots=[n.id for n in nodes if n.is_root],
        statistics=tree_statistics(triples, ids),
        validation=validate_tree(triples, ids) if ids else TreeValidation(True, []),
        mean_confidence=mean_confidence,
    )


def _main_parent_first(edges: list[GenealogyEdge]) -> list[GenealogyEdge]:
    """A model's parent edges, the main parent (largest merge weight, else by name) first."""
    return sorted(edges, key=lambda e: (-(e.weight if e.weight is not None else 1.0), e.parent_name or ""))


def _genealogy_edge(row: dict[str, Any], models: dict[str, dict[str, Any]]) -> GenealogyEdge:
    return GenealogyEdge(
        parent=row["parent"], child=row["child"],
        parent_name=models.get(row["parent"], {}).get("name"), child_name=models.get(row["child"], {}).get("name"),
        confidence=native(row["confidence"]), distance=native(row["distance"]), method=row["method"],
        relation=row["relation"] or "finetune", weight=native(row["weight"]), aligned=native(row["aligned"]),
        lambda_=row["lambda"], run_id=row["runId"], created_at=native(row["createdAt"]),
    )


def _generations(ids: list[str], parent_of: dict[str, str]) -> dict[str, int]:
    """Edges from each model up its main parents to its root (a cycle, which a valid
    genealogy never has, stops the walk instead of looping)."""
    def up(node: str) -> int:
        steps, seen = 0, {node}
        while node in parent_of and steps <= len(ids):
            node = parent_of[node]
            if node in seen:
                break
            seen.add(node)
            steps += 1
        return steps

    return {i: up(i) for i in ids}


def _genealogy_nodes(ids: list[str], models: dict[str, dict[str, Any]],
                     parents_of: dict[str, list[GenealogyEdge]]) -> list[GenealogyNode]:
    main = {child: found[0] for child, found in parents_of.items()}
    generations = _generations(ids, {child: e.parent for child, e in main.items()})
    parents = {e.parent for found in parents_of.values() for e in found}
    return [
        GenealogyNode(
            id=i, name=models[i]["name"], parent_id=main[i].parent if i in main else None,
            parent_ids=[e.parent for e in parents_of.get(i, [])], relation=main[i].relation if i in main else None,
            confidence=main[i].confidence if i in main else None, generation=generations[i],
            is_root=i not in main, is_leaf=i not in parents,
            is_adapter=bool(models[i].get("isAdapter")), status=models[i].get("status"),
        )
        for i in ids
    ]


def _member_record(model: dict[str, Any], family_id: str, edges: list[GenealogyEdge]) -> ModelRecord:
    """A member's ModelRecord with its stored parent edges (the main one first)."""
    main = edges[0] if edges else None
    return model_record({
        "model": model, "familyId": family_id,
        "parentId": main.parent if main else None, "parentName": main.parent_name if main else None,
        "confidence": main.confidence if main else None, "distance": main.distance if main else None,
        "method": main.method if main else None, "relation": main.relation if main else None,
        "weight": main.weight if main else None,
        "parents": [{"id": e.parent, "name": e.parent_name, "relation": e.relation, "weight": e.weight,
                     "confidence": e.confidence, "distance": e.distance, "method": e.method, "aligned": e.aligned}
                    for e in edges],
    })


def _genealogy_row(db: Database, family_id: str) -> dict[str, Any]:
    """The ``family_genealogy`` row of ONE stored tree (see :func:`_lineage_rows` for why):
    read again while the family's version moved during the read, or while the edges are
    not one whole tree written by one run (a commit seen half-applied)."""
    def once(tx: GraphTransaction) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return tx.run("family_genealogy", id=family_id), tx.run("family_stamp", id=family_id)

    def attempt(n: int) -> dict[str, Any]:
        rows, after = db.read_transaction(once)
        if not rows:
            raise FamilyNotFound(family_id)
        row = rows[0]
        stable = bool(after) and after[0]["version"] == (row["family"] or {}).get("version")
        ids = [m["id"] for m in row["models"]]
        whole = len({e["runId"] for e in row["edges"]}) <= 1 and (
            not ids or validate_tree([(e["parent"], e["child"], e["relation"]) for e in row["edges"]], ids).valid)
        if stable and (whole or n == _CONSISTENT_READ_ATTEMPTS - 1):  # stored as such: report, do not hide
            return row
        raise _TornRead("the genealogy overlapped a rewrite of its tree")

    return retry(f"read the tree of family {family_id}", attempt, attempts=_CONSISTENT_READ_ATTEMPTS,
                 pause_s=_READ_AGAIN_AFTER_S)


def _lineage_whole(model: dict[str, Any], ancestors: list[dict[str, Any]], descendants: list[dict[str, Any]],
                   root: list[dict[str, Any]], depth: int) -> bool:
    """Do the parts of a lineage describe one genealogy? (the main parent is the first
    ancestor of generation 1, each ancestor hangs above a model one generation below it,
    the root is among the ancestors when within reach, descendants hang below the model,
    nobody twice)."""
    model_id = model["model"]["id"]
    first = [a for a in ancestors if a["generation"] == 1]
    if model["parentId"] != (first[0]["id"] if first else None):
        return False
    generation = {model_id: 0, **{a["id"]: a["generation"] for a in ancestors}}
    if len(generation) != len(ancestors) + 1:
        return False
    if any(generation.get(a["childId"]) != a["generation"] - 1 for a in ancestors):
        return False
    if root and root[0]["generations"] <= depth and root[0]["id"] not in generation:
        return False
    placed = {model_id}
    for d in descendants:  # ordered by generation: each hangs below one already placed
        if d["parentId"] not in placed or d["id"] in placed:
            return False
        placed.add(d["id"])
    return not placed & (set(generation) - {model_id})


def _light(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "status": row.get("status"), "format": row.get("format"),
        "generation": row.get("generation"), "relation": row.get("relation") or "finetune",
        "weight": native(row.get("weight")), "confidence": native(row.get("confidence")),
        "distance": native(row.get("distance")), "method": row.get("method"),
    }


def lineage(db: Database, model_id: str, depth: int = 10) -> Lineage:
    """Ancestors (nearest first) and nested descendants of a model, up to ``depth`` (1..50):
    see :class:`~heritage.catalogue.records.Lineage` (every relative with the relation and
    weight of its edge; with merges, each relative once, at its nearest generation)."""
    depth = validate_depth(depth)
    model_row, ancestor_rows, rows, root = _lineage_rows(db, model_id, depth)
    model = model_record(model_row)
    nodes = {r["id"]: Descendant(**_light(r)) for r in rows}
    top: list[Descendant] = []
    for r in rows:  # ordered by generation: a parent is always placed before its children
        (nodes[r["parentId"]].children if r["parentId"] in nodes else top).append(nodes[r["id"]])
    return Lineage(
        model=model,
        depth=depth,
        parent_id=model["parent_id"],
        confidence=model["confidence"],
        root=LineageRoot(**root[0]) if root else None,
        ancestors=[Ancestor(**_light(r), child_id=r["childId"]) for r in ancestor_rows],
        descendants=top,
        descendant_count=len(rows),
    )


def _lineage_rows(db: Database, model_id: str, depth: int) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                      list[dict[str, Any]], list[dict[str, Any]]]:
    """The model, ancestor, descendant and root rows of one lineage, all from ONE tree.

    Neo4j reads are read-committed: four queries (even in one transaction) may straddle a
    rewrite of the tree that commits between them, and the lineage would then mix the old
    tree and the new one (say, a parent that is not the nearest ancestor).  So the queries
    run in one read transaction between two reads of the tree's stamp (family id and
    version, bumped by every rewrite); when the stamps differ, or the parts do not fit
    together (a commit seen half-applied), the lineage is read again.  A stable stamp
    with parts that still do not fit is what is stored, and is returned as such.
    """
    def once(tx: GraphTransaction) -> tuple[Any, ...]:
        before = tx.run("lineage_stamp", id=model_id)
        model = tx.run("model_get", id=model_id)
        ancestors = tx.run("lineage_ancestors", id=model_id, depth=depth)
        descendants = tx.run("lineage_descendants", id=model_id, depth=depth)
        root = tx.run("lineage_root", id=model_id)
        return before, model, ancestors, descendants, root, tx.run("lineage_stamp", id=model_id)

    def attempt(n: int) -> tuple[Any, ...]:
        before, model, ancestors, descendants, root, after = db.read_transaction(once)
        if not model:
            raise ModelNotFound(model_id)
        whole = _lineage_whole(model[0], ancestors, descendants, root, depth)
        if before == after and (whole or n == _CONSISTENT_READ_ATTEMPTS - 1):
            return model[0], ancestors, descendants, root
        raise _TornRead("the lineage overlapped a rewrite of its tree")

    return retry(f"read the lineage of model {model_id}", attempt, attempts=_CONSISTENT_READ_ATTEMPTS,
                 pause_s=_READ_AGAIN_AFTER_S)


def _require_models(db: Database, *ids: str) -> None:
    for row in db.read("model_exists", ids=list(ids)):
        if not row["exists"]:
            raise ModelNotFound(row["id"])


def path_between(db: Database, a: str, b: str) -> dict[str, Any] | None:
    """The genealogy path from ``a`` to ``b``: ``{nodes: [{id, name}], edges: [{parent,
    child, confidence, relation, weight}], length}``, or ``None`` when they are not related.

    One query, but read-committed: an edge deleted by a rewrite that commits while the
    path is walked comes back without its ends; such a path is read again."""
    _require_models(db, a, b)

    def attempt(_: int) -> dict[str, Any] | None:
        rows = db.read("lineage_path", a=a, b=b)
        if not rows:
            return None
        found = native(dict(rows[0]))
        if any(e["parent"] is None or e["child"] is None for e in found["edges"]):
            raise _TornRead("the path crossed an edge that was being rewritten")
        return found

    return retry(f"read the path between {a} and {b}", attempt, attempts=_CONSISTENT_READ_ATTEMPTS,
                 pause_s=_READ_AGAIN_AFTER_S)


def lowest_common_ancestor(db: Database, a: str, b: str) -> dict[str, Any] | None:
    """``{id, name, from_a, from_b}`` (generations from each), or ``None`` if unrelated."""
    _require_models(db, a, b)
    rows = db.read("lineage_lowest_common_ancestor", a=a, b=b)
    if not rows:
        return None
    r = rows[0]
    return {"id": r["id"], "name": r["name"], "from_a": r["fromA"], "from_b": r["fromB"]}


def siblings(db: Database, model_id: str) -> list[dict[str, Any]]:
    """Models sharing a recovered parent with this model: ``{id, name, status, format,
    confidence, relation, parent_id, parent_name}`` (one row per shared parent)."""
    _require_models(db, model_id)
    return [
        {"id": r["id"], "name": r["name"], "status": r["status"], "format": r["format"],
         "confidence": native(r["confidence"]), "relation": r["relation"],
         "parent_id": r["parentId"], "parent_name": r["parentName"]}
        for r in db.read("lineage_siblings", id=model_id)
    ]


def declared_mismatches(db: Database, model_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Models whose declared lineage disagrees with the recovered one, by parent or by
    relation, one per model: ``{id, name, reason ('parent' | 'relation'), relation
    (declared, as the card says it), declared_name, declared_id, declared_external,
    declared_bases, recovered_id, recovered_name, recovered_relation,
    relation_to_declared, confidence, recovered_parents}``. A declared merge agrees only
    when its recovered parents are exactly its declared bases
    (``cypher/lineage_declared_mismatches.cypher``). ``declared_*``: the declared base the
    disagreement is about (``declared_external``: it is not in the catalogue);
    ``declared_bases``: every declared base ``{id, name, external}``; ``recovered_*``: the
    main recovered parent; ``relation_to_declared``: the relation of the recovered edge to
    that declared base, None when there is none. By model name, at
    most ``limit``.  With ``model_id``, that model's alone (``ModelNotFound`` when it does
    not exist)."""
    _, limit = _paging(0, limit)
    if model_id is not None:
        _require_models(db, model_id)
    return [
        {"id": r["id"], "name": r["name"], "reason": r["reason"], "relation": r["relation"],
         "declared_name": r["declaredName"], "declared_id": r["declaredId"],
         "declared_external": bool(r["declaredExternal"]),
         "declared_bases": [{"id": b["id"], "name": b["name"], "external": bool(b["external"])}
                            for b in r["declaredBases"] or []],
         "recovered_id": r["recoveredId"], "recovered_name": r["recoveredName"],
         "recovered_relation": r["recoveredRelation"], "relation_to_declared": r["relationToDeclared"],
         "confidence": native(r["confidence"]),
         "recovered_parents": [native(dict(p)) for p in r["recoveredParents"] or []]}
        for r in db.read("lineage_declared_mismatches", id=model_id, limit=limit)
    ]


def statistics(db: Database) -> CatalogueStatistics:
    """Counts of everything stored, with consistency checks (see
    :class:`~heritage.catalogue.records.CatalogueStatistics`)."""
    r = db.read("catalogue_statistics")[0]
    return CatalogueStatistics(
        models=r["models"],
        adapters=r["adapters"],
        models_by_status={x["status"]: x["count"] for x in r["modelsByStatus"]},
        families=r["families"],
        derived_edges=r["derivedEdges"],
        declared_edges=r["declaredEdges"],
        external_models=r["externalModels"],
        fingerprints=r["fingerprints"],
        jobs_by_state={x["state"]: x["count"] for x in r["jobsByState"]},
        unplaced_models=r["unplacedModels"],
        stale_families=r["staleFamilies"] or 0,
        empty_families=r["emptyFamilies"] or 0,
    )


def family_size_distribution(db: Database) -> dict[int, int]:
    """{family size: number of families of that size}, from real membership."""
    return {int(r["size"]): int(r["families"]) for r in db.read("catalogue_family_sizes")}
