"""Hugging Face hub cache folders: a cache in the hub's exact layout (blobs, snapshot links,
refs) holding files written by transformers and gguf, read by ``heritage recover`` and
``heritage import``; model-card declared bases, a merge's several bases included."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from huggingface_hub import scan_cache_dir

from heritage.cli import main
from heritage.reading.hub_cache import cache_entries, snapshot_revision
from heritage.reading.ingest import model_entries
from heritage.reading.loader import load_model
from heritage.reading.profile import profile_model
from gguf_writing import Q, tiny_llama, write_llama_gguf

BERT = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, vocab_size=100)


def revision(seed: int) -> str:
    return hashlib.sha1(f"commit {seed}".encode()).hexdigest()


def add_to_cache(cache: Path, repo_id: str, commit: str, folder: Path) -> Path:
    """Put ``folder``'s files into ``cache`` as ``huggingface_hub`` stores a download:
    ``blobs/<sha256>``, ``snapshots/<commit>/<file>`` relative links to them, ``refs/main``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    blobs, snapshot = repo / "blobs", repo / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in sorted(folder.iterdir()):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if not (blobs / digest).exists():
            shutil.copyfile(file, blobs / digest)
        (snapshot / file.name).symlink_to(os.path.join("..", "..", "blobs", digest))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def _card(folder: Path, **fields: object) -> None:
    lines = ["---"] + [f"{k}: {json.dumps(v) if isinstance(v, list) else v}" for k, v in fields.items()] + ["---"]
    (folder / "README.md").write_text("\n".join(lines) + "\n# model card\n")


def _perturbed(model: torch.nn.Module, seed: int, scale: float = 0.002) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "attention" in name and name.endswith("weight"):
                param.add_(torch.randn(param.shape, generator=generator) * scale)
    return model


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("downloads")
    cache = tmp_path_factory.mktemp("huggingface") / "hub"
    torch.manual_seed(0)
    base = transformers.BertModel(BERT)
    base.save_pretrained(work / "base")
    add_to_cache(cache, "org/bert-base", revision(1), work / "base")
    for seed in (2, 3):  # two cached revisions of one fine-tuned repository
        tuned = _perturbed(transformers.BertForSequenceClassification.from_pretrained(work / "base", num_labels=2), seed)
        tuned.save_pretrained(work / f"tuned{seed}")
        _card(work / f"tuned{seed}", base_model="org/bert-base", base_model_relation="finetune")
        add_to_cache(cache, "org/bert-tuned", revision(seed), work / f"tuned{seed}")
    a, b = transformers.BertModel.from_pretrained(work / "base"), transformers.BertModel.from_pretrained(work / "tuned2")
    merged = transformers.BertModel(BERT)
    merged.load_state_dict({k: (a.state_dict()[k] + b.state_dict()[k]) / 2 for k in a.state_dict()})
    merged.save_pretrained(work / "merged")
    _card(work / "merged", base_model=["org/bert-base", "org/bert-tuned"], base_model_relation="merge")
    add_to_cache(cache, "org/bert-merged", revision(4), work / "merged")
    llama_dir, config = tiny_llama(work / "llama")
    add_to_cache(cache, "org/llama", revision(5), llama_dir)
    gguf_dir = work / "gguf"
    gguf_dir.mkdir()
    write_llama_gguf(gguf_dir / "llama-Q8_0.gguf", llama_dir, config, lambda n, d: Q.Q8_0)
    write_llama_gguf(gguf_dir / "llama-Q4_0.gguf", llama_dir, config, lambda n, d: Q.Q4_0)
    _card(gguf_dir, base_model="org/llama", base_model_relation="quantized")
    add_to_cache(cache, "org/llama-GGUF", revision(6), gguf_dir)
    return cache


def expected_names() -> set[str]:
    return {"org/bert-base", f"org/bert-tuned@{revision(2)[:12]}", f"org/bert-tuned@{revision(3)[:12]}",
            "org/bert-merged", "org/llama", "org/llama-GGUF/llama-Q4_0", "org/llama-GGUF/llama-Q8_0"}


def test_the_layout_is_the_hubs_and_every_revision_is_a_model(hub_cache: Path) -> None:
    info = scan_cache_dir(hub_cache)
    assert not info.warnings
    assert {r.repo_id for r in info.repos} == {"org/bert-base", "org/bert-tuned", "org/bert-merged",
                                               "org/llama", "org/llama-GGUF"}
    assert sum(len(r.revisions) for r in info.repos) == 6
    entries = cache_entries(hub_cache)
    assert {name for name, _path, _rev in entries} == expected_names()
    # the folder above hub/ (~/.cache/huggingface) works too, and so does one repository's folder
    assert {name for name, _path in model_entries(hub_cache.parent)} == expected_names()
    assert {name for name, _path in model_entries(hub_cache / "models--org--bert-tuned")} == {
        n for n in expected_names() if n.startswith("org/bert-tuned@")}
    for name, path, commit in entries:
        model = load_model(path, name)
        profile = profile_model(model)
        assert profile.revision == commit == snapshot_revision(path), name
        assert profile.name == name
    merged = profile_model(load_model(next(p for n, p, _ in entries if n == "org/bert-merged")))
    assert merged.declared_bases == ("org/bert-base", "org/bert-tuned") and merged.declared_relation == "merge"
    assert merged.declared_base == "org/bert-base"
    q4 = load_model(next(p for n, p, _ in entries if n.endswith("Q4_0")))
    assert q4.quantization == "Q4_0" and q4.path.is_symlink()
    assert profile_model(q4).declared_bases == ("org/llama",)  # the snapshot's model card
    assert profile_model(q4).declared_relation == "quantized"


def test_recover_reads_a_hub_cache(hub_cache: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "result.json"
    assert main(["recover", str(hub_cache), "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    models = {m["name"]: m for m in document["models"]}
    assert set(models) == expected_names() and not document["skipped"]
    assert models["org/bert-base"]["revision"] == revision(1)
    assert models["org/llama-GGUF/llama-Q8_0"]["quantization"] == "Q8_0"
    assert models["org/llama-GGUF/llama-Q8_0"]["format"] == "gguf"
    families = [set(f) for f in document["families"]]
    bert = {n for n in expected_names() if "bert" in n}
    llama = expected_names() - bert
    assert bert in families and llama in families  # heads, dtypes and quantisation do not split families
    edges = {(e["parent"], e["child"]) for e in document["edges"]}
    assert ("org/bert-base", f"org/bert-tuned@{revision(3)[:12]}") in edges
    assert {("org/llama", "org/llama-GGUF/llama-Q4_0"), ("org/llama", "org/llama-GGUF/llama-Q8_0")} <= edges


def test_import_and_address_names_with_slashes(neo4j_db, hub_cache: Path, capsys) -> None:
    assert main(["import", str(hub_cache)]) == 0
    out, err = capsys.readouterr()
    assert "created           7" in out, out + err
    rows = neo4j_db.read("MATCH (m:Model) RETURN m.name AS name, m.revision AS revision, "
                      "m.quantization AS quantization, m.declaredBases AS bases ORDER BY name")
    assert {r["name"] for r in rows} == expected_names()
    by_name = {r["name"]: r for r in rows}
    assert by_name["org/bert-base"]["revision"] == revision(1)
    assert by_name["org/llama-GGUF/llama-Q4_0"]["quantization"] == "Q4_0"
    assert by_name["org/bert-merged"]["bases"] == ["org/bert-base", "org/bert-tuned"]
    declared = neo4j_db.read("MATCH (:Model {name: 'org/bert-merged'})-[d:DECLARED_BASE]->(b) "
                          "RETURN b.name AS base, d.relation AS relation, b:ExternalModel AS external ORDER BY base")
    assert declared == [{"base": "org/bert-base", "relation": "merge", "external": False},
                        {"base": "org/bert-tuned", "relation": "merge", "external": True}]
    tuned = f"org/bert-tuned@{revision(3)[:12]}"
    assert main(["lineage", tuned]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith(f"{tuned} (id ") and "declared base: org/bert-base (finetune)" in out
    assert f"revision: {revision(3)}" in out
    assert main(["lineage", "org/bert-merged"]) == 0
    assert "declared bases: org/bert-base, org/bert-tuned (merge)" in capsys.readouterr().out
    assert main(["lineage", "org/llama-GGUF/llama-Q4_0"]) == 0
    assert "quantization: Q4_0" in capsys.readouterr().out
    assert main(["tree", "org/bert-base"]) == 0
    out, _ = capsys.readouterr()
    assert "org/bert-base" in out and tuned in out
    assert main(["import", str(hub_cache)]) == 0  # idempotent: nothing new
    assert "already stored    7" in capsys.readouterr().out
