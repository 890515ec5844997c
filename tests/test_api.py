"""REST API against a real Neo4j: every endpoint's happy path and its errors.

Small synthetic families (:func:`heritage.evaluation.synthetic.family_zoo`) are uploaded through
the API exactly as a client would; their true parents are known, so the stored
genealogy read back through REST is checked against the truth.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from heritage.evaluation.synthetic import family_zoo
from lineage_invariants import wait_for_job

pytestmark = pytest.mark.usefixtures("neo4j_db")


# ----------------------------------------------------------------------------- helpers


def upload(client: Any, path: Path, headers: dict[str, str] | None, name: str | None = None,
           description: str | None = None, filename: str | None = None) -> Any:
    data = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
    with path.open("rb") as fh:
        return client.post("/api/models", files={"file": (filename or path.name, fh, "application/octet-stream")},
                           data=data, headers=headers or {})


def write_family(directory: Path, seed: int = 0, prefix: str = "m",
                 **kwargs: Any) -> tuple[dict[str, Path], dict[str, str | None]]:
    zoo = family_zoo(seed, prefix=prefix, **kwargs)
    return zoo.write(directory), zoo.parents


def upload_family(client: Any, headers: dict[str, str], directory: Path, seed: int = 0,
                  prefix: str = "m", **kwargs: Any) -> tuple[dict[str, str], dict[str, str | None]]:
    """Upload a synthetic family; returns ({name: id}, {name: true parent})."""
    paths, parents = write_family(directory, seed, prefix, **kwargs)
    ids = {}
    for name, path in paths.items():
        response = upload(client, path, headers)
        assert response.status_code == 201, response.text
        ids[name] = response.json()["model"]["id"]
    return ids, parents


def stored_parents(client: Any, family_id: str) -> dict[str, str]:
    """{child id: parent id} of the family's stored tree, as the genealogy endpoint reads it."""
    genealogy = client.get(f"/api/families/{family_id}/genealogy").json()
    return {e["child"]: e["parent"] for e in genealogy["edges"]}


def edge_accuracy(genealogy: dict[str, Any], parents: dict[str, str | None]) -> float:
    names = {n["id"]: n["name"] for n in genealogy["nodes"]}
    found = {names[e["child"]]: names[e["parent"]] for e in genealogy["edges"]}
    true_edges = {c: p for c, p in parents.items() if p is not None}
    return sum(found.get(c) == p for c, p in true_edges.items()) / len(true_edges)


@pytest.fixture
def family(api_client: Any, api_headers: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """One uploaded synthetic family (10 models): ids, true parents and its family id."""
    ids, parents = upload_family(api_client, api_headers, tmp_path / "zoo")
    family_id = api_client.get(f"/api/models/{ids['m0']}").json()["family_id"]
    assert family_id
    return {"ids": ids, "parents": parents, "family_id": family_id}


# ------------------------------------------------------------------------ meta, health


def test_openapi_schema_and_docs_are_served(api_client: Any) -> None:
    schema = api_client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/models", "/api/models/{model_id}", "/api/models/register",
                 "/api/models/{model_id}/lineage", "/api/models/{model_id}/path/{other_id}",
                 "/api/models/{model_id}/reprocess", "/api/families", "/api/families/{family_id}",
                 "/api/families/{family_id}/models", "/api/families/{family_id}/genealogy",
                 "/api/families/{family_id}/tree/rebuild", "/api/clustering/recluster",
                 "/api/models/{model_id}/common-ancestor/{other_id}", "/api/lineage/declared-mismatches",
                 "/api/clustering/statistics", "/api/stats", "/api/jobs/{job_id}", "/api/health"):
        assert path in paths, path
    upload_body = paths["/api/models"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload_body
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema.json()["components"]["securitySchemes"])
    assert api_client.get("/docs").status_code == 200


def test_health_ok(api_client: Any) -> None:
    response = api_client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_heritage_serve_answers_over_http(neo4j_db: Any, tmp_path: Path) -> None:
    """The real command: uvicorn in a subprocess, health and OpenAPI over HTTP."""
    import os
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HERITAGE_API_KEYS": "k" * 24, "HERITAGE_UPLOAD_DIR": str(tmp_path / "up")}
    proc = subprocess.Popen([sys.executable, "-m", "heritage", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        assert health.status_code == 200 and health.json() == {"status": "ok", "detail": None}
        assert "server" not in health.headers  # no server banner
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["info"]["title"] == "Model Heritage API"
        assert httpx.post(f"http://127.0.0.1:{port}/api/clustering/recluster").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ------------------------------------------------------------------------------ models


def test_upload_get_list_and_search(api_client: Any, api_headers: dict[str, str], tmp_path: Path) -> None:
    paths, _ = write_family(tmp_path, seed=1, prefix="a", children=1, grandchildren=0)
    created = upload(api_client, paths["a0"], api_headers, name="alpha-base", description="a root model")
    assert created.status_code == 201, created.text
    model = created.json()["model"]
    assert created.headers["location"] == f"/api/models/{model['id']}"
    assert model["name"] == "alpha-base" and model["status"] == "ok" and model["format"] == "safetensors"
    weights = family_zoo(1, prefix="a", children=1, grandchildren=0).models["a0"]
    assert model["params"] == sum(w.size for w in weights.values())
    assert model["layers"] >= 1 and model["structure_hash"] and len(model["sha256"]) == 64
    assert "path" not in model  # server paths are not public
    other = upload(api_client, paths["a1"], api_headers)  # default name from the file name
    assert other.status_code == 201, other.text
    assert other.json()["model"]["name"] == "a1"

    fetched = api_client.get(f"/api/models/{model['id']}")
    assert fetched.status_code == 200 and fetched.json()["description"] == "a root model"

    page = api_client.get("/api/models").json()
    assert page["total"] == 2 and len(page["items"]) == 2
    assert api_client.get("/api/models", params={"q": "ALPHA"}).json()["total"] == 1
    assert api_client.get("/api/models", params={"q": "root model"}).json()["items"][0]["id"] == model["id"]
    assert api_client.get("/api/models", params={"format": "pytorch"}).json()["total"] == 0
    assert api_client.get("/api/models", params={"status": "ok"}).json()["total"] == 2
    family_id = model["family_id"]
    assert api_client.get("/api/models", params={"family_id": family_id}).json()["total"] >= 1
    one = api_client.get("/api/models", params={"skip": 1, "limit": 1}).json()
    assert one["total"] == 2 and len(one["items"]) == 1 and one["skip"] == 1 and one["limit"] == 1


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"skip": -1}, {"status": "bogus"},
                                    {"limit": "many"}, {"q": "x" * 201}])
def test_list_models_rejects_bad_parameters(api_client: Any, params: dict[str, Any]) -> None:
    assert api_client.get("/api/models", params=params).status_code == 422


def test_unknown_ids_are_404(api_client: Any, api_headers: dict[str, str]) -> None:
    missing = "0" * 32
    for path in (f"/api/models/{missing}", f"/api/models/{missing}/lineage", f"/api/families/{missing}",
                 f"/api/families/{missing}/models", f"/api/families/{missing}/genealogy",
                 f"/api/jobs/{missing}", f"/api/models/{missing}/path/{missing}",
                 f"/api/models/{missing}/common-ancestor/{missing}", f"/api/lineage/declared-mismatches?model_id={missing}"):
        response = api_client.get(path)
        assert response.status_code == 404, path
        assert "detail" in response.json()
    assert api_client.delete(f"/api/models/{missing}", headers=api_headers).status_code == 404
    assert api_client.post(f"/api/models/{missing}/reprocess", headers=api_headers).status_code == 404
    assert api_client.post(f"/api/families/{missing}/tree/rebuild", headers=api_headers).status_code == 404


def test_duplicate_upload_is_409_with_existing_id(api_client: Any, api_headers: dict[str, str], tmp_path: Path) -> None:
    paths, _ = write_family(tmp_path, seed=2, prefix="d", children=0, grandchildren=0)
    first = upload(api_client, paths["d0"], api_headers)
    assert first.status_code == 201
    again = upload(api_client, paths["d0"], api_headers, name="another-name")
    assert again.status_code == 409
    assert again.json()["existing_id"] == first.json()["model"]["id"]
    assert api_client.get("/api/models").json()["total"] == 1
    # Only the first copy stays in the upload directory.
    stored = [p for p in (tmp_path / "uploads").iterdir() if p.is_file()]
    assert len(stored) == 1


def test_a_slow_import_does_not_block_other_requests(api_client: Any, api_headers: dict[str, str],
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports run in worker threads: the event loop keeps answering meanwhile."""
    import threading

    catalogue = api_client.app.state.db.catalogue
    real_import = catalogue.import_model
    started = threading.Event()

    def slow_import(*args: Any, **kwargs: Any) -> Any:
        started.set()
        time.sleep(2.0)  # stands in for fingerprinting a big model
        return real_import(*args, **kwargs)

    monkeypatch.setattr(catalogue, "import_model", slow_import)
    paths, _ = write_family(tmp_path, seed=12, prefix="slow", children=0, grandchildren=0)
    result: dict[str, Any] = {}
    uploader = threading.Thread(target=lambda: result.update(r=upload(api_client, paths["slow0"], api_headers)))
    uploader.start()
    assert started.wait(10)
    begin = time.monotonic()
    assert api_client.get("/api/health").status_code == 200
    assert api_client.get("/api/models").status_code == 200
    assert time.monotonic() - begin < 1.0
    uploader.join(30)
    assert result["r"].status_code == 201


def test_name_taken_is_409(api_client: Any, api_headers: dict[str, str], tmp_path: Path) -> None:
    paths, _ = write_family(tmp_path, seed=3, prefix="n", children=1, grandchildren=0)
    assert upload(api_client, paths["n0"], api_headers, name="same").status_code == 201
    taken = upload(api_client, paths["n1"], api_headers, name="same")
    assert taken.status_code == 409 and "same" in taken.json()["detail"]


def test_upload_too_large_is_413(api_factory: Any, api_headers: dict[str, str], tmp_path: Path) -> None:
    client = api_factory(max_upload_bytes=10_000)
    paths, _ = write_family(tmp_path, seed=4, prefix="big", children=0, grandchildren=0)
    assert paths["big0"].stat().st_size > 10_000
    response = upload(client, paths["big0"], api_headers)
    assert response.status_code == 413
    leftovers = [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]
    assert leftovers == []


@pytest.mark.parametrize("content", [b"just some text, not a model\n", b"\x00" * 128])
def test_unknown_content_is_415(api_client: Any, api_headers: dict[str, str], tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.safetensors"  # the extension does not matter, the content does
    path.write_bytes(content)
    assert upload(api_client, path, api_headers).status_code == 415


def test_gguf_upload_is_read_and_a_broken_one_is_400(api_client: Any, api_headers: dict[str, str],
                                                      tmp_path: Path) -> None:
    from gguf_writing import Q, tiny_llama, write_llama_gguf

    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 64)  # a valid header naming no tensor
    response = upload(api_client, empty, api_headers)
    assert response.status_code == 400 and "no tensors" in response.json()["detail"]
    folder, config = tiny_llama(tmp_path)
    path = tmp_path / "llama-q8.gguf"
    write_llama_gguf(path, folder, config, lambda name, data: Q.Q8_0)
    response = upload(api_client, path, api_headers)
    assert response.status_code == 201, response.text
    model = response.json()["model"]
    assert model["format"] == "gguf" and model["quantization"] == "Q8_0" and model["name"] == "llama-q8"


def test_plain_zip_is_415(api_client: Any, api_headers: dict[str, str], tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert upload(api_client, path, api_headers).status_code == 415


def test_code_running_pickle_is_400_and_never_executed(api_client: Any, api_headers: dict[str, str],
                                                       tmp_path: Path) -> None:
    import os
    import pickle

    import torch

    marker = tmp_path / "PWNED"

    class Exploit:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    legacy = tmp_path / "evil.pkl"
    legacy.write_bytes(pickle.dumps({"weight": Exploit()}, protocol=2))
    zipped = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": Exploit()}, zipped)
    for path in (legacy, zipped):
        response = upload(api_client, path, api_headers)
        assert response.status_code == 400, response.text
        assert "run code" in response.json()["detail"]
    assert not marker.exists()
    assert api_client.get("/api/models").json()["total"] == 0


def test_pytorch_checkpoint_upload(api_client: Any, api_headers: dict[str, str], tmp_path: Path) -> None:
    import torch

    zoo = family_zoo(5, prefix="t", children=0, grandchildren=0)
    path = tmp_path / "t0.pt"
    torch.save({k: torch.from_numpy(v) for k, v in zoo.models["t0"].items()}, path)
    response = upload(api_client, path, api_headers)
    assert response.status_code == 201, response.text
    assert response.json()["model"]["format"] == "pytorch"


def test_malformed_uploads_are_4xx(api_client: Any, api_headers: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x20\x00\x00\x00\x00\x00\x00\x00{not json at all, truncated")
    assert upload(api_client, bad, api_headers).status_code == 400
    # No file part, a JSON body, an unknown field, a bad name.
    assert api_client.post("/api/models", data={"name": "x"}, files={"other": ("a", b"b")},
                           headers=api_headers).status_code == 400
    assert api_client.post("/api/models", json={"name": "x"}, headers=api_headers).status_code == 415
    paths, _ = write_family(tmp_path / "z", seed=6, prefix="q", children=0, grandchildren=0)
    assert upload(api_client, paths["q0"], api_headers, name="a/b").status_code == 422
    assert upload(api_client, paths["q0"], api_headers, name="x" * 201).status_code == 422
    assert [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()] == []


def test_delete_model(api_client: Any, api_headers: dict[str, str], family: dict[str, Any]) -> None:
    ids = family["ids"]
    parents = stored_parents(api_client, family["family_id"])
    children = {c for c, p in parents.items() if p == ids["m1"]}
    assert children  # m1 is an inner node of the stored tree
    response = api_client.delete(f"/api/models/{ids['m1']}", headers=api_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == ids["m1"] and set(body["children"]) == children
    assert api_client.get(f"/api/models/{ids['m1']}").status_code == 404
    assert api_client.delete(f"/api/models/{ids['m1']}", headers=api_headers).status_code == 404
    genealogy = api_client.get(f"/api/families/{family['family_id']}/genealogy").json()
    assert len(genealogy["nodes"]) == 9 and genealogy["validation"]["valid"]
    # The orphans were re-attached inside the family.
    assert children <= {e["child"] for e in genealogy["edges"]}


# ------------------------------------------------------------------------ registration


def test_register_inside_import_root(api_factory: Any, api_headers: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "root"
    paths, _ = write_family(root, seed=7, prefix="r", children=1, grandchildren=0)
    client = api_factory(import_roots=(root,))
    absolute = client.post("/api/models/register", json={"path": str(paths["r0"]), "name": "reg-root"},
                           headers=api_headers)
    assert absolute.status_code == 201, absolute.text
    relative = client.post("/api/models/register", json={"path": "r1.safetensors"}, headers=api_headers)
    assert relative.status_code == 201, relative.text
    assert relative.json()["model"]["name"] == "r1"
    assert client.post("/api/models/register", json={"path": str(paths["r0"]), "name": "again"},
                       headers=api_headers).status_code == 409
    assert paths["r0"].exists()  # a duplicate registration never deletes the user's file
    missing = client.post("/api/models/register", json={"path": "nope.safetensors"}, headers=api_headers)
    assert missing.status_code == 400
    assert client.post("/api/models/register", json={"path": "x", "bogus": 1}, headers=api_headers).status_code == 422
    for path in ("a" * 300, "sub/" + "b" * 300 + ".safetensors"):  # too long for the file system
        assert client.post("/api/models/register", json={"path": path}, headers=api_headers).status_code == 400
    for path in ("~nosuchuser/x.safetensors", "~/x.safetensors", "a\x00b", ""):
        assert client.post("/api/models/register", json={"path": path}, headers=api_headers).status_code == 422


def test_register_refuses_paths_outside_roots(api_factory: Any, api_headers: dict[str, str], tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    inside_paths, _ = write_family(root, seed=8, prefix="in", children=0, grandchildren=0)
    outside_paths, _ = write_family(outside, seed=9, prefix="out", children=0, grandchildren=0)
    (root / "escape.safetensors").symlink_to(outside_paths["out0"])
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    client = api_factory(import_roots=(root,))
    for path in (str(outside_paths["out0"]), "../outside/out0.safetensors", f"{root}/../outside/out0.safetensors",
                 "escape.safetensors", "linkdir/out0.safetensors", "/etc/passwd"):
        with caplog.at_level("WARNING", logger="heritage.api"):
            response = client.post("/api/models/register", json={"path": path}, headers=api_headers)
        assert response.status_code == 403, (path, response.text)
    assert "refused POST /api/models/register" in caplog.text
    assert api_client_total(client) == 0
    # Without configured roots registration is disabled altogether.
    closed = api_factory()
    assert closed.post("/api/models/register", json={"path": str(inside_paths["in0"])},
                       headers=api_headers).status_code == 403


def api_client_total(client: Any) -> int:
    return client.get("/api/models").json()["total"]


# ---------------------------------------------------------------------- families, trees


def test_families_and_genealogy_match_truth(api_client: Any, family: dict[str, Any]) -> None:
    families = api_client.get("/api/families").json()["items"]
    assert len(families) == 1 and families[0]["member_count"] == 10
    assert families[0]["roots"] == [{"id": family["ids"]["m0"], "name": "m0"}]
    one = api_client.get(f"/api/families/{family['family_id']}").json()
    assert one["member_count"] == 10 and one["mean_distance"] > 0
    members = api_client.get(f"/api/families/{family['family_id']}/models").json()
    assert {m["name"] for m in members} == set(family["ids"])

    genealogy = api_client.get(f"/api/families/{family['family_id']}/genealogy")
    assert genealogy.status_code == 200
    body = genealogy.json()
    assert body["family"]["id"] == family["family_id"]
    assert len(body["models"]) == 10 and len(body["nodes"]) == 10 and len(body["edges"]) == 9
    assert body["validation"]["valid"] is True
    assert body["statistics"]
    assert all(0.0 <= e["confidence"] <= 1.0 for e in body["edges"])
    assert edge_accuracy(body, family["parents"]) >= 0.9
    # Fine-tunes of full weights: every edge reads as finetune, none carries a merge weight.
    assert {(e["relation"], e["weight"]) for e in body["edges"]} == {("finetune", None)}
    # The family list and the family carry the number of edges and their mean confidence.
    mean = sum(e["confidence"] for e in body["edges"]) / 9
    for listed in (families[0], one, body["family"]):
        assert listed["edge_count"] == 9 and listed["mean_confidence"] == pytest.approx(mean)
    assert body["mean_confidence"] == pytest.approx(mean)


def test_lineage_and_depth_bounds(api_client: Any, family: dict[str, Any]) -> None:
    """Lineage agrees with the stored tree (the genealogy endpoint), at every depth."""
    ids = family["ids"]
    parents = stored_parents(api_client, family["family_id"])
    root_id = next(i for i in ids.values() if i not in parents)

    def chain(model: str) -> list[str]:
        out = []
        while model in parents:
            model = parents[model]
            out.append(model)
        return out

    def nested(node: dict[str, Any]) -> set[tuple[str, str]]:
        pairs = set()
        for child in node["children"]:
            pairs |= {(child["id"], node["id"])} | nested(child)
        return pairs

    deepest = max(ids.values(), key=lambda m: len(chain(m)))
    lineage = api_client.get(f"/api/models/{deepest}/lineage", params={"depth": 5}).json()
    assert [a["id"] for a in lineage["ancestors"]] == chain(deepest)[:5]
    assert lineage["ancestors"][0]["child_id"] == deepest
    assert lineage["root"]["id"] == root_id and lineage["parent_id"] == parents[deepest]
    assert lineage["confidence"] is not None and lineage["model"]["id"] == deepest

    root = api_client.get(f"/api/models/{root_id}/lineage").json()
    assert root["ancestors"] == [] and root["descendant_count"] == 9 and root["confidence"] is None
    assert {a["relation"] for a in lineage["ancestors"]} == {"finetune"}
    assert {d["relation"] for d in root["descendants"]} == {"finetune"}
    assert nested({"id": root_id, "children": root["descendants"]}) == set(parents.items())
    shallow = api_client.get(f"/api/models/{root_id}/lineage", params={"depth": 1}).json()
    assert {c["id"] for c in shallow["descendants"]} == {c for c, p in parents.items() if p == root_id}
    assert all(c["children"] == [] for c in shallow["descendants"])
    for depth in (0, -1, 51, 10**9, "x"):
        assert api_client.get(f"/api/models/{root_id}/lineage", params={"depth": depth}).status_code == 422


def test_path_between_models(api_client: Any, api_headers: dict[str, str], family: dict[str, Any],
                             tmp_path: Path) -> None:
    ids = family["ids"]
    parents = stored_parents(api_client, family["family_id"])
    path = api_client.get(f"/api/models/{ids['m1_1']}/path/{ids['m2_1']}").json()
    assert path["related"] is True
    nodes = [n["id"] for n in path["nodes"]]
    assert nodes[0] == ids["m1_1"] and nodes[-1] == ids["m2_1"]
    assert path["length"] == len(nodes) - 1 == len(path["edges"])
    for a, b in zip(nodes, nodes[1:], strict=False):  # each step is a stored edge, up or down
        assert parents.get(a) == b or parents.get(b) == a
    assert api_client.get(f"/api/models/{ids['m0']}/path/{ids['m0']}").json()["length"] == 0
    # A model of another family (different architecture) is unrelated.
    paths, _ = write_family(tmp_path / "other", seed=11, prefix="o", hidden=32, children=0, grandchildren=0)
    other = upload(api_client, paths["o0"], api_headers).json()["model"]["id"]
    unrelated = api_client.get(f"/api/models/{ids['m0']}/path/{other}").json()
    assert unrelated == {"related": False, "nodes": [], "edges": [], "length": None}


def test_common_ancestor(api_client: Any, api_headers: dict[str, str], family: dict[str, Any],
                         tmp_path: Path) -> None:
    """The lowest common ancestor agrees with the stored tree: the deepest shared ancestor."""
    ids = family["ids"]
    parents = stored_parents(api_client, family["family_id"])

    def chain(model: str) -> list[str]:  # the model, then its ancestors, nearest first
        out = [model]
        while out[-1] in parents:
            out.append(parents[out[-1]])
        return out

    for a, b in (("m1_1", "m2_1"), ("m1_1", "m1_2"), ("m1_1", "m1"), ("m0", "m3_2"), ("m2", "m2")):
        up_a, up_b = chain(ids[a]), chain(ids[b])
        expected = next(m for m in up_a if m in up_b)
        answer = api_client.get(f"/api/models/{ids[a]}/common-ancestor/{ids[b]}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["related"] is True and body["ancestor"]["id"] == expected, (a, b)
        assert (body["from_a"], body["from_b"]) == (up_a.index(expected), up_b.index(expected))
    paths, _ = write_family(tmp_path / "other", seed=11, prefix="o", hidden=32, children=0, grandchildren=0)
    other = upload(api_client, paths["o0"], api_headers).json()["model"]["id"]
    unrelated = api_client.get(f"/api/models/{ids['m0']}/common-ancestor/{other}").json()
    assert unrelated == {"related": False, "ancestor": None, "from_a": None, "from_b": None}
    assert api_client.get(f"/api/models/{ids['m0']}/common-ancestor/{'0' * 32}").status_code == 404


def test_declared_versus_recovered_mismatches(api_factory: Any, api_headers: dict[str, str],
                                              tmp_path: Path) -> None:
    """Model cards that name the wrong base are listed with the recovered parent; cards that
    name the right one are not; the list can be narrowed to one model."""
    import numpy as np
    from safetensors.numpy import save_file

    from heritage.evaluation.synthetic import finetune

    root = tmp_path / "root"
    zoo = family_zoo(21, prefix="k", children=2, grandchildren=0)
    zoo.write(root)
    rng = np.random.default_rng(5)
    cards = {"k2-card": ("k2", "k1"), "k1-card": ("k1", "k1")}  # name: (true parent, declared base)
    for name, (parent, declared) in cards.items():
        folder = root / name
        folder.mkdir()
        save_file(finetune(zoo.models[parent], rng), str(folder / "model.safetensors"))
        (folder / "README.md").write_text(f"---\nbase_model: {declared}\nbase_model_relation: finetune\n---\n"
                                          f"# {name}\n")
    client = api_factory(import_roots=(root,))
    ids = {}
    for entry in [*(f"{n}.safetensors" for n in zoo.models), *cards]:
        response = client.post("/api/models/register", json={"path": entry}, headers=api_headers)
        assert response.status_code == 201, response.text
        ids[response.json()["model"]["name"]] = response.json()["model"]["id"]
    family_id = client.get(f"/api/models/{ids['k0']}").json()["family_id"]
    parents = stored_parents(client, family_id)
    assert parents[ids["k1-card"]] == ids["k1"]  # the card that names the right base agrees

    everything = client.get("/api/lineage/declared-mismatches")
    assert everything.status_code == 200, everything.text
    [row] = everything.json()
    recovered_name = next(n for n, i in ids.items() if i == parents[ids["k2-card"]])
    assert {k: v for k, v in row.items() if k != "recovered_parents"} == {
        "id": ids["k2-card"], "name": "k2-card", "reason": "parent", "relation": "finetune",
        "declared_name": "k1", "declared_id": ids["k1"], "declared_external": False,
        "recovered_id": parents[ids["k2-card"]], "recovered_name": recovered_name,
        "recovered_relation": "finetune", "relation_to_declared": None,
        "declared_bases": [{"id": ids["k1"], "name": "k1", "external": False}],
        "confidence": pytest.approx(stored_confidence(client, family_id, ids["k2-card"]))}
    assert [p["name"] for p in row["recovered_parents"]] == [recovered_name]
    assert everything.json()[0]["recovered_id"] != ids["k1"]
    one = client.get("/api/lineage/declared-mismatches", params={"model_id": ids["k2-card"]}).json()
    assert [m["id"] for m in one] == [ids["k2-card"]]
    assert client.get("/api/lineage/declared-mismatches", params={"model_id": ids["k1-card"]}).json() == []
    for params in ({"limit": 0}, {"limit": 1001}, {"model_id": ""}):
        assert client.get("/api/lineage/declared-mismatches", params=params).status_code == 422


def stored_confidence(client: Any, family_id: str, child: str) -> float:
    genealogy = client.get(f"/api/families/{family_id}/genealogy").json()
    return next(e["confidence"] for e in genealogy["edges"] if e["child"] == child)


# ------------------------------------------------------------------------------ jobs


def test_recluster_job_flow(api_client: Any, api_headers: dict[str, str], family: dict[str, Any]) -> None:
    accepted = api_client.post("/api/clustering/recluster", headers=api_headers)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()["job"]
    assert job["state"] in ("queued", "running") and accepted.json()["url"] == f"/api/jobs/{job['id']}"
    done = wait_for_job(api_client, job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"] == 1.0 and done["result"]["models"] == 10
    assert "owner" not in done
    families = api_client.get("/api/families").json()["items"]
    assert len(families) == 1 and families[0]["member_count"] == 10
    genealogy = api_client.get(f"/api/families/{families[0]['id']}/genealogy").json()
    assert edge_accuracy(genealogy, family["parents"]) >= 0.9
    listed = api_client.get("/api/jobs").json()
    assert any(j["id"] == job["id"] for j in listed)


def test_rebuild_and_reprocess_jobs(api_client: Any, api_headers: dict[str, str], family: dict[str, Any]) -> None:
    rebuild = api_client.post(f"/api/families/{family['family_id']}/tree/rebuild", headers=api_headers)
    assert rebuild.status_code == 202, rebuild.text
    done = wait_for_job(api_client, rebuild.json()["job"]["id"])
    assert done["state"] == "succeeded", done
    assert done["result"]["member_count"] == 10
    reprocess = api_client.post(f"/api/models/{family['ids']['m2']}/reprocess", headers=api_headers)
    assert reprocess.status_code == 202
    done = wait_for_job(api_client, reprocess.json()["job"]["id"])
    assert done["state"] == "succeeded", done
    assert done["result"]["status"] == "ok" and "path" not in done["result"]
    genealogy = api_client.get(f"/api/families/{family['family_id']}/genealogy").json()
    assert edge_accuracy(genealogy, family["parents"]) >= 0.9


def test_job_of_a_dead_process_is_failed_at_startup(neo4j_db: Any, api_factory: Any) -> None:
    import socket
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)
    neo4j_db.write("CREATE (:Job {id: 'orphan', kind: 'recluster', state: 'running', progress: 0.4, "
                   "owner: $owner, createdAt: datetime(), updatedAt: datetime()})",
                   owner=f"{socket.gethostname()}:{dead_pid}:deadbeef")
    client = api_factory()  # start-up sweeps orphaned jobs
    job = client.get("/api/jobs/orphan").json()
    assert job["state"] == "failed" and "interrupted" in job["message"]


# ------------------------------------------------------------------------- statistics


def test_statistics(api_client: Any, family: dict[str, Any]) -> None:
    stats = api_client.get("/api/clustering/statistics")
    assert stats.status_code == 200
    body = stats.json()
    assert body["models"] == 10 and body["models_by_status"] == {"ok": 10}
    assert body["family_size_distribution"] == {"10": 1} and body["largest_family"] == 10
    config = body["configuration"]
    assert {"metric", "clustering", "threshold", "tree_method", "lambda"} <= set(config)
    assert "import_roots" not in config  # server paths are not public
    system = api_client.get("/api/stats").json()
    assert system["models"] == 10 and system["families"] == 1 and system["derived_edges"] == 9
    assert system["stale_families"] == 0 and system["unplaced_models"] == 0


def test_configuration_comes_from_the_environment(neo4j_db: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from heritage.api.app import create_app

    monkeypatch.setenv("HERITAGE_METRIC", "cosine")
    monkeypatch.setenv("HERITAGE_TREE_METHOD", "distance_only")
    monkeypatch.setenv("HERITAGE_LAMBDA", "0.7")
    monkeypatch.setenv("HERITAGE_UPLOAD_DIR", str(tmp_path / "up"))
    monkeypatch.setenv("HERITAGE_API_KEYS", "k" * 24)
    with TestClient(create_app()) as client:
        config = client.get("/api/clustering/statistics").json()["configuration"]
    assert config["metric"] == "cosine" and config["tree_method"] == "distance_only" and config["lambda"] == 0.7


# ------------------------------------------------------------------- database failures


def test_neo4j_down_is_503_within_seconds(api_factory: Any, api_key: str) -> None:
    from graph.database import Database
    from graph.settings import Neo4jSettings

    down = Database.connect(Neo4jSettings(uri="bolt://127.0.0.1:9", password="irrelevant"))  # nothing listens
    try:
        client = api_factory(db=down, db_timeout_s=2.0)
        for path in ("/api/health", "/api/models", "/api/models", "/api/families", "/api/stats"):
            started = time.monotonic()
            response = client.get(path)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.text)
            assert elapsed < 4.0, (path, elapsed)
            assert "Traceback" not in response.text
        assert client.get("/api/health").json()["status"] == "unavailable"
        assert "unavailable" in client.get("/api/models").json()["detail"]
        headers = {"X-API-Key": api_key}
        for method, path, kwargs in (("post", "/api/clustering/recluster", {}),
                                     ("post", "/api/models", {"files": {"file": ("a.bin", b"x" * 100)}}),
                                     ("delete", "/api/models/abc", {})):
            started = time.monotonic()
            response = getattr(client, method)(path, headers=headers, **kwargs)
            assert response.status_code == 503, (path, response.text)
            assert time.monotonic() - started < 4.0
    finally:
        down.close()


def test_unexpected_errors_are_500_without_internals(api_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = api_factory(raise_server_exceptions=False)
    catalogue = client.app.state.db.catalogue

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail /srv/data")

    monkeypatch.setattr(catalogue, "statistics", broken)
    response = client.get("/api/stats")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "secret" not in response.text and "Traceback" not in response.text


# ------------------------------------------------------------------- the real small zoo


def test_small_zoo_genealogy_through_rest(api_factory: Any, api_headers: dict[str, str]) -> None:
    """Real fine-tunes (heritage.evaluation.zoo, built once into the shared cache) registered through
    REST: families and every stored DERIVED_FROM edge read back match truth.json."""
    import json

    import torch  # noqa: F401
    from heritage.evaluation.zoo import ensure_zoo

    zoo = ensure_zoo("small")
    truth = json.loads((zoo / "truth.json").read_text())
    client = api_factory(import_roots=(zoo / "models",))
    for record in truth["models"]:
        response = client.post("/api/models/register", json={"path": record["entry"], "name": record["name"]},
                               headers=api_headers)
        assert response.status_code == 201, (record["name"], response.text)

    families = client.get("/api/families").json()["items"]
    found_families, found_edges = [], {}
    for family in families:
        genealogy = client.get(f"/api/families/{family['id']}/genealogy").json()
        assert genealogy["validation"]["valid"], genealogy["validation"]
        names = {n["id"]: n["name"] for n in genealogy["nodes"]}
        found_families.append(sorted(names.values()))
        found_edges.update({names[e["child"]]: names[e["parent"]] for e in genealogy["edges"]})
    assert sorted(found_families) == sorted(sorted(f) for f in truth["families"])
    true_edges = {e["child"]: e["parent"] for e in truth["edges"]}
    correct = sum(found_edges.get(child) == parent for child, parent in true_edges.items())
    assert correct / len(true_edges) >= 0.9, found_edges
    # Lineage of a grandchild walks back to its pretrained root.
    by_name = {m["name"]: m["id"] for m in client.get("/api/models", params={"limit": 100}).json()["items"]}
    lineage = client.get(f"/api/models/{by_name['minilm-l6-reviews']}/lineage").json()
    assert lineage["root"]["name"] == "all-MiniLM-L6-v2"


def test_web_front_end_is_served(api_client: Any) -> None:
    """The genealogy explorer (tests/test_ui.py drives it in a browser) over the same API."""
    home = api_client.get("/", follow_redirects=False)
    assert home.status_code in (302, 307) and home.headers["location"] == "/ui/"
    page = api_client.get("/ui/")
    assert page.status_code == 200 and "Model Heritage" in page.text
    assert 'id="upload-dialog"' in page.text and 'id="key-dialog"' in page.text and 'id="view"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    script = api_client.get("/ui/js/api.js")
    assert script.status_code == 200
    # It only calls endpoints the API has.
    paths = set(api_client.get("/openapi.json").json()["paths"])
    endpoints = [a or b for a, b in re.findall(r'(?:get|post)\((?:`([^`]+)`|"([^"]+)")', script.text)]
    assert len(endpoints) >= 14
    for endpoint in endpoints:
        template = "/api" + re.sub(r"\$\{id\((\w+)\)\}", "{x}", endpoint)
        assert any(re.sub(r"\{\w+\}", "{x}", p) == template for p in paths), endpoint
    for path in ("/ui/js/app.js", "/ui/vendor/d3-hierarchy.min.js", "/ui/style.css"):
        assert api_client.get(path).status_code == 200, path
