"""The wild zoo: every file comes from the writer truth.json names, and the truth is exact.

The zoo is built once into the shared cache by ``ensure_zoo("wild")`` (a few minutes on
two cores) and reused.  Checks read the files with the ecosystem's own readers
(``transformers`` ``from_pretrained``, ``peft``, ``gguf.GGUFReader``,
``huggingface_hub.scan_cache_dir``), never with the code that wrote them.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from heritage.evaluation.scoring import Truth
from heritage.evaluation.zoo import build_zoo
from heritage.evaluation.zoo.pretrained import minilm_l6_folder
from heritage.evaluation.zoo.wild_spec import RELATIONS, wild_spec

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SPECS = wild_spec()


@pytest.fixture(scope="module")
def zoo(wild_zoo) -> Path:
    return Path(wild_zoo)


def folder(zoo: Path, wild_records: dict[str, dict], name: str) -> Path:
    return zoo / "models" / wild_records[name]["entry"]


def weights(zoo: Path, wild_records: dict[str, dict], name: str) -> dict[str, torch.Tensor]:
    """Every tensor a published folder stores, read with safetensors / torch.load."""
    path = folder(zoo, wild_records, name)
    state: dict[str, torch.Tensor] = {}
    for file in sorted(path.glob("*.safetensors")):
        state.update(load_file(str(file)))
    for file in sorted(path.glob("*.bin")):
        state.update(torch.load(str(file), map_location="cpu", weights_only=True))
    return state


def safetensors_metadata(path: Path) -> dict:
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(size)).get("__metadata__", {})


def front_matter(path: Path) -> dict:
    from huggingface_hub import ModelCard

    return ModelCard.load(path).data.to_dict()


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def by_kind(wild_records: dict[str, dict], kind: str) -> list[dict]:
    return [r for r in wild_records.values() if r["kind"] == kind]


# ----------------------------------------------------------------------------- truth.json


def test_truth_is_consistent(zoo: Path, wild_truth: dict, wild_records: dict[str, dict]) -> None:
    assert wild_truth["size"] == "wild"
    assert [r["name"] for r in wild_truth["models"]] == [s.name for s in SPECS]
    assert sorted(p.name for p in (zoo / "models").iterdir()) == sorted(r["entry"] for r in wild_records.values())
    order = {name: i for i, name in enumerate(wild_records)}
    for record in wild_records.values():
        assert (zoo / "models" / record["entry"]).exists()
        assert record["hub_id"].endswith("/" + record["name"])
        parents = [p["name"] for p in record["parents"]]
        assert record["parent"] == (parents[0] if parents else None)
        for parent in parents:
            assert order[parent] < order[record["name"]]
            assert wild_records[parent]["family"] == record["family"]
        if parents:
            assert record["relation"] in RELATIONS
            assert all(p["relation"] == record["relation"] for p in record["parents"])
        else:
            assert record["relation"] is None and record["family"] == record["name"]
    expected_edges = [
        {"parent": p["name"], "child": r["name"], "relation": p["relation"], "weight": p["weight"]}
        for r in wild_records.values()
        for p in r["parents"]
    ]
    assert wild_truth["edges"] == expected_edges
    members = [name for family in wild_truth["families"] for name in family]
    assert sorted(members) == sorted(wild_records)
    for family in wild_truth["families"]:
        roots = [name for name in family if not wild_records[name]["parents"]]
        assert len(roots) == 1 and all(wild_records[n]["family"] == roots[0] for n in family)


def test_merges_have_two_weighted_parents_and_others_one(wild_records: dict[str, dict]) -> None:
    merges = by_kind(wild_records, "merge")
    assert len(merges) == 2
    for record in wild_records.values():
        weights_ = [p["weight"] for p in record["parents"]]
        if record["kind"] == "merge":
            assert len(weights_) == 2 and sum(weights_) == pytest.approx(1.0)
            assert all(0 < w < 1 for w in weights_)
        else:
            assert len(weights_) <= 1 and weights_ in ([], [None])
    assert {r["merge"]["method"] for r in merges} == {"linear", "slerp"}
    slerp = next(r for r in merges if r["merge"]["method"] == "slerp")
    assert [p["weight"] for p in slerp["parents"]] == pytest.approx([1 - slerp["merge"]["t"], slerp["merge"]["t"]])
    assert slerp["parents"][0]["name"] == slerp["merge"]["base_model"]


def test_the_genealogy_covers_every_storage_convention(wild_records: dict[str, dict]) -> None:
    assert {r["relation"] for r in wild_records.values() if r["parents"]} == set(RELATIONS)
    assert {r["format"] for r in wild_records.values()} == {
        "hf_folder", "sharded_folder", "hf_folder_bin", "peft_adapter", "gguf"
    }
    assert {"float32", "float16", "bfloat16"} <= {r["dtype"] for r in wild_records.values()}
    assert {"original file", "transformers save_pretrained", "peft PeftModel.save_pretrained",
            "gguf GGUFWriter", "llama.cpp llama_model_quantize"} <= {r["writer"] for r in wild_records.values()}

    def depth(name: str) -> int:
        parents = wild_records[name]["parents"]
        return 0 if not parents else 1 + max(depth(p["name"]) for p in parents)

    assert max(depth(n) for n in wild_records if wild_records[n]["family"] == "all-MiniLM-L6-v2") >= 2
    assert max(depth(n) for n in wild_records if wild_records[n]["family"] == "paraphrase-MiniLM-L3-v2") >= 2
    assert len(truth_families(wild_records)) == 4  # three pretrained roots and one unrelated model
    declared = [r["declared"] for r in wild_records.values()]
    assert sum(not d["truthful"] for d in declared) >= 2 and any(d["source"] is None for d in declared)
    label_counts = {r["num_labels"] for r in wild_records.values() if "num_labels" in r}
    assert len(label_counts) >= 3


def truth_families(wild_records: dict[str, dict]) -> set[str]:
    return {r["family"] for r in wild_records.values()}


def test_scoring_reads_relations_and_merge_weights(zoo: Path, wild_records: dict[str, dict]) -> None:
    truth = Truth.load(zoo)
    assert len(truth.edges) == sum(len(r["parents"]) for r in wild_records.values())
    assert set(truth.relation.values()) == set(RELATIONS)
    merge_edges = {edge for edge, relation in truth.relation.items() if relation == "merge"}
    assert {edge for edge, weight in truth.weight.items() if weight is not None} == merge_edges
    assert len(merge_edges) == 4


def test_old_truth_files_read_as_finetune_and_adapter(tmp_path: Path) -> None:
    old = {
        "models": [{"name": "a", "kind": "pretrained"}, {"name": "b", "kind": "full_finetune"},
                   {"name": "c", "kind": "lora_adapter"}],
        "families": [["a", "b", "c"]],
        "edges": [{"parent": "a", "child": "b"}, {"parent": "a", "child": "c"}],
    }
    (tmp_path / "truth.json").write_text(json.dumps(old))
    truth = Truth.load(tmp_path)
    assert truth.relation == {("a", "b"): "finetune", ("a", "c"): "adapter"}
    assert truth.weight == {("a", "b"): None, ("a", "c"): None}


# ----------------------------------------------------------------------------- writers


def test_the_root_is_the_original_package_byte_for_byte(zoo: Path, wild_records: dict[str, dict]) -> None:
    (root,) = [r for r in wild_records.values() if r["writer"] == "original file"]
    source = minilm_l6_folder()
    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert Path("model.safetensors") in files and Path("tokenizer.json") in files
    copied = folder(zoo, wild_records, root["name"])
    assert sorted(p.relative_to(copied) for p in copied.rglob("*") if p.is_file()) == files
    match, mismatch, errors = filecmp.cmpfiles(source, copied, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors and len(match) == len(files)
    state = load_file(str(copied / "model.safetensors"))
    assert state["embeddings.position_ids"].dtype == torch.int64  # the buffer re-saves drop
    assert not any(key.startswith("bert.") for key in state)


TRANSFORMERS_WRITTEN = [
    s.name for s in SPECS if s.save in ("save_pretrained", "save_pretrained_sharded", "torch_save")
]


@pytest.mark.parametrize("name", TRANSFORMERS_WRITTEN)
def test_transformers_checkpoints_are_what_transformers_writes_and_reads(
    zoo: Path, wild_records: dict[str, dict], name: str
) -> None:
    import transformers

    record = wild_records[name]
    path = folder(zoo, wild_records, name)
    config = json.loads((path / "config.json").read_text())
    assert config["transformers_version"] == transformers.__version__
    assert config["architectures"] == [record["architecture"]]
    if record["format"] == "hf_folder_bin":
        assert {p.name for p in path.iterdir()} >= {"config.json", "pytorch_model.bin"}
        assert not list(path.glob("*.safetensors"))
    else:
        files = sorted(path.glob("*.safetensors"))
        assert files and all(safetensors_metadata(f) == {"format": "pt"} for f in files)
        if record["format"] == "sharded_folder":
            index = json.loads((path / "model.safetensors.index.json").read_text())
            assert len(files) >= 2 and set(index["weight_map"].values()) == {f.name for f in files}
    state = weights(zoo, wild_records, name)
    assert "embeddings.position_ids" not in state and "bert.embeddings.position_ids" not in state
    assert {str(t.dtype).removeprefix("torch.") for t in state.values()} == {record["dtype"]}
    assert sum(t.numel() for t in state.values()) == record["params"]
    cls = getattr(transformers, record["architecture"])
    extra = {}
    if record["architecture"] == "BertModel" and "pooler.dense.weight" not in state:
        extra["add_pooling_layer"] = False  # the ONNX export it was converted from has no pooler
    model, info = cls.from_pretrained(str(path), output_loading_info=True, **extra)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


def test_task_heads_sit_beside_a_prefixed_backbone(zoo: Path, wild_records: dict[str, dict]) -> None:
    for record in wild_records.values():
        if record["architecture"] != "BertForSequenceClassification":
            continue
        state = weights(zoo, wild_records, record["name"])
        assert "bert.encoder.layer.0.attention.self.query.weight" in state, record["name"]
        labels = record.get("num_labels") or wild_records[record["parents"][0]["name"]].get("num_labels")
        assert state["classifier.weight"].shape == (labels, 384), record["name"]


def test_masked_lm_has_added_tokens_and_a_tied_decoder(zoo: Path, wild_records: dict[str, dict]) -> None:
    from transformers import BertForMaskedLM

    (record,) = [r for r in wild_records.values() if r["architecture"] == "BertForMaskedLM"]
    state = weights(zoo, wild_records, record["name"])
    assert state["bert.embeddings.word_embeddings.weight"].shape == (30522 + record["added_tokens"], 384)
    assert "cls.predictions.decoder.weight" not in state  # tied: save_pretrained stores it once
    assert "cls.predictions.bias" in state and "bert.pooler.dense.weight" not in state
    model = BertForMaskedLM.from_pretrained(str(folder(zoo, wild_records, record["name"])))
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    root = load_file(str(folder(zoo, wild_records, record["parent"]) / "model.safetensors"))
    old_rows = state["bert.embeddings.word_embeddings.weight"][:30522]
    assert 0 < relative(old_rows, root["embeddings.word_embeddings.weight"]) < 0.05  # trained, not replaced


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # raised inside peft
def test_peft_adapter_is_what_peft_writes_and_loads_on_its_base(zoo: Path, wild_records: dict[str, dict]) -> None:
    import peft
    from peft import PeftModel
    from transformers import BertForSequenceClassification

    (record,) = by_kind(wild_records, "lora_adapter")
    path = folder(zoo, wild_records, record["name"])
    assert {p.name for p in path.iterdir()} == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
    config = json.loads((path / "adapter_config.json").read_text())
    parent = wild_records[record["parent"]]
    assert config["peft_type"] == "LORA" and config["task_type"] == "SEQ_CLS"
    assert config["peft_version"] == peft.__version__
    assert config["base_model_name_or_path"] == parent["hub_id"]  # loaded by Hub id from the cache
    assert sorted(config["target_modules"]) == ["query", "value"] and config["r"] == record["train"]["lora_rank"]
    assert front_matter(path / "README.md")["base_model"] == parent["hub_id"]
    state = load_file(str(path / "adapter_model.safetensors"))
    assert safetensors_metadata(path / "adapter_model.safetensors") == {"format": "pt"}
    assert "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight" in state
    assert {"base_model.model.classifier.weight", "base_model.model.classifier.bias"} <= set(state)
    base = BertForSequenceClassification.from_pretrained(
        parent["hub_id"], cache_dir=str(zoo / "hub"), local_files_only=True, num_labels=record["num_labels"]
    )
    model = PeftModel.from_pretrained(base, str(path))
    assert any(float(m.lora_B["default"].weight.abs().max()) > 0 for m in model.modules() if hasattr(m, "lora_B"))


# ----------------------------------------------------------------------------- relations as the truth says


def test_head_only_child_keeps_the_parents_backbone_bit_for_bit(zoo: Path, wild_records: dict[str, dict]) -> None:
    (record,) = by_kind(wild_records, "head_only")
    child, parent = weights(zoo, wild_records, record["name"]), weights(zoo, wild_records, record["parent"])
    backbone = [k for k in parent if k.startswith("bert.")]
    assert len(backbone) > 90 and set(backbone) == {k for k in child if k.startswith("bert.")}
    assert all(torch.equal(child[k], parent[k]) for k in backbone)
    assert child["classifier.weight"].shape != parent["classifier.weight"].shape


def test_conversion_child_is_its_parent_rounded(zoo: Path, wild_records: dict[str, dict]) -> None:
    (record,) = by_kind(wild_records, "dtype_conversion")
    child, parent = weights(zoo, wild_records, record["name"]), weights(zoo, wild_records, record["parent"])
    assert set(child) == set(parent)
    target = getattr(torch, record["dtype"])
    assert all(child[k].dtype == target and torch.equal(child[k], parent[k].to(target)) for k in parent)


def test_linear_merge_is_the_weighted_mean_of_its_parents(zoo: Path, wild_records: dict[str, dict]) -> None:
    (record,) = [r for r in by_kind(wild_records, "merge") if r["merge"]["method"] == "linear"]
    child = weights(zoo, wild_records, record["name"])
    (a, wa), (b, wb) = [(weights(zoo, wild_records, p["name"]), p["weight"]) for p in record["parents"]]
    assert set(child) == set(a) == set(b)
    for key in child:
        expected = (wa * a[key].double() + wb * b[key].double()) / (wa + wb)
        torch.testing.assert_close(child[key].double(), expected, rtol=1e-5, atol=1e-6)
    yaml = (folder(zoo, wild_records, record["name"]) / "mergekit_config.yml").read_text()
    assert "merge_method: linear" in yaml and f"weight: {wa}" in yaml


def test_slerp_merge_interpolates_each_tensor_on_the_sphere(zoo: Path, wild_records: dict[str, dict]) -> None:
    """Per tensor: sin((1-t)θ)/sin θ · base + sin(tθ)/sin θ · other (lerp when nearly colinear)."""
    (record,) = [r for r in by_kind(wild_records, "merge") if r["merge"]["method"] == "slerp"]
    t = record["merge"]["t"]
    child = weights(zoo, wild_records, record["name"])
    base, other = (weights(zoo, wild_records, p["name"]) for p in record["parents"])
    spherical = 0
    for key in child:
        v0, v1 = base[key].double().flatten().numpy(), other[key].double().flatten().numpy()
        dot = float(np.dot(v0 / np.linalg.norm(v0), v1 / np.linalg.norm(v1)))
        if abs(dot) > 0.9995:
            s0, s1 = 1 - t, t
        else:
            theta = np.arccos(dot)
            s0, s1 = np.sin((1 - t) * theta) / np.sin(theta), np.sin(t * theta) / np.sin(theta)
            spherical += 1
        np.testing.assert_allclose(child[key].double().flatten().numpy(), s0 * v0 + s1 * v1, rtol=1e-4, atol=1e-6)
    assert spherical > 0  # the classifier heads of two tasks are far from colinear


def test_student_layers_are_the_chosen_teacher_layers(zoo: Path, wild_records: dict[str, dict]) -> None:
    (record,) = by_kind(wild_records, "layer_subset_student")
    student = weights(zoo, wild_records, record["name"])
    teacher = load_file(str(folder(zoo, wild_records, record["parent"]) / "model.safetensors"))
    layer_map = {int(k): v for k, v in record["layer_map"].items()}
    assert json.loads((folder(zoo, wild_records, record["name"]) / "config.json").read_text())[
        "num_hidden_layers"] == len(layer_map)
    for mine, theirs in layer_map.items():
        key = "encoder.layer.{}.attention.self.query.weight"
        distances = {j: relative(student[key.format(mine)], teacher[key.format(j)]) for j in range(6)}
        assert min(distances, key=distances.__getitem__) == theirs
        assert distances[theirs] < 0.05 < min(d for j, d in distances.items() if j != theirs)


def test_finetuned_children_really_moved(zoo: Path, wild_records: dict[str, dict]) -> None:
    key = "encoder.layer.0.attention.self.query.weight"
    for record in wild_records.values():
        if record["kind"] not in ("full_finetune", "merged_lora") or record["format"] == "gguf":
            continue
        child = weights(zoo, wild_records, record["name"])
        parent = weights(zoo, wild_records, record["parent"])
        if record["architecture"].startswith("Llama"):
            # A merged LoRA on q/v: those moved beyond bf16 rounding, nothing else did.
            for key in parent:
                if key.endswith(("q_proj.weight", "v_proj.weight")):
                    assert relative(child[key], parent[key]) > 2e-3, key
                else:
                    assert torch.equal(child[key], parent[key]), key
            continue
        pick = lambda state: next(v for k, v in state.items() if k.endswith(key))  # noqa: E731
        distance = relative(pick(child), pick(parent))
        assert 1e-4 < distance < 0.05, (record["name"], distance)


def test_unrelated_model_shares_the_architecture_but_not_the_weights(zoo: Path, wild_records: dict[str, dict]) -> None:
    (record,) = by_kind(wild_records, "unrelated")
    mine = weights(zoo, wild_records, record["name"])
    root = load_file(str(folder(zoo, wild_records, "all-MiniLM-L6-v2") / "model.safetensors"))
    key = "encoder.layer.0.attention.self.query.weight"
    assert mine["bert." + key].shape == root[key].shape
    assert relative(mine["bert." + key], root[key]) > 0.5


# ----------------------------------------------------------------------------- GGUF


def gguf_tensors(path: Path) -> dict:
    import gguf

    return {t.name: t for t in gguf.GGUFReader(str(path)).tensors}


def test_gguf_files_are_llama_cpp_files(zoo: Path, wild_records: dict[str, dict]) -> None:
    import gguf

    quantised = by_kind(wild_records, "gguf_quantization")
    assert {r["quantization"]["file_type"] for r in quantised} >= {"Q8_0"}
    k_types = set()
    for record in quantised:
        reader = gguf.GGUFReader(str(folder(zoo, wild_records, record["name"])))
        fields = {name: field.contents() for name, field in reader.fields.items()
                  if not name.startswith("tokenizer.ggml.")}
        assert fields["general.architecture"] == "llama" and fields["llama.block_count"] == 30
        assert fields["llama.attention.head_count_kv"] == 3 and fields["general.quantization_version"] == 2
        assert fields["tokenizer.ggml.model"] == "gpt2" if "tokenizer.ggml.model" in fields else True
        assert "tokenizer.ggml.tokens" in reader.fields
        names = {t.name for t in reader.tensors}
        assert {"token_embd.weight", "output_norm.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight"} <= names
        assert "output.weight" not in names  # tied embeddings, as the converter writes them
        types = {t.tensor_type.name for t in reader.tensors}
        assert record["quantization"]["tensor_types"] == {
            name: sum(t.tensor_type.name == name for t in reader.tensors) for name in types
        }
        assert all(t.tensor_type.name == "F32" for t in reader.tensors if t.name.endswith("_norm.weight"))
        if record["quantization"]["file_type"] == "Q8_0":
            assert {t.tensor_type.name for t in reader.tensors if len(t.shape) == 2} == {"Q8_0"}
        k_types |= types & {"Q4_K", "Q5_K", "Q6_K", "Q3_K", "Q2_K"}
    assert k_types >= {"Q4_K", "Q6_K"}


def test_gguf_rows_are_permuted_the_way_the_converter_permutes_them(zoo: Path, wild_records: dict[str, dict]) -> None:
    """Dequantised attn_q/attn_k equal the parent's q_proj/k_proj only after undoing llama.cpp's
    per-head row interleaving; attn_v is stored as is."""
    from gguf import quants

    (record,) = [r for r in by_kind(wild_records, "gguf_quantization") if r["quantization"]["file_type"] == "Q8_0"]
    tensors = gguf_tensors(folder(zoo, wild_records, record["name"]))
    parent = weights(zoo, wild_records, record["parent"])

    def dequantised(name: str) -> torch.Tensor:
        tensor = tensors[name]
        return torch.from_numpy(quants.dequantize(tensor.data, tensor.tensor_type).copy()).double()

    def interleaved_to_halves(w: torch.Tensor, heads: int) -> torch.Tensor:
        return w.reshape(heads, w.shape[0] // heads // 2, 2, -1).transpose(1, 2).reshape(w.shape)

    for layer in (0, 17):
        for ours, hf, heads in (("attn_q", "q_proj", 9), ("attn_k", "k_proj", 3)):
            stored = dequantised(f"blk.{layer}.{ours}.weight")
            original = parent[f"model.layers.{layer}.self_attn.{hf}.weight"].double()
            assert relative(interleaved_to_halves(stored, heads), original) < 0.01
            assert relative(stored, original) > 0.5
        v = dequantised(f"blk.{layer}.attn_v.weight")
        assert relative(v, parent[f"model.layers.{layer}.self_attn.v_proj.weight"].double()) < 0.01


# ----------------------------------------------------------------------------- cards and the hub cache


def test_declared_lineage_is_written_where_truth_says(zoo: Path, wild_records: dict[str, dict]) -> None:
    import gguf

    for record in wild_records.values():
        declared, path = record["declared"], folder(zoo, wild_records, record["name"])
        if record["format"] == "gguf":
            fields = gguf.GGUFReader(str(path)).fields
            count = fields["general.base_model.count"].contents()
            named = [fields[f"general.base_model.{i}.repo_url"].contents() for i in range(count)]
            assert [url.removeprefix("https://huggingface.co/") for url in named] == declared["base_model"]
            continue
        if declared["source"] is None:
            assert not (path / "README.md").exists(), record["name"]
            continue
        data = front_matter(path / "README.md")
        base = data.get("base_model")
        assert ([base] if isinstance(base, str) else base) == declared["base_model"], record["name"]
        if record["format"] != "peft_adapter":
            assert data.get("base_model_relation") == declared["base_model_relation"], record["name"]
    wrong = [r for r in wild_records.values() if not r["declared"]["truthful"]]
    assert all(r["declared"]["issue"] for r in wrong)
    by_hub_id = {r["hub_id"]: r["name"] for r in wild_records.values()}
    # A wrong card names a real zoo model that is not (only) the true parent.
    (grandparent_claim,) = [r for r in wrong if r["kind"] == "full_finetune" and r["declared"]["source"]]
    claimed = by_hub_id[grandparent_claim["declared"]["base_model"][0]]
    assert claimed == wild_records[grandparent_claim["parent"]]["parent"]


def test_hub_cache_is_read_by_huggingface_hub(zoo: Path, wild_truth: dict) -> None:
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    info = scan_cache_dir(zoo / "hub")
    assert not info.warnings
    cached = {repo.repo_id: repo for repo in info.repos}
    expected = {entry["repo_id"]: entry for entry in wild_truth["hub"]["repos"]}
    assert set(cached) == set(expected) and len(expected) >= 4
    for repo_id, repo in cached.items():
        assert repo.repo_type == "model"
        (revision,) = repo.revisions
        assert revision.commit_hash == expected[repo_id]["revision"] and revision.refs == frozenset({"main"})
        assert sorted(f.file_name for f in revision.files) == sorted(Path(p).name for p in expected[repo_id]["files"])
        for file in revision.files:
            assert file.file_path.is_symlink() and file.blob_path.is_file()
        model_files = [p for p in expected[repo_id]["files"] if p.endswith((".safetensors", ".gguf", ".json"))]
        resolved = try_to_load_from_cache(repo_id, model_files[0], cache_dir=zoo / "hub")
        assert isinstance(resolved, str) and Path(resolved).is_file()
    # The cached files are the published ones.
    for entry in wild_truth["hub"]["repos"]:
        published = zoo / "models" / next(r["entry"] for r in wild_truth["models"] if r["name"] == entry["model"])
        snapshot = zoo / "hub" / f"models--{entry['repo_id'].replace('/', '--')}" / "snapshots" / entry["revision"]
        for name in entry["files"]:
            source = published / name if published.is_dir() else published
            if source.is_file() and (published.is_dir() or name == published.name):
                assert filecmp.cmp(source, snapshot / name, shallow=False)


def test_cached_revision_loads_with_from_pretrained(zoo: Path, wild_truth: dict, wild_records: dict[str, dict]) -> None:
    from transformers import AutoConfig

    for entry in wild_truth["hub"]["repos"]:
        record = wild_records[entry["model"]]
        if record["format"] in ("hf_folder", "sharded_folder"):
            config = AutoConfig.from_pretrained(entry["repo_id"], cache_dir=str(zoo / "hub"), local_files_only=True)
            assert config.model_type == "bert"


# ----------------------------------------------------------------------------- build and CLI


def test_build_is_deterministic(zoo: Path, wild_truth: dict, wild_records: dict[str, dict], tmp_path: Path) -> None:
    """Rebuild the cheapest branch (family B's root and a bf16 child) and compare the weights."""
    rebuilt = build_zoo(tmp_path, "wild", only=["length-bucketer"])
    assert [r["name"] for r in rebuilt["models"]] == ["paraphrase-MiniLM-L3-v2", "length-bucketer"]
    same_env = all(rebuilt["build"][k] == wild_truth["build"][k] for k in ("torch", "transformers", "threads"))
    for name in ("paraphrase-MiniLM-L3-v2", "length-bucketer"):
        again = load_file(str(tmp_path / "models" / name / "model.safetensors"))
        cached = weights(zoo, wild_records, name)
        assert set(again) == set(cached)
        for key in cached:
            if same_env:
                assert torch.equal(again[key], cached[key]), key
            else:
                torch.testing.assert_close(again[key].float(), cached[key].float(), rtol=1e-2, atol=1e-4)


def test_cli_copies_the_wild_zoo_with_its_hub_links(zoo: Path, wild_records: dict[str, dict], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from heritage.cli import main

    out = tmp_path / "wild"
    assert main(["zoo", str(out), "--size", "wild"]) == 0
    assert json.loads((out / "truth.json").read_text()) == json.loads((zoo / "truth.json").read_text())
    snapshots = [p for p in (out / "hub").glob("models--*/snapshots/**/*") if p.is_symlink() or p.is_file()]
    assert snapshots and all(p.is_symlink() and p.resolve().is_file() for p in snapshots)
    assert all(str(p.resolve()).startswith(str(out.resolve())) for p in snapshots)
    assert f"{len(wild_records)} models in 4 families" in capsys.readouterr().out
    shutil.rmtree(out)  # 2.5 GB: not kept among pytest's last three temporary folders
