"""The ground-truth zoo: consistent truth, loadable checkpoints, real and deterministic training.

The small zoo is built once (about two minutes on two cores) into the shared cache by
``ensure_zoo`` and reused by later runs; set ``HERITAGE_ZOO_CACHE`` to move the cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import torch
import onnx  # noqa: F401
import gguf  # noqa: F401

from safetensors.torch import load_file  # noqa: E402

from heritage.evaluation.zoo import build_zoo, ensure_zoo, zoo_spec  # noqa: E402

SMALL = zoo_spec("small")
FULL_CHECKPOINTS = [s.name for s in SMALL if s.kind != "lora_adapter"]


@pytest.fixture(scope="module")
def zoo() -> Path:
    return ensure_zoo("small")


@pytest.fixture(scope="module")
def truth(zoo: Path) -> dict:
    return json.loads((zoo / "truth.json").read_text())


@pytest.fixture(scope="module")
def records(truth: dict) -> dict[str, dict]:
    return {record["name"]: record for record in truth["models"]}


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Read any full-checkpoint layout the zoo writes, the way a user would."""
    if path.is_dir():
        for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
            if (path / index).is_file():
                shards = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
                state: dict[str, torch.Tensor] = {}
                for shard in shards:
                    state.update(load_checkpoint(path / shard))
                return state
        return load_file(str(path / "model.safetensors"))
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(str(path), map_location="cpu", weights_only=True)


def weights(zoo: Path, records: dict[str, dict], name: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(zoo / "models" / records[name]["entry"])


def attention(state: dict[str, torch.Tensor]) -> list[str]:
    return sorted(k for k in state if ".attention." in k and k.endswith(".weight") and "LayerNorm" not in k)


def relative_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], keys: list[str]) -> float:
    num = sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in keys)
    den = sum(float((b[k].double() ** 2).sum()) for k in keys)
    return (num / den) ** 0.5


def depth(records: dict[str, dict], name: str) -> int:
    parent = records[name]["parent"]
    return 0 if parent is None else 1 + depth(records, parent)


# ----------------------------------------------------------------------------- truth.json


def test_truth_is_consistent(zoo: Path, truth: dict, records: dict[str, dict]) -> None:
    assert truth["size"] == "small"
    assert 10 <= len(records) <= 12
    for record in records.values():
        assert record["parent"] is None or record["parent"] in records
        assert (record["parent"] is None) == (record["kind"] in ("pretrained", "unrelated"))
        assert (zoo / "models" / record["entry"]).exists()
        assert Path(record["entry"]).stem == record["name"] or record["entry"] == record["name"]
        if record["parent"]:
            parent = records[record["parent"]]
            assert record["family"] == parent["family"]
            assert record["architecture"] == parent["architecture"]
    # Each entry under models/ is exactly one model.
    assert sorted(p.name for p in (zoo / "models").iterdir()) == sorted(r["entry"] for r in records.values())
    # Families: a partition of the models, each with exactly one root, named after it.
    members = [name for family in truth["families"] for name in family]
    assert sorted(members) == sorted(records)
    for family in truth["families"]:
        roots = [name for name in family if records[name]["parent"] is None]
        assert len(roots) == 1 and all(records[n]["family"] == roots[0] for n in family)
    assert {(e["parent"], e["child"]) for e in truth["edges"]} == {
        (r["parent"], r["name"]) for r in records.values() if r["parent"]
    }


def test_genealogy_covers_the_required_cases(records: dict[str, dict]) -> None:
    pretrained = [r for r in records.values() if r["kind"] == "pretrained"]
    assert len({r["architecture"] for r in pretrained}) >= 2
    root_a = records["all-MiniLM-L6-v2"]
    for family in ("all-MiniLM-L6-v2", "paraphrase-MiniLM-L3-v2"):
        assert max(depth(records, n) for n, r in records.items() if r["family"] == family) >= 2
    assert {r["kind"] for r in records.values()} == {
        "pretrained", "full_finetune", "merged_lora", "lora_adapter", "unrelated"
    }
    assert {r["format"] for r in records.values()} == {
        "safetensors", "pytorch", "hf_folder", "sharded_folder", "peft_adapter"
    }
    assert {Path(r["entry"]).suffix for r in records.values() if r["format"] == "pytorch"} == {".bin", ".pt"}
    assert {"float16", "bfloat16"} <= {r["dtype"] for r in records.values()}
    unrelated = [r for r in records.values() if r["kind"] == "unrelated"]
    assert unrelated and all(r["architecture"] == root_a["architecture"] for r in unrelated)
    assert all(r["family"] == r["name"] for r in unrelated)
    for record in records.values():
        if record["kind"] not in ("pretrained",):
            assert {"steps", "lr", "seed", "task"} <= set(record["train"])
        if record["kind"] in ("merged_lora", "lora_adapter"):
            assert record["train"]["lora_rank"] > 0


def test_adapter_folder_is_a_peft_adapter(zoo: Path, records: dict[str, dict]) -> None:
    (adapter,) = [r for r in records.values() if r["kind"] == "lora_adapter"]
    folder = zoo / "models" / adapter["entry"]
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "FEATURE_EXTRACTION"
    assert config["target_modules"] == ["query", "value"]
    assert config["r"] == adapter["train"]["lora_rank"] and config["lora_alpha"] > 0
    # What PEFT records: the repository id of the model it was trained on (its parent).
    assert config["base_model_name_or_path"].rsplit("/", 1)[-1] == adapter["parent"]
    state = load_file(str(folder / "adapter_model.safetensors"))
    parent = weights(zoo, records, adapter["parent"])
    layers = {k.split(".")[4] for k in state}
    assert len(state) == 4 * len(layers)  # A and B for query and value in every layer
    assert sum(t.numel() for t in state.values()) == adapter["params"]
    for key, tensor in state.items():
        assert key.startswith("base_model.model.encoder.layer.")
        module = key[len("base_model.model."): key.index(".lora_")]
        out_features, in_features = parent[f"{module}.weight"].shape
        expected = (config["r"], in_features) if ".lora_A." in key else (out_features, config["r"])
        assert tuple(tensor.shape) == expected, key
    assert any(float(t.abs().max()) > 0 for k, t in state.items() if ".lora_B." in k)  # trained


def test_hf_folders_carry_config_and_card(zoo: Path, records: dict[str, dict]) -> None:
    for record in records.values():
        if record["format"] not in ("hf_folder", "sharded_folder"):
            continue
        folder = zoo / "models" / record["entry"]
        config = json.loads((folder / "config.json").read_text())
        assert config["model_type"] == "bert" and config["torch_dtype"] == record["dtype"]
        if record["format"] == "sharded_folder":
            index = json.loads((folder / "model.safetensors.index.json").read_text())
            assert (folder / "model-00001-of-00002.safetensors").is_file()
            assert set(index["weight_map"].values()) <= {p.name for p in folder.iterdir()}
        elif record["parent"] is not None:
            card = (folder / "README.md").read_text()
            front = card.split("---")[1]
            assert f"base_model: {record['parent']}" in front.splitlines()
            assert "base_model_relation: finetune" in front.splitlines()


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("name", FULL_CHECKPOINTS)
def test_checkpoint_loads_with_hf_key_names(zoo: Path, records: dict[str, dict], name: str) -> None:
    record = records[name]
    state = weights(zoo, records, name)
    root = weights(zoo, records, record["family"]) if record["kind"] != "unrelated" else state
    assert set(state) == set(root)
    assert "embeddings.word_embeddings.weight" in state
    assert "encoder.layer.0.attention.self.query.weight" in state
    assert "encoder.layer.0.attention.output.dense.weight" in state
    assert "encoder.layer.0.intermediate.dense.weight" in state
    assert "encoder.layer.0.output.LayerNorm.weight" in state
    assert {str(t.dtype).removeprefix("torch.") for t in state.values()} == {record["dtype"]}
    assert sum(t.numel() for t in state.values()) == record["params"]
    assert all(torch.isfinite(t.float()).all() for t in state.values())


@pytest.mark.parametrize("name", [s.name for s in SMALL if s.kind in ("full_finetune", "merged_lora")])
def test_finetuned_child_really_differs(zoo: Path, records: dict[str, dict], name: str) -> None:
    child, parent = weights(zoo, records, name), weights(zoo, records, records[name]["parent"])
    keys = attention(parent)
    distance = relative_distance(child, parent, keys)
    assert 5e-4 < distance < 5e-2, distance
    if records[name]["kind"] == "merged_lora":
        untouched = [k for k in parent if ".query." not in k and ".value." not in k]
        assert all(torch.equal(child[k].float(), parent[k].float()) for k in untouched)


@pytest.mark.parametrize("name", [s.name for s in SMALL if s.kind == "merged_lora"])
def test_merged_lora_delta_has_the_lora_rank(zoo: Path, records: dict[str, dict], name: str) -> None:
    record = records[name]
    assert record["dtype"] == "float32"  # fp16 rounding would add full-rank noise
    child, parent = weights(zoo, records, name), weights(zoo, records, record["parent"])
    rank = record["train"]["lora_rank"]
    targets = [k for k in parent if k.endswith((".query.weight", ".value.weight"))]
    assert targets
    for key in targets:
        singular = torch.linalg.svdvals(child[key].double() - parent[key].double())
        assert int((singular > 1e-2 * singular[0]).sum()) == rank, key


def test_build_is_deterministic(zoo: Path, truth: dict, records: dict[str, dict], tmp_path: Path) -> None:
    """Rebuild two cheap models (a full fine-tune and a merged LoRA of family B)."""
    names = ["minilm-l3-length", "minilm-l3-pairs"]
    rebuilt = build_zoo(tmp_path, "small", only=names)
    assert [r["name"] for r in rebuilt["models"]] == ["paraphrase-MiniLM-L3-v2", *names]
    # Bit-identical when built by the same torch with the same thread count; BLAS
    # reductions may round differently otherwise.
    same_env = rebuilt["build"]["torch"] == truth["build"]["torch"] and (
        rebuilt["build"]["threads"] == truth["build"]["threads"]
    )
    for name in names:
        again = load_checkpoint(tmp_path / "models" / records[name]["entry"])
        cached = weights(zoo, records, name)
        assert set(again) == set(cached)
        for key in cached:
            if same_env:
                assert torch.equal(again[key], cached[key]), key
            else:
                torch.testing.assert_close(again[key].float(), cached[key].float(), rtol=1e-3, atol=1e-5)


# ----------------------------------------------------------------------------- CLI


def test_cli_refuses_a_non_empty_out_and_copies_the_cached_zoo(
    zoo: Path, records: dict[str, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from heritage.cli import main

    out = tmp_path / "zoo"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["zoo", str(out)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["zoo", str(out), "--force"]) == 0
    assert json.loads((out / "truth.json").read_text()) == json.loads((zoo / "truth.json").read_text())
    assert (out / "keep.txt").is_file()
    assert f"{len(records)} models" in capsys.readouterr().out


# ----------------------------------------------------------------------------- full spec (not built here)


def test_full_spec_is_a_larger_superset() -> None:
    full = {spec.name: spec for spec in zoo_spec("full")}
    assert 25 <= len(full) <= 40
    assert {s.name for s in SMALL} <= set(full)

    def level(name: str) -> int:
        return 0 if full[name].parent is None else 1 + level(full[name].parent)

    for root in ("all-MiniLM-L6-v2", "paraphrase-MiniLM-L3-v2"):
        members = [n for n in full if _root_of(full, n) == root]
        assert max(level(n) for n in members) >= 2
        kinds = {full[n].kind for n in members if level(n) >= 1}
        assert {"full_finetune", "merged_lora"} <= kinds
    assert sum(s.kind == "pretrained" for s in full.values()) >= 2
    assert any(s.format == "sharded_folder" and s.shard_backend == "pytorch" for s in full.values())
    assert any(s.kind == "lora_adapter" for s in full.values())


def _root_of(specs: dict, name: str) -> str:
    while specs[name].parent is not None:
        name = specs[name].parent
    return name
