"""Defects found by probing the running API from outside, each fixed and kept fixed.

* a safetensors upload (or registered file, or batch-imported file) whose JSON header
  nests 100,000 levels is a 400 / a per-model failure, not a 500 (``RecursionError``);
* 500 answers carry the same security headers as every other answer;
* ``DELETE /api/models/{id}`` removes the uploaded file the API stored for the model;
  registered files belong to the user and are never deleted;
* names with bidirectional-override or other format characters (Unicode category Cf),
  control characters, or made only of dots are refused: 422 through the API, one failed
  result per model in a batch import;
* two processes applying the schema to an empty database at the same moment both
  succeed (``EquivalentSchemaRuleAlreadyExists`` is the other one's work, not an error);
* ``register`` with import roots set: a symlink out of a root, ``/proc`` files, a FIFO
  (inside a root or inside a model folder) and a folder of 10,000 entries are refused
  with 403/400 quickly, never a hang.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from graph.database import Database
from heritage.evaluation.synthetic import family_zoo, random_root

pytestmark = pytest.mark.usefixtures("neo4j_db")

SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}
QUICK_S = 5.0  # generous: each refusal takes well under a second


def post_file(client: Any, headers: dict[str, str], content: bytes, filename: str = "model.safetensors",
              **fields: str) -> Any:
    return client.post("/api/models", files={"file": (filename, content, "application/octet-stream")},
                       data=fields, headers=headers)


def small_model(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(random_root(np.random.default_rng(seed), hidden=32, layers=1), str(path))
    return path


def nested_header_file(path: Path, depth: int = 100_000) -> Path:
    """A safetensors file whose JSON header is a list nested ``depth`` levels deep."""
    header = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "x": ' + b"[" * depth + b"]" * depth + b"}"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    return path


def stored_files(upload_dir: Path) -> list[Path]:
    return sorted(p for p in upload_dir.iterdir() if p.is_file()) if upload_dir.exists() else []


# ------------------------------------------------------------------ nested JSON header


def models_stored(db: Database) -> int:
    return db.read("MATCH (m:Model) RETURN count(m) AS n")[0]["n"]


def test_a_deeply_nested_header_is_a_400_everywhere(neo4j_db: Database, api_factory: Any,
                                                    api_headers: dict[str, str], catalogue: Any,
                                                    tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    deep = nested_header_file(root / "deep.safetensors")
    folder = root / "deep-folder"
    folder.mkdir()
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    small_model(folder / "model.safetensors", 1)
    client = api_factory(import_roots=(root,), raise_server_exceptions=False)

    response = post_file(client, api_headers, deep.read_bytes())
    assert response.status_code == 400, response.text
    assert "Traceback" not in response.text and "\n" not in response.json()["detail"]
    for path in ("deep.safetensors", "deep-folder"):
        registered = client.post("/api/models/register", json={"path": path}, headers=api_headers)
        assert registered.status_code == 400, (path, registered.text)
    summary = catalogue.import_many([("deep", deep), ("deep-folder", folder)])
    assert [r.status for r in summary.results] == ["failed", "failed"]
    assert all(r.error and "\n" not in r.error for r in summary.results)
    assert models_stored(neo4j_db) == 0


# ------------------------------------------------------------------ 500 answers


def test_500_answers_carry_the_security_headers(api_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = api_factory(raise_server_exceptions=False)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("an internal failure")

    monkeypatch.setattr(client.app.state.db.catalogue, "statistics", broken)
    response = client.get("/api/stats")
    assert response.status_code == 500 and response.json() == {"detail": "internal server error"}
    assert {k: response.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS


# ------------------------------------------------------------------ uploaded files


def test_delete_removes_the_uploaded_file_but_never_a_registered_one(api_factory: Any, api_headers: dict[str, str],
                                                                    tmp_path: Path) -> None:
    root = tmp_path / "root"
    models = family_zoo(31, prefix="d", hidden=32, layers=1, children=2, grandchildren=0).write(tmp_path / "zoo")
    mine = small_model(root / "mine.safetensors", 7)
    client = api_factory(import_roots=(root,))
    upload_dir = tmp_path / "uploads"

    for _ in range(3):  # repeated upload and delete must not fill the disk
        ids = []
        for name, path in models.items():
            response = post_file(client, api_headers, path.read_bytes(), f"{name}.safetensors")
            assert response.status_code == 201, response.text
            ids.append(response.json()["model"]["id"])
        assert len(stored_files(upload_dir)) == len(models)
        for model_id in ids:
            assert client.delete(f"/api/models/{model_id}", headers=api_headers).status_code == 200
        assert stored_files(upload_dir) == []

    registered = client.post("/api/models/register", json={"path": "mine.safetensors"}, headers=api_headers)
    assert registered.status_code == 201, registered.text
    assert client.delete(f"/api/models/{registered.json()['model']['id']}", headers=api_headers).status_code == 200
    assert mine.is_file()  # the user's file


def test_a_registered_file_inside_the_upload_folder_is_still_the_users(api_factory: Any,
                                                                       api_headers: dict[str, str],
                                                                       tmp_path: Path) -> None:
    upload_dir = tmp_path / "uploads"
    theirs = small_model(upload_dir / "0123456789abcdef0123456789abcdef.safetensors", 8)  # named like an upload
    client = api_factory(import_roots=(upload_dir,))
    registered = client.post("/api/models/register", json={"path": theirs.name}, headers=api_headers)
    assert registered.status_code == 201, registered.text
    assert client.delete(f"/api/models/{registered.json()['model']['id']}", headers=api_headers).status_code == 200
    assert theirs.is_file()


# ------------------------------------------------------------------ names

REFUSED_NAMES = [
    "evil\u202egpj.safetensors",  # right-to-left override: displays as "eviljpg.sretnesafs"
    "isolate\u2066d\u2069",  # left-to-right isolate ... pop directional isolate
    "zero\u200bwidth",  # zero-width space
    "joiner\u200d",  # zero-width joiner
    "bom\ufeff",  # zero-width no-break space
    "soft\u00adhyphen",  # soft hyphen
    "line\u2028separator",
    ".",
    "..",
    "...",
]


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_format_characters_and_dot_names_are_422(neo4j_db: Database, api_factory: Any,
                                                 api_headers: dict[str, str], tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    model = small_model(root / "plain.safetensors", 3)
    client = api_factory(import_roots=(root,))
    uploaded = post_file(client, api_headers, model.read_bytes(), name=name)
    assert uploaded.status_code == 422, uploaded.text
    registered = client.post("/api/models/register", json={"path": "plain.safetensors", "name": name},
                             headers=api_headers)
    assert registered.status_code == 422, registered.text
    assert models_stored(neo4j_db) == 0


def test_names_taken_from_files_are_checked_too(api_factory: Any, api_headers: dict[str, str],
                                                tmp_path: Path) -> None:
    root = tmp_path / "root"
    odd = small_model(root / "evil\u202egpj.safetensors", 4)
    client = api_factory(import_roots=(root,))
    registered = client.post("/api/models/register", json={"path": odd.name}, headers=api_headers)
    assert registered.status_code == 422, registered.text
    assert "U+202E" in registered.text
    # An upload's default name comes from the client's file name: format characters are
    # dropped from it, as control characters are, and a name of dots gives way to the hash.
    uploaded = post_file(client, api_headers, odd.read_bytes(), filename=odd.name)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["model"]["name"] == "evilgpj"
    dots = post_file(client, api_headers, small_model(tmp_path / "x.safetensors", 5).read_bytes(),
                     filename="....safetensors")
    assert dots.status_code == 201, dots.text
    assert dots.json()["model"]["name"].startswith("upload-")


def test_batch_import_refuses_such_names_one_line_each(catalogue: Any, tmp_path: Path) -> None:
    entries = [(name, small_model(tmp_path / f"n{i}.safetensors", 40 + i)) for i, name in enumerate(REFUSED_NAMES)]
    entries.append(("fine-name", small_model(tmp_path / "fine.safetensors", 99)))
    summary = catalogue.import_many(entries)
    assert [r.status for r in summary.results] == ["failed"] * len(REFUSED_NAMES) + ["created"]
    for result in summary.results[:-1]:
        assert result.error and "\n" not in result.error and "name" in result.error, result.error
    assert "U+202E" in summary.results[0].error


# ------------------------------------------------------------------ schema race

_APPLY_SCHEMA_AT = """
    import sys, time
    from graph.database import Database
    from graph.schema import apply_schema

    start = float(sys.argv[1])
    with Database.connect() as db:
        db.ping()
        time.sleep(max(0.0, start - time.time()))
        apply_schema(db)
    print("APPLIED")
"""


def drop_schema(db: Database) -> None:
    """Remove every constraint and index but the built-in token lookups: an empty database."""
    for row in db.read("SHOW CONSTRAINTS YIELD name"):
        db.write_transaction(lambda tx, name=row["name"]: tx.run("DROP CONSTRAINT $name", name=name))
    for row in db.read("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP'"):
        db.write_transaction(lambda tx, name=row["name"]: tx.run("DROP INDEX $name", name=name))


def test_processes_applying_the_schema_together_all_succeed(neo4j_db: Database) -> None:
    script = textwrap.dedent(_APPLY_SCHEMA_AT)
    for round_ in range(3):
        drop_schema(neo4j_db)
        assert neo4j_db.read("SHOW CONSTRAINTS YIELD name") == []
        start = time.time() + 8.0  # every child is connected and waiting by then
        children = [subprocess.Popen([sys.executable, "-c", script, str(start)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True) for _ in range(3)]
        outputs = [child.communicate(timeout=180)[0] for child in children]
        for child, output in zip(children, outputs):
            assert child.returncode == 0 and "APPLIED" in output, (round_, output[-3000:])
    names = {r["name"] for r in neo4j_db.read("SHOW INDEXES YIELD name")}
    assert {"model_sha256", "model_id_unique", "model_placement"} <= names


# ------------------------------------------------------------------ register confinement


def timed_register(client: Any, headers: dict[str, str], path: str) -> tuple[int, float]:
    started = time.monotonic()
    response = client.post("/api/models/register", json={"path": path}, headers=headers)
    return response.status_code, time.monotonic() - started


def test_register_refuses_links_out_and_proc_files_quickly(api_factory: Any, api_headers: dict[str, str],
                                                           tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = small_model(tmp_path / "outside" / "secret.safetensors", 6)
    root.mkdir()
    (root / "escape.safetensors").symlink_to(outside)
    (root / "environ").symlink_to("/proc/self/environ")
    (root / "folder").mkdir()
    small_model(root / "folder" / "model.safetensors", 9)
    (root / "folder" / "extra.safetensors").symlink_to(outside)
    client = api_factory(import_roots=(root,))
    for path in ("escape.safetensors", "environ", "/proc/self/environ", "/proc/self/cmdline", "folder"):
        status, seconds = timed_register(client, api_headers, path)
        assert status == 403 and seconds < QUICK_S, (path, status, seconds)


def test_register_refuses_fifos_without_hanging(api_factory: Any, api_headers: dict[str, str],
                                                tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe.safetensors")
    (root / "folder").mkdir()
    (root / "folder" / "config.json").write_text("{}")
    os.mkfifo(root / "folder" / "model.safetensors")
    (root / "configured").mkdir()
    os.mkfifo(root / "configured" / "config.json")
    small_model(root / "configured" / "model.safetensors", 11)
    client = api_factory(import_roots=(root,))
    for path, fifo in (("pipe.safetensors", root / "pipe.safetensors"),
                       ("folder", root / "folder" / "model.safetensors"),
                       ("configured", root / "configured" / "config.json")):
        result: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: result.update(answer=timed_register(client, api_headers, path)))
        worker.start()
        worker.join(QUICK_S)
        if worker.is_alive():  # opened the FIFO and blocks on it: give it a writer that closes
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(30)
            pytest.fail(f"registering {path} hung on a FIFO")
        status, seconds = result["answer"]
        assert status == 400 and seconds < QUICK_S, (path, status, seconds)


def test_register_refuses_a_folder_of_ten_thousand_entries_quickly(api_factory: Any, api_headers: dict[str, str],
                                                                   tmp_path: Path) -> None:
    root = tmp_path / "root"
    big = root / "big"
    big.mkdir(parents=True)
    for i in range(10_001):
        (big / f"f{i:05d}.txt").touch()
    client = api_factory(import_roots=(root,))
    for path in ("big", str(root)):
        status, seconds = timed_register(client, api_headers, path)
        assert status == 400 and seconds < QUICK_S, (path, status, seconds)
