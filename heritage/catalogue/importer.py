"""Importing models: one at a time (one transaction each) or in batches (UNWIND writes).

``import_one``: hash -> already stored? -> fingerprint -> place -> ONE write transaction
that creates the Model + Fingerprint (+ declared base) and rewrites the tree of the family
it joins.  A bad model writes nothing.

``import_batch``: per batch of ``batch_size`` entries, hash them, skip what is stored
(idempotent by SHA-256), fingerprint the rest and create them with one UNWIND statement;
then :func:`place_unplaced` puts every model still without a family into one — including
models left unplaced by an interrupted earlier run, which makes the import resumable.
Within a batch, new models are linked by single linkage (threshold) among themselves and
to their nearest stored relative; families that the new models connect are merged.

An unmerged adapter joins the family of its declared base when that is stored and its
shapes fit, else the largest family whose root it fits.  When nothing fits (the base is
not in the catalogue) the adapter is still stored, status ``ok``, as the only member and
root of a family of its own, with a logged warning; its declared base stays recorded
(``DECLARED_BASE`` to the model or an ``ExternalModel`` placeholder).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from pathlib import Path
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from graph.database import Database
from graph.driver import GraphTransaction
from graph.errors import ConstraintViolation
from heritage.catalogue.commit import StaleFamilyError, commit_plans
from heritage.catalogue.context import MAX_ATTEMPTS, Context
from heritage.catalogue.errors import ConcurrentUpdateError, NameTakenError
from heritage.catalogue.placement import adapter_family, nearest_relatives
from heritage.catalogue.planning import FamilyPlan, Member, member_from_row, plan_family
from heritage.catalogue.prepare import Opened, Prepared, open_model, prepare_model
from heritage.catalogue.records import ImportResult, ImportSummary
from heritage.catalogue.timing import Timings
from heritage.lineage.distances import DistanceMetric, distances_to
from heritage.errors import HeritageError, ModelLoadError
from heritage.reading.fingerprint import Fingerprint

__all__ = ["import_one", "import_batch", "place_unplaced", "read_family", "create_models",
           "ImportProgress", "constraint_kind"]

log = logging.getLogger(__name__)

ImportProgress = Callable[[ImportResult], None]


# --------------------------------------------------------------------------- shared pieces


def constraint_kind(exc: ConstraintViolation) -> str:
    """Which uniqueness a write broke: ``name``, ``sha256``, ``id`` or ``other``."""
    message = exc.neo4j_message or str(exc)
    for kind in ("sha256", "name", "modelId", "id"):
        if f"`{kind}`" in message:
            return "id" if kind == "modelId" else kind
    return "other"


def create_models(tx: GraphTransaction, prepared: Sequence[Prepared]) -> None:
    """Create models + fingerprints + declared-base edges in ``tx`` (UNWIND, one statement each)."""
    tx.run("model_create", rows=[p.create_row() for p in prepared])
    declared = [row for p in prepared if (row := p.declared_row()) is not None]
    if declared:
        tx.run("model_link_declared_bases", rows=declared)
    tx.run("model_resolve_placeholders", ids=[p.id for p in prepared])
    tx.run("catalogue_drop_orphan_placeholders")


def read_family(db: Database, family_id: str) -> tuple[int, list[Member]] | None:
    """A family's version and members, or ``None`` when it does not exist."""
    rows = db.read("family_member_keys", id=family_id)
    if not rows:
        return None
    return int(rows[0]["version"] or 0), [member_from_row(m) for m in rows[0]["members"]]


def _existing_by_sha(db: Database, sha256s: Iterable[str]) -> dict[str, dict]:
    return {r["sha256"]: r for r in db.read("model_ids_by_sha256", sha256s=sorted(set(sha256s)))}


def _taken_names(db: Database, names: Iterable[str]) -> dict[str, dict]:
    return {r["name"]: r for r in db.read("model_ids_by_name", names=sorted(set(names)))}


def _family_of(db: Database, model_ids: Sequence[str]) -> dict[str, str]:
    return {r["id"]: r["familyId"] for r in db.read("model_families", ids=list(model_ids))} if model_ids else {}


def _warn_lone_adapter(name: str, declared_base: str | None) -> None:
    """An adapter whose base is not stored (or whose shapes fit no stored model) is kept,
    as the only member and root of its own family: the adapter is a real model and its base
    may be imported later (a recluster then reconsiders it).  It is never refused."""
    log.warning("adapter %s fits no stored model (declared base: %s): it stands alone in a new family",
                name, declared_base or "none")


# --------------------------------------------------------------------------- one model


def _plan_single(ctx: Context, prepared: Prepared, timings: Timings) -> FamilyPlan:
    fp = prepared.fingerprint
    cfg = ctx.config
    if prepared.profile.is_adapter:
        family_id = adapter_family(ctx.db, fp, prepared.profile.declared_base, ctx.cache, timings)
        if family_id is None:
            _warn_lone_adapter(prepared.name, prepared.profile.declared_base)
    else:
        relatives = nearest_relatives(ctx.db, fp, ctx.cache, exact_limit=cfg.exact_placement_limit,
                                      candidates=cfg.placement_candidates,
                                      max_approximate=cfg.max_approximate_distance, timings=timings)
        near = relatives[0] if relatives and relatives[0].distance <= cfg.threshold else None
        family_id = near.family_id if near else None
    new_member = prepared.member()
    if family_id is None:
        with timings.measure("trees"):
            return plan_family(ctx.recovery, uuid.uuid4().hex, [new_member], {prepared.id: fp},
                               expected_version=None)
    with timings.measure("neo4j"):
        state = read_family(ctx.db, family_id)
    if state is None:
        raise StaleFamilyError(f"family {family_id} disappeared")
    version, members = state
    with timings.measure("neo4j"):
        fps = ctx.cache.get_many((m.id, m.sha256) for m in members)
    fps[prepared.id] = fp
    with timings.measure("trees"):
        return plan_family(ctx.recovery, family_id, [*members, new_member], fps,
                           expected_version=version, expected_members=[m.id for m in members])


def _duplicate(db: Database, existing: dict, name: str, path: Path) -> ImportResult:
    family = _family_of(db, [existing["id"]]).get(existing["id"])
    return ImportResult(model_id=existing["id"], name=existing.get("name") or name, status="duplicate",
                        family_id=family, path=str(path))


def import_one(ctx: Context, path: str | Path, name: str | None = None,
               description: str | None = None, timings: Timings | None = None) -> ImportResult:
    """Import one model; see the module docstring.  Raises :class:`NameTakenError`."""
    timings = timings or Timings()
    path = Path(path)
    display = name or path.name
    try:
        with timings.measure("hash"):
            opened = open_model(path, name)
    except (ModelLoadError, OSError) as exc:
        return ImportResult(model_id=None, name=display, status="failed", error=str(exc), path=str(path))
    with timings.measure("neo4j"):
        existing = _existing_by_sha(ctx.db, [opened.sha256]).get(opened.sha256)
        if existing is not None:
            return _duplicate(ctx.db, existing, opened.name, opened.path)
        taken = _taken_names(ctx.db, [opened.name]).get(opened.name)
    if taken is not None:
        raise NameTakenError(opened.name, taken["id"])
    try:
        with timings.measure("fingerprint"):
            prepared = prepare_model(opened, description)
    except (ModelLoadError, OSError) as exc:
        return ImportResult(model_id=None, name=opened.name, status="failed", error=str(exc),
                            path=str(opened.path))
    with ctx.write_lock:
        for _attempt in range(MAX_ATTEMPTS):
            plan = _plan_single(ctx, prepared, timings)
            try:
                with timings.measure("neo4j"):
                    ctx.db.write_transaction(lambda tx, plan=plan: commit_plans(
                        tx, [plan], lam=ctx.recovery.lam,
                        before_trees=lambda tx: create_models(tx, [prepared])))
                break
            except StaleFamilyError as exc:
                log.info("retrying the import of %s: %s", opened.name, exc)
            except ConstraintViolation as exc:
                kind = constraint_kind(exc)
                if kind == "sha256":
                    existing = _existing_by_sha(ctx.db, [opened.sha256]).get(opened.sha256)
                    if existing is not None:
                        return _duplicate(ctx.db, existing, opened.name, opened.path)
                if kind == "name":
                    taken = _taken_names(ctx.db, [opened.name]).get(opened.name)
                    raise NameTakenError(opened.name, taken["id"] if taken else None) from None
                raise
        else:
            raise ConcurrentUpdateError(f"could not place {opened.name}: its family kept changing")
    ctx.cache.put(prepared.id, prepared.sha256, prepared.fingerprint, len(prepared.data))
    log.info("imported %s as %s into family %s", opened.name, prepared.id, plan.family_id)
    return ImportResult(model_id=prepared.id, name=opened.name, status="created",
                        family_id=plan.family_id, path=str(opened.path))


# --------------------------------------------------------------------------- batches


def _store_batch(db: Database, prepared: list[Prepared], results: dict[int, ImportResult],
                 index_of: dict[str, int], timings: Timings) -> list[Prepared]:
    """Create ``prepared`` in one transaction; on a constraint race fall back to one by one."""
    if not prepared:
        return []
    try:
        with timings.measure("neo4j"):
            db.write_transaction(lambda tx: create_models(tx, prepared))
        return prepared
    except ConstraintViolation:
        log.info("batch write hit a uniqueness constraint; storing its models one by one")
    stored = []
    for p in prepared:
        try:
            with timings.measure("neo4j"):
                db.write_transaction(lambda tx, p=p: create_models(tx, [p]))
            stored.append(p)
        except ConstraintViolation as exc:
            kind = constraint_kind(exc)
            i = index_of[p.id]
            if kind == "sha256":
                existing = _existing_by_sha(db, [p.sha256]).get(p.sha256)
                results[i] = ImportResult(model_id=existing["id"] if existing else None, name=p.name,
                                          status="duplicate", path=str(p.path))
            else:
                results[i] = ImportResult(model_id=None, name=p.name, status="failed", path=str(p.path),
                                          error=str(NameTakenError(p.name)) if kind == "name" else str(exc))
    return stored


def import_batch(
    ctx: Context,
    entries: Sequence[tuple[str, Path]],
    *,
    description: str | None = None,
    progress: ImportProgress | None = None,
    stage: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Import ``(name, path)`` entries; see the module docstring.  Never raises for a bad model."""
    started = time.perf_counter()
    timings = Timings()
    results: dict[int, ImportResult] = {}
    run_sha: dict[str, str] = {}  # sha256 -> model id, for repeats inside this run
    run_names: set[str] = set()
    batch_size = max(1, ctx.config.batch_size)

    def done(i: int, result: ImportResult) -> None:
        results[i] = result
        if progress is not None:
            progress(result)

    for start in range(0, len(entries), batch_size):
        batch = list(enumerate(entries[start : start + batch_size], start))
        opened: list[tuple[int, Opened]] = []
        for i, (name, path) in batch:
            try:
                with timings.measure("hash"):
                    opened.append((i, open_model(path, name)))
            except (ModelLoadError, OSError) as exc:
                done(i, ImportResult(model_id=None, name=name, status="failed", error=str(exc), path=str(path)))
        with timings.measure("neo4j"):
            existing = _existing_by_sha(ctx.db, (o.sha256 for _, o in opened))
            taken = _taken_names(ctx.db, (o.name for _, o in opened))
        prepared: list[Prepared] = []
        index_of: dict[str, int] = {}
        for i, o in opened:
            if o.sha256 in existing:
                row = existing[o.sha256]
                done(i, ImportResult(model_id=row["id"], name=row["name"], status="duplicate", path=str(o.path)))
            elif o.sha256 in run_sha:
                done(i, ImportResult(model_id=run_sha[o.sha256], name=o.name, status="duplicate", path=str(o.path)))
            elif o.name in taken or o.name in run_names:
                done(i, ImportResult(model_id=None, name=o.name, status="failed", path=str(o.path),
                                     error=str(NameTakenError(o.name, taken.get(o.name, {}).get("id")))))
            else:
                try:
                    with timings.measure("fingerprint"):
                        p = prepare_model(o, description)
                except (HeritageError, OSError) as exc:
                    done(i, ImportResult(model_id=None, name=o.name, status="failed", error=str(exc),
                                         path=str(o.path)))
                    continue
                prepared.append(p)
                index_of[p.id] = i
                run_sha[o.sha256] = p.id
                run_names.add(o.name)
        stored = _store_batch(ctx.db, prepared, results, index_of, timings)
        stored_ids = {p.id for p in stored}
        for p in prepared:
            if p.id in stored_ids:
                ctx.cache.put(p.id, p.sha256, p.fingerprint, len(p.data))
                done(index_of[p.id], ImportResult(model_id=p.id, name=p.name, status="created", path=str(p.path)))
            else:
                done(index_of[p.id], results[index_of[p.id]])

    if stage is not None:
        stage("placing models into families and rebuilding their trees")
    families = place_unplaced(ctx, timings)
    ordered = [results[i] for i in range(len(entries))]
    ids = [r.model_id for r in ordered if r.model_id]
    with timings.measure("neo4j"):
        family_of = _family_of(ctx.db, ids)
    for r in ordered:
        if r.model_id:
            r.family_id = family_of.get(r.model_id)
    return ImportSummary(results=ordered, families=families, seconds=time.perf_counter() - started,
                         timings=timings.as_dict())


# --------------------------------------------------------------------------- placement of new models


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, x: object) -> object:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: object, b: object) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def _link_new_models(ctx: Context, members: list[Member], fps: dict[str, Fingerprint],
                     uf: _UnionFind, timings: Timings) -> None:
    """Union new models of one backbone that are within the threshold of each other:
    nearest neighbours by placement vector first, then exact distances for those only.
    Models with different numbers of blocks (students and teachers), whose placement
    vectors do not compare, are compared exactly."""
    n = len(members)
    if n < 2:
        return
    k = min(ctx.config.placement_candidates, n - 1)
    cutoff = ctx.config.max_approximate_distance
    blocks = np.array([fps[m.id].block_count for m in members])
    with timings.measure("placement"):
        for count in sorted(set(blocks.tolist()))[:-1]:
            smaller = np.flatnonzero(blocks == count)
            larger = np.flatnonzero(blocks > count)
            for i in smaller:
                exact = distances_to(fps[members[i].id], [fps[members[j].id] for j in larger], DistanceMetric.L2)
                for j, d in zip(larger, exact):
                    if d <= ctx.config.threshold:
                        uf.union(members[i].id, members[int(j)].id)
        vectors = np.stack([fps[m.id].placement_vector() for m in members]).astype(np.float32)
        squared = (vectors**2).sum(axis=1)
        for start in range(0, n, 512):
            block = vectors[start : start + 512]
            d2 = squared[start : start + 512, None] + squared[None, :] - 2.0 * block @ vectors.T
            for row, i in enumerate(range(start, min(start + 512, n))):
                d2[row, i] = np.inf
                near = np.argpartition(d2[row], k - 1)[:k] if k < n - 1 else np.flatnonzero(np.isfinite(d2[row]))
                near = [int(j) for j in near if d2[row, j] <= cutoff**2]
                if not near:
                    continue
                exact = distances_to(fps[members[i].id], [fps[members[j].id] for j in near], DistanceMetric.L2)
                for j, d in zip(near, exact):
                    if d <= ctx.config.threshold:
                        uf.union(members[i].id, members[int(j)].id)


def _commit_component(ctx: Context, new_members: list[Member], family_ids: set[str],
                      fps: dict[str, Fingerprint], timings: Timings) -> str:
    """Write one component of new models (joining/merging ``family_ids``); returns its family."""
    for attempt in range(MAX_ATTEMPTS):
        states: dict[str, tuple[int, list[Member]]] = {}
        with timings.measure("neo4j"):
            for fid in sorted(family_ids):
                state = read_family(ctx.db, fid)
                if state is not None:
                    states[fid] = state
        if states:
            target = max(states, key=lambda fid: (len(states[fid][1]), fid))
            version, members = states[target]
            absorbed = {fid: (v, frozenset(m.id for m in ms)) for fid, (v, ms) in states.items() if fid != target}
            moved = [m for fid in absorbed for m in states[fid][1]]
            all_members = [*members, *moved, *new_members]
        else:
            target, version, members, absorbed = uuid.uuid4().hex, None, [], {}
            all_members = list(new_members)
        with timings.measure("neo4j"):
            known = ctx.cache.get_many((m.id, m.sha256) for m in all_members if m.id not in fps)
        known.update(fps)
        with timings.measure("trees"):
            plan = plan_family(ctx.recovery, target, all_members, known, expected_version=version,
                               expected_members=[m.id for m in members])
        try:
            with timings.measure("neo4j"):
                ctx.db.write_transaction(lambda tx, plan=plan, absorbed=absorbed: commit_plans(
                    tx, [plan], lam=ctx.recovery.lam, absorbed=absorbed))
            return target
        except StaleFamilyError as exc:
            log.info("retrying placement (attempt %d): %s", attempt + 1, exc)
    raise ConcurrentUpdateError("could not place new models: their families kept changing")


def place_unplaced(ctx: Context, timings: Timings | None = None) -> list[str]:
    """Put every ok model without a family into one; returns the families written."""
    timings = timings or Timings()
    cfg = ctx.config
    with ctx.write_lock:
        with timings.measure("neo4j"):
            rows = ctx.db.read("model_unplaced")
        if not rows:
            return []
        members = [member_from_row(r) for r in rows]
        structure = {r["id"]: r["backboneKey"] or r["structureHash"] for r in rows}
        with timings.measure("neo4j"):
            fps = ctx.cache.get_many((m.id, m.sha256) for m in members)
        members = [m for m in members if m.id in fps]
        full = [m for m in members if not m.is_adapter]
        adapters = [m for m in members if m.is_adapter]
        touched: list[str] = []

        uf = _UnionFind()
        with timings.measure("neo4j"):
            placed = {r["backboneKey"] for r in ctx.db.read(
                "placement_placed_structures", backboneKeys=sorted({structure[m.id] for m in full}))}
        for m in full:
            uf.find(m.id)
            if structure[m.id] not in placed:
                continue  # no stored model of this architecture: nothing to search
            relatives = nearest_relatives(ctx.db, fps[m.id], ctx.cache, exact_limit=cfg.placement_candidates,
                                          candidates=cfg.placement_candidates,
                                      max_approximate=cfg.max_approximate_distance, timings=timings)
            if relatives and relatives[0].distance <= cfg.threshold:
                uf.union(m.id, ("family", relatives[0].family_id))
        groups: dict[str, list[Member]] = defaultdict(list)
        for m in full:
            groups[structure[m.id]].append(m)
        for group in groups.values():
            _link_new_models(ctx, group, fps, uf, timings)
        components: dict[object, tuple[list[Member], set[str]]] = {}
        for key in list(uf.parent):
            root = uf.find(key)
            new, families = components.setdefault(root, ([], set()))
            if isinstance(key, tuple):
                families.add(key[1])
        by_id = {m.id: m for m in full}
        for key in list(uf.parent):
            if not isinstance(key, tuple):
                components[uf.find(key)][0].append(by_id[key])  # type: ignore[index]
        for new, families in components.values():
            if new:
                touched.append(_commit_component(ctx, new, families, fps, timings))

        by_family: dict[str | None, list[Member]] = defaultdict(list)
        for m in adapters:
            by_family[adapter_family(ctx.db, fps[m.id], m.declared_base, ctx.cache, timings)].append(m)
        for family_id, group in by_family.items():
            if family_id is None:
                for m in group:  # an adapter that fits no stored model stands alone
                    _warn_lone_adapter(m.name, m.declared_base)
                    touched.append(_commit_component(ctx, [m], set(), fps, timings))
            else:
                touched.append(_commit_component(ctx, group, {family_id}, fps, timings))
        return list(dict.fromkeys(touched))
