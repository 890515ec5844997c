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
from heritage.catalogue.context import Context
from heritage.catalogue.errors import InvalidNameError, NameTakenError
from heritage.catalogue.names import check_model_name, name_problem
from heritage.catalogue.placement import family_to_join
from heritage.catalogue.planning import FamilyPlan, Member, member_from_row, plan_family
from heritage.catalogue.retry import retry
from heritage.catalogue.prepare import Opened, Prepared, open_model, prepare_model
from heritage.catalogue.readers import LocalReader, ModelReader, ReadFailure
from heritage.catalogue.records import ImportResult, ImportSummary
from heritage.catalogue.timing import Timings
from heritage.lineage.distances import DistanceMetric, distances_to
from heritage.errors import ModelLoadError
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
    """The tree of the family the new model joins (or of its own new family)."""
    fp = prepared.fingerprint
    declared = prepared.profile.declared_base
    family_id = family_to_join(ctx.db, ctx.cache, ctx.config, fp, declared, timings=timings)
    if family_id is None and fp.is_adapter:
        _warn_lone_adapter(prepared.name, declared)
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


def _failed(name: str, path: Path, error: object) -> ImportResult:
    return ImportResult(model_id=None, name=name, status="failed", error=str(error), path=str(path))


def _open_new(ctx: Context, path: Path, name: str | None, timings: Timings) -> Opened | ImportResult:
    """The model at ``path`` opened and hashed, or the result that ends its import here
    (unreadable: failed; same weights stored: duplicate).  Raises for a bad or taken name."""
    display = check_model_name(name) if name is not None else path.name
    try:
        with timings.measure("hash"):
            opened = open_model(path, name)
    except (ModelLoadError, OSError) as exc:
        return _failed(display, path, exc)
    check_model_name(opened.name)  # a name taken from the file itself
    with timings.measure("neo4j"):
        existing = _existing_by_sha(ctx.db, [opened.sha256]).get(opened.sha256)
        if existing is not None:
            return _duplicate(ctx.db, existing, opened.name, opened.path)
        taken = _taken_names(ctx.db, [opened.name]).get(opened.name)
    if taken is not None:
        raise NameTakenError(opened.name, taken["id"])
    return opened


def _lost_race(ctx: Context, prepared: Prepared, exc: ConstraintViolation) -> ImportResult:
    """Another writer stored the same weights (a duplicate result) or took the name
    (:class:`NameTakenError`) between our checks and our write."""
    kind = constraint_kind(exc)
    if kind == "sha256":
        existing = _existing_by_sha(ctx.db, [prepared.sha256]).get(prepared.sha256)
        if existing is not None:
            return _duplicate(ctx.db, existing, prepared.name, prepared.path)
    if kind == "name":
        taken = _taken_names(ctx.db, [prepared.name]).get(prepared.name)
        raise NameTakenError(prepared.name, taken["id"] if taken else None) from None
    raise exc


def _store_one(ctx: Context, prepared: Prepared, timings: Timings) -> ImportResult:
    """Create the model and rewrite its family's tree in ONE transaction (planned again
    whenever the family changed under the plan)."""
    def attempt(_: int) -> ImportResult:
        plan = _plan_single(ctx, prepared, timings)
        try:
            with timings.measure("neo4j"):
                ctx.db.write_transaction(lambda tx: commit_plans(
                    tx, [plan], lam=ctx.recovery.lam, before_trees=lambda tx: create_models(tx, [prepared])))
        except ConstraintViolation as exc:
            return _lost_race(ctx, prepared, exc)
        return ImportResult(model_id=prepared.id, name=prepared.name, status="created",
                            family_id=plan.family_id, path=str(prepared.path))

    with ctx.write_lock:
        result = retry(f"place {prepared.name}", attempt)
    if result.status == "created":
        ctx.cache.put(prepared.id, prepared.sha256, prepared.fingerprint, len(prepared.data))
        log.info("imported %s as %s into family %s", prepared.name, prepared.id, result.family_id)
    return result


def import_one(ctx: Context, path: str | Path, name: str | None = None,
               description: str | None = None, timings: Timings | None = None, *,
               uploaded: bool = False) -> ImportResult:
    """Import one model; see the module docstring.  Raises :class:`NameTakenError` and
    :class:`InvalidNameError`."""
    timings = timings or Timings()
    opened = _open_new(ctx, Path(path), name, timings)
    if isinstance(opened, ImportResult):
        return opened
    try:
        with timings.measure("fingerprint"):
            prepared = prepare_model(opened, description, uploaded=uploaded)
    except (ModelLoadError, OSError) as exc:
        return _failed(opened.name, opened.path, exc)
    return _store_one(ctx, prepared, timings)


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
                results[i] = _failed(p.name, p.path, NameTakenError(p.name) if kind == "name" else exc)
    return stored


class _BatchRun:
    """The state of one :func:`import_batch`: results by entry index, and what this run
    already holds (repeats inside it are duplicates or taken names, like stored ones).
    The ``reader`` hashes and fingerprints (here or on a cluster's workers); the run
    decides what is new and writes it."""

    def __init__(self, ctx: Context, description: str | None, progress: ImportProgress | None,
                 timings: Timings, reader: ModelReader) -> None:
        self.ctx, self.description, self.progress, self.timings = ctx, description, progress, timings
        self.reader = reader
        self.results: dict[int, ImportResult] = {}
        self.run_sha: dict[str, str] = {}  # sha256 -> model id ("" while its read is pending)
        self.run_names: set[str] = set()

    def done(self, i: int, result: ImportResult) -> None:
        self.results[i] = result
        if self.progress is not None:
            self.progress(result)

    def open(self, batch: list[tuple[int, tuple[str, Path]]]) -> list[tuple[int, Opened]]:
        """Hash the batch's readable models with acceptable names; the rest are done."""
        named: list[tuple[int, tuple[str, Path]]] = []
        for i, (name, path) in batch:
            if (problem := name_problem(name)) is not None:
                self.done(i, _failed(name, path, InvalidNameError(name, problem)))
            else:
                named.append((i, (name, path)))
        with self.timings.measure("hash"):
            hashed = self.reader.open_many([entry for _, entry in named])
        opened: list[tuple[int, Opened]] = []
        for (i, (name, path)), result in zip(named, hashed):
            if isinstance(result, ReadFailure):
                self.done(i, _failed(name, path, result))
            else:
                opened.append((i, result))
        return opened

    def prepare(self, opened: list[tuple[int, Opened]]) -> tuple[list[Prepared], dict[str, int]]:
        """Fingerprint what is new; stored or repeated weights and taken names are done."""
        with self.timings.measure("neo4j"):
            existing = _existing_by_sha(self.ctx.db, (o.sha256 for _, o in opened))
            taken = _taken_names(self.ctx.db, (o.name for _, o in opened))
        new: list[tuple[int, Opened]] = []
        copies: list[tuple[int, Opened]] = []  # copies of a model of this batch, resolved once it is read
        for i, o in opened:
            if o.sha256 in existing:
                row = existing[o.sha256]
                self.done(i, ImportResult(model_id=row["id"], name=row["name"], status="duplicate", path=str(o.path)))
            elif o.sha256 in self.run_sha and not self.run_sha[o.sha256]:
                copies.append((i, o))
            elif o.sha256 in self.run_sha:
                self.done(i, ImportResult(model_id=self.run_sha[o.sha256], name=o.name, status="duplicate",
                                          path=str(o.path)))
            elif o.name in taken or o.name in self.run_names:
                self.done(i, _failed(o.name, o.path, NameTakenError(o.name, taken.get(o.name, {}).get("id"))))
            else:
                new.append((i, o))
                self.run_sha[o.sha256] = ""  # claimed: a later copy in this run is a duplicate
                self.run_names.add(o.name)
        with self.timings.measure("fingerprint"):
            read = self.reader.prepare_many([o for _, o in new], self.description)
        prepared: list[Prepared] = []
        index_of: dict[str, int] = {}
        failed_reads: dict[str, str] = {}
        for (i, o), p in zip(new, read):
            if isinstance(p, ReadFailure):
                self.done(i, _failed(o.name, o.path, p))
                del self.run_sha[o.sha256]
                self.run_names.discard(o.name)
                failed_reads[o.sha256] = str(p)
                continue
            prepared.append(p)
            index_of[p.id] = i
            self.run_sha[o.sha256] = p.id
        for i, o in copies:
            if o.sha256 in failed_reads:
                self.done(i, _failed(o.name, o.path, failed_reads[o.sha256]))
            else:
                self.done(i, ImportResult(model_id=self.run_sha[o.sha256], name=o.name, status="duplicate",
                                          path=str(o.path)))
        return prepared, index_of

    def store(self, prepared: list[Prepared], index_of: dict[str, int]) -> None:
        stored = {p.id for p in _store_batch(self.ctx.db, prepared, self.results, index_of, self.timings)}
        for p in prepared:
            if p.id in stored:
                self.ctx.cache.put(p.id, p.sha256, p.fingerprint, len(p.data))
                self.done(index_of[p.id], ImportResult(model_id=p.id, name=p.name, status="created",
                                                       path=str(p.path)))
            else:
                self.done(index_of[p.id], self.results[index_of[p.id]])


def import_batch(
    ctx: Context,
    entries: Sequence[tuple[str, Path]],
    *,
    description: str | None = None,
    progress: ImportProgress | None = None,
    stage: Callable[[str], None] | None = None,
    reader: ModelReader | None = None,
) -> ImportSummary:
    """Import ``(name, path)`` entries; see the module docstring.  Never raises for a bad model.

    ``reader`` hashes and fingerprints the entries (default: in this process; a
    :class:`heritage.distributed.DaskReader` on a cluster's workers); the writes are the same.
    """
    reader = reader or LocalReader()
    started = time.perf_counter()
    timings = Timings()
    run = _BatchRun(ctx, description, progress, timings, reader)
    batch_size = max(1, ctx.config.batch_size)
    for start in range(0, len(entries), batch_size):
        opened = run.open(list(enumerate(entries[start : start + batch_size], start)))
        run.store(*run.prepare(opened))
    if stage is not None:
        stage("placing models into families and rebuilding their trees")
    families = place_unplaced(ctx, timings)
    ordered = [run.results[i] for i in range(len(entries))]
    with timings.measure("neo4j"):
        family_of = _family_of(ctx.db, [r.model_id for r in ordered if r.model_id])
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
    def attempt(_: int) -> str:
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
            all_members = [*members, *(m for fid in absorbed for m in states[fid][1]), *new_members]
        else:
            target, version, members, absorbed = uuid.uuid4().hex, None, [], {}
            all_members = list(new_members)
        with timings.measure("neo4j"):
            known = ctx.cache.get_many((m.id, m.sha256) for m in all_members if m.id not in fps)
        known.update(fps)
        with timings.measure("trees"):
            plan = plan_family(ctx.recovery, target, all_members, known, expected_version=version,
                               expected_members=[m.id for m in members])
        with timings.measure("neo4j"):
            ctx.db.write_transaction(lambda tx: commit_plans(tx, [plan], lam=ctx.recovery.lam, absorbed=absorbed))
        return target

    return retry("place new models", attempt)


def _unplaced(ctx: Context, timings: Timings) -> tuple[list[Member], dict[str, Fingerprint], dict[str, str]]:
    """Ok models without a family whose fingerprints are stored, their fingerprints and
    their backbones (backbone keys; the structure hash of a model stored before those)."""
    with timings.measure("neo4j"):
        rows = ctx.db.read("model_unplaced")
    members = [member_from_row(r) for r in rows]
    with timings.measure("neo4j"):
        fps = ctx.cache.get_many((m.id, m.sha256) for m in members)
    return [m for m in members if m.id in fps], fps, {r["id"]: r["backboneKey"] or r["structureHash"] for r in rows}


def _components(ctx: Context, full: list[Member], fps: dict[str, Fingerprint], structure: dict[str, str],
                timings: Timings) -> list[tuple[list[Member], set[str]]]:
    """Groups of new full models that belong together, each with the stored families it
    joins (and so merges): new models are linked to the family each would join alone
    (:func:`family_to_join`) and to each other within the threshold."""
    uf = _UnionFind()
    with timings.measure("neo4j"):
        placed = {r["backboneKey"] for r in ctx.db.read(
            "placement_placed_structures", backboneKeys=sorted({structure[m.id] for m in full}))}
    for m in full:
        uf.find(m.id)
        if structure[m.id] in placed:  # else no stored model of this backbone: nothing to search
            family = family_to_join(ctx.db, ctx.cache, ctx.config, fps[m.id], timings=timings)
            if family is not None:
                uf.union(m.id, ("family", family))
    groups: dict[str, list[Member]] = defaultdict(list)
    for m in full:
        groups[structure[m.id]].append(m)
    for group in groups.values():
        _link_new_models(ctx, group, fps, uf, timings)
    components: dict[object, tuple[list[Member], set[str]]] = {}
    by_id = {m.id: m for m in full}
    for key in list(uf.parent):
        new, families = components.setdefault(uf.find(key), ([], set()))
        if isinstance(key, tuple):
            families.add(key[1])
        else:
            new.append(by_id[key])  # type: ignore[index]
    return [(new, families) for new, families in components.values() if new]


def place_unplaced(ctx: Context, timings: Timings | None = None) -> list[str]:
    """Put every ok model without a family into one; returns the families written."""
    timings = timings or Timings()
    with ctx.write_lock:
        members, fps, structure = _unplaced(ctx, timings)
        if not members:
            return []
        full = [m for m in members if not m.is_adapter]
        touched = [_commit_component(ctx, new, families, fps, timings)
                   for new, families in _components(ctx, full, fps, structure, timings)]
        by_family: dict[str | None, list[Member]] = defaultdict(list)
        for m in (m for m in members if m.is_adapter):
            by_family[family_to_join(ctx.db, ctx.cache, ctx.config, fps[m.id], m.declared_base,
                                     timings=timings)].append(m)
        for family_id, group in by_family.items():
            if family_id is None:
                for m in group:  # an adapter that fits no stored model stands alone
                    _warn_lone_adapter(m.name, m.declared_base)
                    touched.append(_commit_component(ctx, [m], set(), fps, timings))
            else:
                touched.append(_commit_component(ctx, group, {family_id}, fps, timings))
        return list(dict.fromkeys(touched))
