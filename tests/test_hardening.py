"""Hostile and broken input through the REST API, against a real Neo4j.

* Cypher injection: names, descriptions, ids and query strings that look like Cypher are
  stored and returned verbatim as plain text, and nothing else in the graph changes
  (every value reaches Neo4j as a parameter; see cypher/README.md).
* Broken model files (truncated, lying header length, invalid JSON, unknown dtype,
  overlapping offsets, empty, a zip that is not a checkpoint, NaN/Inf weights, no float
  weights): a clear 4xx with a one-line ``detail``, no traceback or server path in the
  body, nothing written to Neo4j, nothing left in the upload directory; the batch import
  reports the same files as per-model failures and imports the good ones.
* An adapter whose base is not in the catalogue (decided behaviour): it is stored with
  status ``ok`` as the only member (and root) of its own family, its declared base is kept
  as text (an ``ExternalModel`` placeholder, ``declared_base_id`` null) and a warning is
  logged; a later recluster keeps it alone.  It is never refused: the adapter is a real
  model whose base may be imported later.
* Conflicts and bad references: same name (409), unknown ids (404), depth out of range
  (422) — each with the graph unchanged.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from lineage_invariants import graph_counts, integrity_problems, snapshot, wait_for_job
from safetensors.numpy import save_file

from graph.database import Database
from heritage.evaluation.synthetic import family_zoo, random_root

pytestmark = pytest.mark.usefixtures("neo4j_db")

# Cypher-looking text a client could send.  Names may not contain '/', '\', control or
# invisible formatting characters (422, see NAME_PATTERN and heritage.catalogue.names); the
# texts with slashes are tried as descriptions, search strings and path parameters, and as
# names through the batch import (which refuses hidden characters, not slashes).
INJECTION_NAMES = [
    "x'}) DETACH DELETE n RETURN 1 AS x",
    '"; MATCH (n) DETACH DELETE n; RETURN "',
    "$props",
    "$id OR 1=1",
    "`Model` {name: 'evil'}) MERGE (p:Pwned) RETURN p.x AS `",
    "O'Brien \"quoted\" `tick` {curly} [square] (round) ;",
    "modèle-模型-μοντέλο-😀-evil",
    "n.name = '' OR true WITH n CALL { MATCH (m) DETACH DELETE m } RETURN n",
    ":param id => 'x'; MATCH (n) RETURN n",
]
INJECTION_TEXT = [
    "x'}) DETACH DELETE n //",
    '"; MATCH (n) DETACH DELETE n; //',
    "line one\nMATCH (n) DETACH DELETE n\r\n// comment\t$props",
    "\\'; CALL db.clearQueryCaches(); //",
]
FORBIDDEN_IN_BODY = ("Traceback", 'File "', "neo4j.exceptions", "site-packages")


# ----------------------------------------------------------------------------- helpers


def small_model(path: Path, seed: int, hidden: int = 32) -> Path:
    """An unrelated small model (its own family): one layer of Student-t weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(random_root(np.random.default_rng(seed), hidden=hidden, layers=1), str(path))
    return path


def post_file(client: Any, headers: dict[str, str], content: bytes, filename: str = "model.safetensors",
              **fields: str) -> Any:
    return client.post("/api/models", files={"file": (filename, content, "application/octet-stream")},
                       data=fields, headers=headers)


def assert_clean_error(response: Any, status: int | tuple[int, ...], *secrets: str) -> dict[str, Any]:
    """A JSON error with one-line ``detail``: no traceback, no server internals."""
    expected = (status,) if isinstance(status, int) else status
    assert response.status_code in expected, (response.status_code, response.text)
    body = response.json()
    if response.status_code != 422:
        assert isinstance(body["detail"], str) and body["detail"].strip(), body
        assert "\n" not in body["detail"], body["detail"]
    for marker in (*FORBIDDEN_IN_BODY, *secrets):
        assert marker not in response.text, (marker, response.text)
    return body


def safetensors_bytes(header: dict[str, Any], data: bytes, declared_length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if declared_length is None else declared_length) + raw + data


def _tensor(offsets: list[int], dtype: str = "F32", shape: list[int] | None = None) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape or [4, 4], "data_offsets": offsets}


def _weights_with(value: float) -> bytes:
    from safetensors.numpy import save

    weights = random_root(np.random.default_rng(99), hidden=32, layers=1)
    name = min(weights)
    weights[name] = weights[name].copy()
    weights[name][3, 5] = value
    return save(weights)


def _plain_zip() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("weights/readme.txt", "not a checkpoint")
        zf.writestr("model.safetensors", b"\x00" * 64)
    return buffer.getvalue()


def _zip_with_garbage_pickle() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02this is no pickle at all")
        zf.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _valid_safetensors() -> bytes:
    return safetensors_bytes({"w": _tensor([0, 64]), "v": _tensor([64, 128])}, bytes(128))


# name -> (bytes, expected status); each is a file a client might really send.
BAD_FILES: dict[str, tuple[Any, int]] = {
    "empty file": (lambda: b"", 400),
    "truncated safetensors": (lambda: _valid_safetensors()[:-40], 400),
    "truncated inside the header": (lambda: _valid_safetensors()[:30], 400),
    "header length larger than the file": (
        lambda: safetensors_bytes({"w": _tensor([0, 64])}, bytes(64), declared_length=10_000), 400),
    "invalid JSON header": (lambda: struct.pack("<Q", 24) + b'{"w": {"dtype": "F32", ' + bytes(64), 400),
    "header with trailing garbage": (lambda: struct.pack("<Q", 4) + b"{}[]" + bytes(8), 400),
    "unknown dtype": (lambda: safetensors_bytes({"w": _tensor([0, 64], dtype="F7")}, bytes(64)), 400),
    "overlapping offsets": (
        lambda: safetensors_bytes({"w": _tensor([0, 64]), "v": _tensor([32, 96])}, bytes(96)), 400),
    "offsets beyond the data": (lambda: safetensors_bytes({"w": _tensor([0, 6400])}, bytes(64)), 400),
    "size not matching the shape": (lambda: safetensors_bytes({"w": _tensor([0, 60])}, bytes(64)), 400),
    "no weight matrices to compare": (
        lambda: safetensors_bytes({"ids": _tensor([0, 128], dtype="I64")}, bytes(128)), 400),
    "zip that is not a PyTorch checkpoint": (_plain_zip, 415),
    "zip with a corrupt data.pkl": (_zip_with_garbage_pickle, 400),
    "NaN weights": (lambda: _weights_with(float("nan")), 400),
    "Inf weights": (lambda: _weights_with(float("inf")), 400),
}


# ------------------------------------------------------------------------- injection


def test_cypher_injection_is_stored_as_plain_text(neo4j_db: Database,
                                                  api_client: Any, api_headers: dict[str, str],
                                                  tmp_path: Path) -> None:
    # A real family first, so that "the graph is otherwise unchanged" means something.
    for name, path in family_zoo(21, prefix="base", hidden=32, layers=1, children=2,
                                 grandchildren=0).write(tmp_path / "base").items():
        assert post_file(api_client, api_headers, path.read_bytes(), f"{name}.safetensors").status_code == 201
    before_counts, before = graph_counts(neo4j_db), snapshot(neo4j_db)
    assert before_counts["DERIVED_FROM"] == 2

    created: dict[str, str] = {}
    for seed, name in enumerate(INJECTION_NAMES, start=100):
        description = INJECTION_TEXT[seed % len(INJECTION_TEXT)]
        content = small_model(tmp_path / "inj" / f"{seed}.safetensors", seed).read_bytes()
        response = post_file(api_client, api_headers, content, name=name, description=description)
        assert response.status_code == 201, (name, response.text)
        model = response.json()["model"]
        assert model["name"] == name and model["description"] == description
        created[name] = model["id"]

    # Names the API refuses by rule (slashes, control and formatting characters): 422, nothing stored.
    for seed, name in enumerate([*INJECTION_TEXT, "a\nb", "tab\there", "nul\x00byte", "\u202eevil\u200d"],
                                start=300):
        content = small_model(tmp_path / "refused" / f"{seed}.safetensors", seed).read_bytes()
        assert_clean_error(post_file(api_client, api_headers, content, name=name), 422)

    for name, model_id in created.items():
        fetched = api_client.get(f"/api/models/{model_id}").json()
        assert fetched["name"] == name
        rows = neo4j_db.read("MATCH (m:Model {name: $name}) RETURN m.id AS id", name=name)
        assert [r["id"] for r in rows] == [model_id]  # stored as this exact text
        found = api_client.get("/api/models", params={"q": name, "limit": 500}).json()
        assert model_id in {m["id"] for m in found["items"]}, name
        family = api_client.get(f"/api/families/{fetched['family_id']}/genealogy").json()
        assert [n["name"] for n in family["nodes"]] == [name]

    # Cypher-looking ids, family ids and filters: 404 / empty results, never an error.
    for text in [*INJECTION_NAMES, *INJECTION_TEXT]:
        encoded = quote(text, safe="")
        for path in (f"/api/models/{encoded}", f"/api/models/{encoded}/lineage",
                     f"/api/families/{encoded}", f"/api/families/{encoded}/genealogy",
                     f"/api/jobs/{encoded}", f"/api/models/{before['models'][0]['id']}/path/{encoded}"):
            assert_clean_error(api_client.get(path), 404)
        listed = api_client.get("/api/models", params={"q": text[:200], "family_id": text[:128],
                                                        "format": text[:64]})
        assert listed.status_code == 200 and listed.json()["total"] == 0
        assert_clean_error(api_client.delete(f"/api/models/{encoded}", headers=api_headers), 404)
        assert_clean_error(api_client.post(f"/api/families/{encoded}/tree/rebuild", headers=api_headers), 404)

    after = snapshot(neo4j_db)
    after_counts = graph_counts(neo4j_db)
    k = len(INJECTION_NAMES)
    expected = dict(before_counts)
    for key in ("Model", "Fingerprint", "Family", "OF", "IN_FAMILY"):
        expected[key] = before_counts[key] + k
    assert after_counts == expected  # no other label (Pwned...), no deletions
    old_ids = {m["id"] for m in before["models"]}
    assert [m for m in after["models"] if m["id"] in old_ids] == before["models"]
    assert after["edges"] == before["edges"]  # same edges, same run ids: untouched
    assert integrity_problems(neo4j_db) == []


def test_batch_import_keeps_any_readable_name_verbatim(neo4j_db: Database,
                                                       catalogue: Any, api_client: Any, tmp_path: Path) -> None:
    """The batch import (CLI) takes names from file names, slashes and Cypher included:
    they are parameters, stored as given and served back unchanged.  (Names with hidden
    characters are refused there too: see test_probes.)"""
    names = [text for text in INJECTION_TEXT if text.isprintable()] + ["x'}) DETACH DELETE n //", "a/b\\c"]
    names = list(dict.fromkeys(names))
    entries = [(name, small_model(tmp_path / f"b{i}.safetensors", 500 + i)) for i, name in enumerate(names)]
    summary = catalogue.import_many(entries)
    assert summary.created == len(names), [r.error for r in summary.results]
    for result, name in zip(summary.results, names):
        body = api_client.get(f"/api/models/{result.model_id}").json()
        assert body["name"] == name
        assert api_client.get(f"/api/families/{body['family_id']}/genealogy").json()["nodes"][0]["name"] == name
        assert result.model_id in {m["id"] for m in api_client.get("/api/models", params={"q": name[:200]}).json()["items"]}
    counts = graph_counts(neo4j_db)
    assert counts["Model"] == counts["Family"] == counts["Fingerprint"] == len(names)
    assert set(counts) <= {"Model", "Family", "Fingerprint", "OF", "IN_FAMILY"}
    assert integrity_problems(neo4j_db) == []


# ------------------------------------------------------------------------- bad files


def test_broken_files_are_clear_4xx_and_write_nothing(neo4j_db: Database,
                                                      api_client: Any, api_headers: dict[str, str],
                                                      tmp_path: Path) -> None:
    upload_dir = tmp_path / "uploads"
    good = small_model(tmp_path / "good.safetensors", 7)
    assert post_file(api_client, api_headers, good.read_bytes(), name="good").status_code == 201
    before_counts, before = graph_counts(neo4j_db), snapshot(neo4j_db)
    outcomes = {}
    for label, (make, status) in BAD_FILES.items():
        for filename in ("model.safetensors", "model.bin"):  # the name never decides
            response = post_file(api_client, api_headers, make(), filename)
            body = assert_clean_error(response, status, str(upload_dir), str(tmp_path))
            outcomes[label] = (response.status_code, body["detail"])
        assert graph_counts(neo4j_db) == before_counts, label
        leftovers = [p.name for p in upload_dir.rglob("*") if p.is_file()]
        assert len(leftovers) == 1, (label, leftovers)  # only the good model's file
    assert snapshot(neo4j_db) == before
    # The reasons name the problem, so a user can fix the file.
    assert "empty" in outcomes["empty file"][1]
    assert "header" in outcomes["header length larger than the file"][1]
    assert "JSON" in outcomes["invalid JSON header"][1]
    assert "dtype" in outcomes["unknown dtype"][1]
    assert "overlap" in outcomes["overlapping offsets"][1]
    for label in ("NaN weights", "Inf weights"):
        assert "NaN" in outcomes[label][1] or "Inf" in outcomes[label][1] or "finite" in outcomes[label][1], outcomes[label]
    assert "not a PyTorch checkpoint" in outcomes["zip that is not a PyTorch checkpoint"][1]


def test_batch_import_reports_each_broken_file(neo4j_db: Database, catalogue: Any, tmp_path: Path) -> None:
    """The same files through the batch import: one ``failed`` result each with its reason,
    the good models imported, nothing of the bad ones written."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    bad_names = []
    for i, (label, (make, _)) in enumerate(BAD_FILES.items()):
        name = f"bad{i:02d}"
        (folder / f"{name}.safetensors").write_bytes(make())
        bad_names.append(name)
    for i in range(3):
        small_model(folder / f"good{i}.safetensors", 40 + i)
    from heritage.catalogue import collect_entries

    summary = catalogue.import_many(collect_entries([folder]))
    by_name = {r.name: r for r in summary.results}
    assert {n for n, r in by_name.items() if r.status == "created"} == {"good0", "good1", "good2"}
    for name in bad_names:
        assert by_name[name].status == "failed" and by_name[name].error, by_name[name]
        assert "Traceback" not in by_name[name].error
    counts = graph_counts(neo4j_db)
    assert counts["Model"] == counts["Fingerprint"] == 3
    assert integrity_problems(neo4j_db) == []


# ------------------------------------------------------------------------- adapters


def _adapter_folder(folder: Path, base: str, hidden: int, seed: int = 5) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["query", "value"],
        "base_model_name_or_path": base}))
    rng = np.random.default_rng(seed)
    tensors = {}
    for module in ("query", "value"):
        prefix = f"base_model.model.encoder.layer.0.attention.self.{module}"
        tensors[f"{prefix}.lora_A.weight"] = rng.standard_normal((2, hidden)).astype(np.float32)
        tensors[f"{prefix}.lora_B.weight"] = rng.standard_normal((hidden, 2)).astype(np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def test_adapter_without_a_compatible_base_stands_alone(neo4j_db: Database,
                                                        api_factory: Any, api_headers: dict[str, str],
                                                        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "root"
    family = family_zoo(22, prefix="host", hidden=32, layers=1, children=1, grandchildren=0).write(root / "host")
    client = api_factory(import_roots=(root,))
    for path in family.values():
        assert client.post("/api/models/register", json={"path": str(path)}, headers=api_headers).status_code == 201
    # Base named but absent; and a base that exists by name but does not fit (other shapes).
    _adapter_folder(root / "orphan-adapter", "ghost-org/missing-base", hidden=48)
    _adapter_folder(root / "misfit-adapter", "host0", hidden=48, seed=6)
    before_counts, before = graph_counts(neo4j_db), snapshot(neo4j_db)

    ids = {}
    for name, declared in (("orphan-adapter", "ghost-org/missing-base"), ("misfit-adapter", "host0")):
        with caplog.at_level("WARNING", logger="heritage.catalogue"):
            response = client.post("/api/models/register", json={"path": name}, headers=api_headers)
        assert response.status_code == 201, response.text
        model = response.json()["model"]
        ids[name] = model["id"]
        assert model["is_adapter"] and model["status"] == "ok" and model["error"] is None
        assert model["declared_base"] == declared and model["parent_id"] is None and model["family_id"]
        family_body = client.get(f"/api/families/{model['family_id']}").json()
        assert family_body["member_count"] == 1 and family_body["roots"] == [{"id": model["id"], "name": name}]
        assert "fits no stored model" in caplog.text and name in caplog.text
        caplog.clear()
    assert client.get(f"/api/models/{ids['orphan-adapter']}").json()["declared_base_id"] is None
    misfit = client.get(f"/api/models/{ids['misfit-adapter']}").json()
    assert misfit["declared_base_id"] == next(m["id"] for m in before["models"] if m["name"] == "host0")

    after_counts = graph_counts(neo4j_db)
    assert after_counts["Model"] == before_counts["Model"] + 2
    assert after_counts["Family"] == before_counts["Family"] + 2
    assert after_counts.get("ExternalModel", 0) == 1 and after_counts["DECLARED_BASE"] == 2
    assert snapshot(neo4j_db)["edges"] == before["edges"]  # the host family is untouched
    assert integrity_problems(neo4j_db) == []

    job = client.post("/api/clustering/recluster", headers=api_headers).json()["job"]
    assert wait_for_job(client, job["id"])["state"] == "succeeded"
    for model_id in ids.values():
        family_id = client.get(f"/api/models/{model_id}").json()["family_id"]
        assert client.get(f"/api/families/{family_id}").json()["member_count"] == 1
    assert integrity_problems(neo4j_db) == []

    # The base arrives later: its name resolves the placeholder, and a recluster puts the
    # adapter under it (import alone does not move models already placed).
    small_model(root / "missing-base.safetensors", 8, hidden=48)
    base = client.post("/api/models/register", json={"path": "missing-base.safetensors"}, headers=api_headers)
    assert base.status_code == 201, base.text
    assert client.get(f"/api/models/{ids['orphan-adapter']}").json()["declared_base_id"] == base.json()["model"]["id"]
    assert graph_counts(neo4j_db).get("ExternalModel", 0) == 0
    job = client.post("/api/clustering/recluster", headers=api_headers).json()["job"]
    assert wait_for_job(client, job["id"])["state"] == "succeeded"
    adapter = client.get(f"/api/models/{ids['orphan-adapter']}").json()
    assert adapter["parent_id"] == base.json()["model"]["id"] and adapter["status"] == "ok"
    assert integrity_problems(neo4j_db) == []


# ------------------------------------------------------------------------- conflicts, refs


def test_conflicts_unknown_ids_and_depth_leave_the_graph_unchanged(neo4j_db: Database,
                                                                   api_client: Any, api_headers: dict[str, str],
                                                                   tmp_path: Path) -> None:
    first = small_model(tmp_path / "one.safetensors", 61).read_bytes()
    second = small_model(tmp_path / "two.safetensors", 62).read_bytes()
    created = post_file(api_client, api_headers, first, name="same-name").json()["model"]
    before_counts, before = graph_counts(neo4j_db), snapshot(neo4j_db)

    taken = assert_clean_error(post_file(api_client, api_headers, second, name="same-name"), 409)
    assert "same-name" in taken["detail"] and taken["existing_id"] == created["id"]
    duplicate = assert_clean_error(post_file(api_client, api_headers, first, name="other-name"), 409)
    assert duplicate["existing_id"] == created["id"]
    for unknown in ("0" * 32, "f" * 128, "no-such-model"):
        for path in (f"/api/models/{unknown}", f"/api/models/{unknown}/lineage", f"/api/families/{unknown}",
                     f"/api/families/{unknown}/models", f"/api/families/{unknown}/genealogy",
                     f"/api/jobs/{unknown}", f"/api/models/{created['id']}/path/{unknown}",
                     f"/api/models/{unknown}/path/{created['id']}"):
            assert_clean_error(api_client.get(path), 404)
        assert_clean_error(api_client.delete(f"/api/models/{unknown}", headers=api_headers), 404)
        assert_clean_error(api_client.post(f"/api/models/{unknown}/reprocess", headers=api_headers), 404)
    too_long = "a" * 129
    assert_clean_error(api_client.get(f"/api/models/{too_long}"), 422)
    for depth in (0, -1, 51, 2**63, "1.5", "ten"):
        assert_clean_error(api_client.get(f"/api/models/{created['id']}/lineage", params={"depth": depth}), 422)
    assert graph_counts(neo4j_db) == before_counts
    assert snapshot(neo4j_db) == before
    stored = [p for p in (tmp_path / "uploads").iterdir() if p.is_file()]
    assert len(stored) == 1
