"""Writing family plans: every change to a family's tree happens in ONE write transaction.

The steps, all inside the caller's transaction:

1. ``family_lock`` locks the families (sorted ids, so concurrent writers cannot deadlock
   each other) and reads their versions; a family that changed since its plan was
   computed raises :class:`StaleFamilyError` and the caller recomputes;
   ``model_lock_placement`` then locks the planned members and checks that none of them
   sits in a family outside this commit (placed concurrently by another writer);
2. the caller's own change (create or delete a model) — ``before_trees``;
3. ``family_clear_trees`` -> ``family_write_trees`` -> ``family_update_stats``;
4. ``family_delete_empty`` removes families left without members.

If anything fails between 1 and 4 the transaction rolls back and the old trees stay as
they were: readers see either the old or the new genealogy, never a mix.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from collections.abc import Callable, Sequence

from graph.driver import GraphTransaction
from heritage.catalogue.planning import FamilyPlan
from heritage.catalogue.retry import DataChanged

__all__ = ["StaleFamilyError", "commit_plans", "lock_families", "clear_trees", "write_trees",
           "update_stats", "delete_empty_families", "new_run_id"]

log = logging.getLogger(__name__)


class StaleFamilyError(DataChanged):
    """A family changed between planning and writing; recompute the plan and retry."""


def new_run_id() -> str:
    """Id stamped on the DERIVED_FROM edges written together (``runId``)."""
    return uuid.uuid4().hex


def lock_families(tx: GraphTransaction, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows = tx.run("family_lock", ids=sorted(set(ids)))
    return {r["id"]: {"version": r["version"], "members": frozenset(r["members"])} for r in rows}


def clear_trees(tx: GraphTransaction, family_ids: Sequence[str], members: Sequence[str]) -> None:
    tx.run("family_clear_trees", familyIds=list(family_ids), members=list(members))


def write_trees(tx: GraphTransaction, plans: Sequence[FamilyPlan], lam: float, run_id: str) -> None:
    rows = tx.run("family_write_trees", families=[p.write_row() for p in plans], **{"lambda": lam}, runId=run_id)
    written = {r["id"]: r for r in rows}
    for plan in plans:
        got = written.get(plan.family_id, {"memberships": 0, "edges": 0})
        if got["memberships"] != len(plan.members) or got["edges"] != len(plan.edges):
            # A planned member vanished (deleted concurrently): the plan is stale.
            raise StaleFamilyError(
                f"family {plan.family_id}: wrote {got['memberships']}/{len(plan.members)} members "
                f"and {got['edges']}/{len(plan.edges)} edges"
            )


def update_stats(tx: GraphTransaction, plans: Sequence[FamilyPlan]) -> None:
    tx.run("family_update_stats", families=[p.stats_row() for p in plans])


def delete_empty_families(tx: GraphTransaction, ids: Sequence[str] | None) -> int:
    rows = tx.run("family_delete_empty", ids=None if ids is None else list(ids))
    return int(rows[0]["deleted"]) if rows else 0


def _check(plan_id: str, expected_version: int | None, expected_members: frozenset[str],
           state: dict[str, Any]) -> None:
    if expected_version is None:
        # Planned as a new family: it must be the one we just created.
        if state["version"] != 0 or state["members"]:
            raise StaleFamilyError(f"family {plan_id} exists already")
        return
    if state["version"] != expected_version or state["members"] != expected_members:
        raise StaleFamilyError(
            f"family {plan_id} changed (version {state['version']}, expected {expected_version})"
        )


def commit_plans(
    tx: GraphTransaction,
    plans: Sequence[FamilyPlan],
    *,
    lam: float,
    run_id: str | None = None,
    absorbed: dict[str, tuple[int, frozenset[str]]] | None = None,
    before_trees: Callable[[GraphTransaction], None] | None = None,
) -> None:
    """Write ``plans`` (and delete ``absorbed`` families: id -> expected (version, members))
    in the transaction ``tx``; see the module docstring for the steps."""
    absorbed = absorbed or {}
    ids = sorted({p.family_id for p in plans} | set(absorbed))
    state = lock_families(tx, ids)
    for plan in plans:
        _check(plan.family_id, plan.expected_version, plan.expected_members, state[plan.family_id])
    for family_id, (version, members) in absorbed.items():
        _check(family_id, version, members, state[family_id])
    members = sorted({m for p in plans for m in p.members})
    for row in tx.run("model_lock_placement", ids=members):
        if row["familyId"] is not None and row["familyId"] not in state:
            # Placed into another family meanwhile (e.g. by another process's import).
            raise StaleFamilyError(f"model {row['id']} is now in family {row['familyId']}")
    if before_trees is not None:
        before_trees(tx)
    clear_trees(tx, ids, members)
    write_trees(tx, plans, lam, run_id or new_run_id())
    update_stats(tx, plans)
    delete_empty_families(tx, ids)
