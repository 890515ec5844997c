"""Changing what is stored: delete, rebuild a family, reprocess a model, recluster all.

Every operation computes the new trees first (outside any transaction), then writes the
change and every affected tree in ONE write transaction through
:func:`heritage.catalogue.commit.commit_plans`; if a family changed meanwhile the plan is
recomputed.  (``recluster`` writes a large catalogue in several such transactions, each
replacing a closed group of families whole; see :func:`recluster`.)  Deleting a model re-attaches its children because the family's tree is
rebuilt without it; a family left empty is deleted in the same transaction, so no stale
or orphaned Family node survives.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from typing import Any
from collections.abc import Callable

from graph.driver import GraphTransaction
from graph.errors import ConstraintViolation
from heritage.catalogue.commit import StaleFamilyError, commit_plans, delete_empty_families, new_run_id
from heritage.catalogue.context import Context
from heritage.catalogue.errors import FamilyNotFound, ModelNotFound
from heritage.catalogue.importer import constraint_kind, read_family
from heritage.catalogue.placement import declared_base_candidates, family_to_join
from heritage.catalogue.planning import FamilyPlan, Member, member_from_row, plan_family, plan_from_recovered
from heritage.catalogue.prepare import Prepared, open_model, prepare_model
from heritage.catalogue.recluster_source import CatalogueSource
from heritage.catalogue.retry import retry
from heritage.errors import HeritageError, ModelLoadError
from heritage.lineage.recovery import Mapper
from heritage.reading.fingerprint import FINGERPRINT_VERSION

__all__ = ["delete_model", "rebuild_family", "reprocess_model", "recluster"]

log = logging.getLogger(__name__)


def _without(ctx: Context, family_id: str, model_id: str
             ) -> tuple[list[FamilyPlan], dict[str, tuple[int, frozenset[str]]], list[Member]]:
    """Plans that take ``model_id`` out of ``family_id``: a rebuilt family, or its deletion."""
    state = read_family(ctx.db, family_id)
    if state is None:
        raise StaleFamilyError(f"family {family_id} disappeared")
    version, members = state
    everyone = frozenset(m.id for m in members)
    remaining = [m for m in members if m.id != model_id]
    if not remaining:
        return [], {family_id: (version, everyone)}, []
    fps = ctx.cache.get_many((m.id, m.sha256) for m in remaining)
    plan = plan_family(ctx.recovery, family_id, remaining, fps, expected_version=version,
                       expected_members=everyone)
    return [plan], {}, remaining


def delete_model(ctx: Context, model_id: str) -> dict[str, Any]:
    """Delete a model; its family's tree is rebuilt without it in the same transaction.

    Returns ``{id, name, family_id, family_deleted, children, path, uploaded}``
    (``children``: the former children, now re-attached within the family; ``path`` and
    ``uploaded``: the model's file and whether the API's upload stored it there).
    """
    def once() -> dict[str, Any]:
        rows = ctx.db.read("model_get", id=model_id)
        if not rows:
            raise ModelNotFound(model_id)
        model, family_id = rows[0]["model"], rows[0]["familyId"]
        name = model["name"]
        children = [r["id"] for r in ctx.db.read("lineage_descendants", id=model_id, depth=1)]
        plans, absorbed = [], {}
        if family_id:
            plans, absorbed, _ = _without(ctx, family_id, model_id)

        def delete(tx: GraphTransaction) -> None:
            if not tx.run("model_delete", id=model_id):
                raise StaleFamilyError(f"model {model_id} was deleted meanwhile")
            tx.run("catalogue_drop_orphan_placeholders")

        ctx.db.write_transaction(lambda tx: commit_plans(tx, plans, lam=ctx.recovery.lam,
                                                         absorbed=absorbed, before_trees=delete))
        ctx.cache.forget(model_id)
        log.info("deleted model %s (%s)", model_id, name)
        return {"id": model_id, "name": name, "family_id": family_id,
                "family_deleted": bool(family_id) and not plans, "children": children,
                "path": model.get("path"), "uploaded": bool(model.get("uploaded"))}

    with ctx.write_lock:
        return retry(f"delete model {model_id}", lambda _: once())


def rebuild_family(ctx: Context, family_id: str) -> dict[str, Any]:
    """Recompute and store one family's tree from its members' stored fingerprints.

    Returns ``{family_id, members, edges}`` (counts).
    """
    def once() -> dict[str, Any]:
        state = read_family(ctx.db, family_id)
        if state is None:
            raise FamilyNotFound(family_id)
        version, members = state
        if not members:
            ctx.db.write_transaction(lambda tx: delete_empty_families(tx, [family_id]))
            raise FamilyNotFound(family_id)
        fps = ctx.cache.get_many((m.id, m.sha256) for m in members)
        plan = plan_family(ctx.recovery, family_id, members, fps, expected_version=version,
                           expected_members=[m.id for m in members])
        ctx.db.write_transaction(lambda tx: commit_plans(tx, [plan], lam=ctx.recovery.lam))
        return {"family_id": family_id, "members": len(plan.members), "edges": len(plan.edges)}

    with ctx.write_lock:
        return retry(f"rebuild family {family_id}", lambda _: once())


def _profile_update(prepared: Prepared) -> dict[str, Any]:
    props = prepared.props()
    for key in ("id", "name", "description", "uploaded"):  # who owns the file does not change
        props.pop(key, None)
    return props


def reprocess_model(ctx: Context, model_id: str) -> str:
    """Re-read a model's weights from its stored path and re-place it.

    Success refreshes profile, fingerprint and placement and rebuilds the family (or
    families, if it moves) in one transaction.  A model that can no longer be read gets
    status ``error`` with the reason, and leaves its family (whose tree is rebuilt
    without it) until a later reprocess succeeds.  Returns the new status.
    """
    rows = ctx.db.read("model_get", id=model_id)
    if not rows:
        raise ModelNotFound(model_id)
    model = rows[0]["model"]
    ctx.db.write("model_set_status", id=model_id, status="processing", error=None)
    try:
        prepared = prepare_model(open_model(model["path"] or "", model["name"]),
                                 model.get("description"), model_id=model_id)
    except (ModelLoadError, HeritageError, OSError) as exc:
        _mark_error(ctx, model_id, f"reprocessing failed: {exc}")
        return "error"
    with ctx.write_lock:
        try:
            retry(f"reprocess model {model_id}", lambda _: _store_reprocessed(ctx, prepared))
        except ConstraintViolation as exc:
            if constraint_kind(exc) != "sha256":
                raise
            twin = ctx.db.read("model_ids_by_sha256", sha256s=[prepared.sha256])
            other = twin[0]["name"] if twin else "another model"
            _mark_error(ctx, model_id, f"the weights at {prepared.path} are now identical to {other}'s")
            return "error"
    ctx.cache.forget(model_id)
    ctx.cache.put(model_id, prepared.sha256, prepared.fingerprint, len(prepared.data))
    return "ok"


def _replaced_plans(ctx: Context, prepared: Prepared, old_family: str | None
                    ) -> tuple[list[FamilyPlan], dict[str, tuple[int, frozenset[str]]]]:
    """Plans for a model whose weights changed: out of its old family if it moves, into
    the family it joins now (or a new one)."""
    model_id, fp = prepared.id, prepared.fingerprint
    new_family = family_to_join(ctx.db, ctx.cache, ctx.config, fp, prepared.profile.declared_base,
                                exclude=[model_id])
    plans: list[FamilyPlan] = []
    absorbed: dict[str, tuple[int, frozenset[str]]] = {}
    if old_family and old_family != new_family:
        plans, absorbed, _ = _without(ctx, old_family, model_id)
    if new_family is None:
        plans.append(plan_family(ctx.recovery, uuid.uuid4().hex, [prepared.member()], {model_id: fp},
                                 expected_version=None))
        return plans, absorbed
    state = read_family(ctx.db, new_family)
    if state is None:
        raise StaleFamilyError(f"family {new_family} disappeared")
    version, members = state
    remaining = [m for m in members if m.id != model_id]
    fps = ctx.cache.get_many((m.id, m.sha256) for m in remaining)
    fps[model_id] = fp
    plans.append(plan_family(ctx.recovery, new_family, [*remaining, prepared.member()], fps,
                             expected_version=version, expected_members=[m.id for m in members]))
    return plans, absorbed


def _store_reprocessed(ctx: Context, prepared: Prepared) -> None:
    """The refreshed model and every tree it changes, in ONE write transaction."""
    current = ctx.db.read("model_get", id=prepared.id)
    if not current:
        raise ModelNotFound(prepared.id)
    plans, absorbed = _replaced_plans(ctx, prepared, current[0]["familyId"])

    def update(tx: GraphTransaction) -> None:
        tx.run("model_update_profile", id=prepared.id, props=_profile_update(prepared),
               fingerprint=prepared.data, fingerprintVersion=FINGERPRINT_VERSION)
        row = prepared.declared_row()
        if row is not None:
            tx.run("model_link_declared_bases", rows=[row])
        tx.run("catalogue_drop_orphan_placeholders")

    ctx.db.write_transaction(lambda tx: commit_plans(tx, plans, lam=ctx.recovery.lam, absorbed=absorbed,
                                                     before_trees=update))


def _mark_error(ctx: Context, model_id: str, message: str) -> None:
    """Status ``error`` with ``message``; the model leaves its family, whose tree is rebuilt."""
    def once() -> None:
        rows = ctx.db.read("model_get", id=model_id)
        if not rows:
            raise ModelNotFound(model_id)
        family_id = rows[0]["familyId"]
        plans, absorbed = [], {}
        if family_id:
            plans, absorbed, _ = _without(ctx, family_id, model_id)

        def mark(tx: GraphTransaction) -> None:
            tx.run("model_set_status", id=model_id, status="error", error=message)

        ctx.db.write_transaction(lambda tx: commit_plans(tx, plans, lam=ctx.recovery.lam,
                                                         absorbed=absorbed, before_trees=mark))

    log.warning("model %s: %s", model_id, message)
    with ctx.write_lock:
        retry(f"mark model {model_id} failed", lambda _: once())
    ctx.cache.forget(model_id)


def _reuse_ids(new_families: list[list[str]], old: dict[str, set[str]]) -> list[str]:
    """An id per new family: the old family it overlaps most (each old id used once; ties:
    the larger id), largest new families first; a fresh id when none overlaps."""
    old_of = {model: fid for fid, members in old.items() for model in members}
    ids: list[str | None] = [None] * len(new_families)
    used: set[str] = set()
    for i in sorted(range(len(new_families)), key=lambda i: -len(new_families[i])):
        overlap: dict[str, int] = {}
        for model in new_families[i]:
            fid = old_of.get(model)
            if fid is not None and fid not in used:
                overlap[fid] = overlap.get(fid, 0) + 1
        if overlap:
            best = max((count, fid) for fid, count in overlap.items())[1]
            ids[i] = best
            used.add(best)
    return [fid or uuid.uuid4().hex for fid in ids]


def _replacement_groups(plans: list[FamilyPlan], old: dict[str, tuple[int, frozenset[str]]]
                        ) -> list[tuple[list[FamilyPlan], dict[str, tuple[int, frozenset[str]]]]]:
    """Group new families with the old families they replace, so that each group can be
    written in its own transaction without a model ever being in two families or none.

    Two families belong to one group when they share a model (a new family and the old
    families of its members, and the old family whose id it reuses); the groups are the
    connected components of that overlap.  Old families that overlap no new family (all
    their models gone) are groups of their own, to be emptied and deleted.  Returns, per
    group, its plans with ``expected_version``/``expected_members`` set from ``old``, and
    the old families it absorbs (``{id: (version, members)}``).
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    old_of = {model: fid for fid, (_, members) in old.items() for model in members}
    for fid in old:
        find("old:" + fid)
    for i, plan in enumerate(plans):
        node = f"new:{i}"
        find(node)
        if plan.family_id in old:
            union(node, "old:" + plan.family_id)
        for model in plan.members:
            if model in old_of:
                union(node, "old:" + old_of[model])
    reused = {p.family_id for p in plans}
    groups: dict[str, tuple[list[FamilyPlan], dict[str, tuple[int, frozenset[str]]]]] = {}
    for i, plan in enumerate(plans):
        if plan.family_id in old:
            version, members = old[plan.family_id]
            plan = replace(plan, expected_version=version, expected_members=members)
        groups.setdefault(find(f"new:{i}"), ([], {}))[0].append(plan)
    for fid, state in old.items():
        if fid not in reused:
            groups.setdefault(find("old:" + fid), ([], {}))[1][fid] = state
    return list(groups.values())


def _transactions(groups: list[tuple[list[FamilyPlan], dict[str, tuple[int, frozenset[str]]]]],
                  models_per_transaction: int
                  ) -> list[tuple[list[FamilyPlan], dict[str, tuple[int, frozenset[str]]]]]:
    """Pack whole groups into transactions of about ``models_per_transaction`` models
    each (a group larger than that is one transaction of its own)."""
    batches: list[tuple[list[FamilyPlan], dict[str, tuple[int, frozenset[str]]]]] = []
    size = models_per_transaction
    for plans, absorbed in groups:
        weight = sum(len(p.members) for p in plans) + sum(len(m) for _, m in absorbed.values())
        if not batches or size + weight > models_per_transaction:
            batches.append(([], {}))
            size = 0
        batches[-1][0].extend(plans)
        batches[-1][1].update(absorbed)
        size += weight
    return batches


def recluster(ctx: Context, progress: Callable[[float, str], None] | None = None,
              mapper: Mapper | None = None) -> dict[str, Any]:
    """Recompute every family and tree from the stored fingerprints with the configured
    clustering, and replace the genealogy, each family whole.

    Families come from the configured search (sparse nearest-neighbour candidates by
    default, :mod:`heritage.lineage.candidates`); ``mapper`` (e.g. a Dask cluster's, see
    :mod:`heritage.distributed`) runs the candidate searches and family trees elsewhere.

    The new genealogy is written in transactions of about ``recluster_batch`` models
    (:class:`~heritage.catalogue.config.CatalogueConfig`), so that a hub-sized catalogue
    never needs one transaction holding every membership and edge (Neo4j bounds a
    transaction's memory).  Each transaction replaces a closed group: new families
    together with every old family that shares a model with them
    (:func:`_replacement_groups`), through the same commit as a tree rebuild
    (:func:`~heritage.catalogue.commit.commit_plans`: versions checked, old trees cleared,
    new ones written, emptied families deleted).  So at every moment each model is in
    exactly one family and every family's tree is whole (old or new); while a large
    recluster runs, some families are already new and others still old.  A small
    catalogue is one transaction.  A family changed by another writer meanwhile makes
    the recluster start again from the stored state.

    Family ids are kept for new families that overlap an old one; families no longer
    needed are deleted.  Returns counts: ``models``, ``families``, ``edges``,
    ``reused_families``, ``new_families``, ``deleted_families``, ``transactions``,
    ``seconds``.
    """
    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    def once() -> dict[str, Any]:
        started = time.perf_counter()
        report(0.05, "reading model keys")
        rows = [r for r in ctx.db.read("model_keys_all") if r["hasFingerprint"]]
        members = [member_from_row(r) for r in rows]
        name_to_id = {m.name: m.id for m in members if not m.is_adapter}
        declared = {
            m.id: next((name_to_id[n] for n in declared_base_candidates(m.declared_base) if n in name_to_id), None)
            for m in members if m.is_adapter
        }
        report(0.1, f"recovering families and trees of {len(members)} models")
        # Fingerprints are read per candidate batch and per family, never all at once.
        source = CatalogueSource(ctx.db, members, rows, ctx.cache)
        genealogy = ctx.recovery.recover_source(source, declared_bases=declared, mapper=mapper)
        old = {r["id"]: (int(r["version"] or 0), frozenset(r["members"]))
               for r in ctx.db.read("catalogue_family_memberships")}
        ids = _reuse_ids([f.members for f in genealogy.families], {fid: set(m) for fid, (_, m) in old.items()})
        plans = [plan_from_recovered(ctx.recovery, fid, family) for fid, family in zip(ids, genealogy.families)]
        batches = _transactions(_replacement_groups(plans, old), ctx.config.recluster_batch)
        run_id = new_run_id()
        for done, (batch, absorbed) in enumerate(batches):
            report(0.8 + 0.2 * done / len(batches),
                   f"writing {len(plans)} families (transaction {done + 1} of {len(batches)})")
            ctx.db.write_transaction(lambda tx: commit_plans(tx, batch, lam=ctx.recovery.lam,
                                                             run_id=run_id, absorbed=absorbed))
        if ctx.db.read("model_unplaced"):
            raise StaleFamilyError("models were added while reclustering")
        reused = sum(1 for fid in ids if fid in old)
        return {
            "models": len(members),
            "families": len(plans),
            "edges": sum(len(p.edges) for p in plans),
            "reused_families": reused,
            "new_families": len(plans) - reused,
            "deleted_families": len(set(old) - set(ids)),
            "transactions": len(batches),
            "seconds": round(time.perf_counter() - started, 3),
        }

    with ctx.write_lock:
        return retry("recluster", lambda _: once())
