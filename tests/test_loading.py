"""Loading every supported format, and a clear per-model error for every kind of bad file."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from heritage.errors import InvalidWeightsError, ModelLoadError, UnsafeCheckpointError, UnsupportedFormatError
from heritage.reading.fingerprint import default_threads, fingerprint_model
from heritage.reading.ingest import ingest
from heritage.reading.loader import ModelFormat, load_model
from heritage.reading.profile import file_sha256, profile_model
from heritage.evaluation.synthetic import family_zoo

import torch


@pytest.fixture()
def weights() -> dict[str, np.ndarray]:
    zoo = family_zoo(seed=0, children=0, grandchildren=0, hidden=16)
    return zoo.models["m0"]


def _header_file(path: Path, header: dict, payload: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)
    return path


def test_safetensors_is_memory_mapped_and_profiled(tmp_path: Path, weights) -> None:
    path = tmp_path / "base.safetensors"
    save_file(weights, str(path))
    model = load_model(path)
    assert model.name == "base" and model.format is ModelFormat.SAFETENSORS
    name = next(iter(weights))
    loaded = model.tensors[name].load()
    import mmap

    base = loaded
    while isinstance(base, np.ndarray):  # walk the views down to the buffer they share
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    assert isinstance(base, mmap.mmap)  # memory-mapped, not read into RAM
    np.testing.assert_array_equal(loaded, weights[name])
    profile = profile_model(model)
    assert profile.params == sum(w.size for w in weights.values())
    assert profile.layers == 2
    assert profile.sha256 == file_sha256([path])
    assert profile.dtypes == ("F32",)


@pytest.mark.parametrize("header_length", [0x0280, 0x0380, 0x0580])
def test_safetensors_whose_header_length_looks_like_a_pickle_opcode(tmp_path: Path, weights,
                                                                     header_length: int) -> None:
    """A header length of 0x?280 starts the file with the bytes of a pickle PROTO opcode."""
    path = tmp_path / "model.safetensors"
    weights = {name: w for name, w in weights.items() if "query" in name}  # a small header to grow
    for pad in range(2000):  # metadata of growing length until save_file writes that header length
        save_file(weights, str(path), metadata={"pad": "x" * pad})
        if struct.unpack("<Q", path.read_bytes()[:8])[0] == header_length:
            break
    else:
        pytest.fail(f"no header of {header_length} bytes")
    assert path.read_bytes()[:2] == bytes([0x80, header_length >> 8])
    model = load_model(path)
    assert model.format is ModelFormat.SAFETENSORS and set(model.tensors) == set(weights)
    assert fingerprint_model(model).layers


def test_fp16_and_bf16_become_float32(tmp_path: Path, weights) -> None:
    name = next(iter(weights))
    w = weights[name]
    save_file({name: w.astype(np.float16)}, str(tmp_path / "half.safetensors"))
    half = load_model(tmp_path / "half.safetensors").tensors[name].load()
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, w, rtol=1e-3, atol=1e-4)
    t = torch.from_numpy(w).to(torch.bfloat16)
    from safetensors.torch import save_file as save_torch

    save_torch({name: t}, str(tmp_path / "bf16.safetensors"))
    bf = load_model(tmp_path / "bf16.safetensors").tensors[name].load()
    np.testing.assert_array_equal(bf, t.to(torch.float32).numpy())


def test_torch_formats_and_same_structure(tmp_path: Path, weights) -> None:
    state = {f"bert.{k}": torch.from_numpy(v) for k, v in weights.items()}
    torch.save(state, tmp_path / "a.pt")
    torch.save({"state_dict": state}, tmp_path / "b.bin")
    torch.save(state, tmp_path / "c.pth", _use_new_zipfile_serialization=False)
    save_file(weights, str(tmp_path / "d.safetensors"))
    profiles = [profile_model(load_model(tmp_path / f)) for f in ("a.pt", "b.bin", "c.pth", "d.safetensors")]
    assert {p.structure_hash for p in profiles} == {profiles[0].structure_hash}
    assert [p.format for p in profiles] == ["pytorch", "pytorch", "pytorch", "safetensors"]
    name = next(iter(weights))
    np.testing.assert_array_equal(load_model(tmp_path / "c.pth").tensors[name].load(), weights[name])


def test_hf_folder_sharded_and_model_card(tmp_path: Path, weights) -> None:
    folder = tmp_path / "sharded"
    folder.mkdir()
    names = sorted(weights)
    half = len(names) // 2
    save_file({n: weights[n] for n in names[:half]}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({n: weights[n] for n in names[half:]}, str(folder / "model-00002-of-00002.safetensors"))
    weight_map = {n: ("model-00001-of-00002.safetensors" if i < half else "model-00002-of-00002.safetensors")
                  for i, n in enumerate(names)}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "README.md").write_text("---\nbase_model: org/base-model\nbase_model_relation: finetune\n---\n# card\n")
    model = load_model(folder)
    assert model.format is ModelFormat.SHARDED_FOLDER
    assert set(model.tensors) == set(weights)
    profile = profile_model(model)
    assert profile.declared_base == "org/base-model" and profile.declared_relation == "finetune"

    plain = tmp_path / "plain"
    plain.mkdir()
    torch.save({k: torch.from_numpy(v) for k, v in weights.items()}, plain / "pytorch_model.bin")
    (plain / "config.json").write_text("{}")
    assert load_model(plain).format is ModelFormat.HF_FOLDER


def test_peft_adapter_exposes_effective_deltas(tmp_path: Path, weights) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    rank, alpha = 2, 8
    target = "encoder.layer.0.attention.self.query"
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rank, 16)).astype(np.float32)
    b = rng.standard_normal((16, rank)).astype(np.float32)
    save_file({f"base_model.model.{target}.lora_A.weight": a,
               f"base_model.model.{target}.lora_B.weight": b}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": ["query"],
         "base_model_name_or_path": "/checkpoints/base"}))
    model = load_model(folder)
    assert model.is_adapter and model.format is ModelFormat.PEFT_ADAPTER
    delta = model.tensors[f"{target}.weight"].load()
    np.testing.assert_allclose(delta, b @ a * (alpha / rank), rtol=1e-5)
    assert np.linalg.matrix_rank(delta) == rank
    profile = profile_model(model)
    assert profile.is_adapter and profile.adapter_rank == rank and profile.params == a.size + b.size
    assert profile.declared_base == "/checkpoints/base"


class _WritesMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("flavour", ["zip", "legacy"])
def test_pickle_with_code_is_refused_and_never_run(tmp_path: Path, flavour: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"weight": torch.zeros(2, 2), "evil": _WritesMarker(marker)}
    if flavour == "zip":
        torch.save(payload, path)
    else:
        with path.open("wb") as fh:
            pickle.dump(payload, fh, protocol=4)
    with pytest.raises(UnsafeCheckpointError, match="needs code"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "empty file"),
        ("truncated", "outside the file's data|truncated"),
        ("header_too_long", "larger than the file"),
        ("bad_json", "invalid safetensors JSON header"),
        ("unknown_dtype", "unknown dtype"),
        ("overlap", "overlapping"),
        ("zip", "not a PyTorch checkpoint"),
        ("garbage", "not a safetensors or PyTorch checkpoint"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, weights, case: str, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        save_file(weights, str(path))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 100])
    elif case == "header_too_long":
        path.write_bytes(struct.pack("<Q", 10_000) + b"{}")
    elif case == "bad_json":
        path.write_bytes(struct.pack("<Q", 5) + b"{oops")
    elif case == "unknown_dtype":
        _header_file(path, {"w": {"dtype": "F13", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)
    elif case == "overlap":
        _header_file(path, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12)
    elif case == "zip":
        path = tmp_path / "bad.bin"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("hello.txt", "not a checkpoint")
    else:
        path = tmp_path / "bad.bin"
        path.write_bytes(b"this is plainly not a model file at all")
    with pytest.raises(ModelLoadError, match=message):
        load_model(path)


def test_nan_weights_are_rejected_at_fingerprint(tmp_path: Path, weights) -> None:
    name = "encoder.layer.0.attention.self.query.weight"
    broken = dict(weights)
    broken[name] = weights[name].copy()
    broken[name][3, 4] = np.nan
    save_file(broken, str(tmp_path / "nan.safetensors"))
    with pytest.raises(InvalidWeightsError, match="NaN/Inf"):
        ingest(tmp_path / "nan.safetensors")


@pytest.mark.parametrize("threads", [1, 2])
def test_fingerprint_threads_change_nothing_and_report_the_first_bad_tensor(tmp_path: Path, weights,
                                                                           threads: int) -> None:
    """Fingerprinting on two threads gives the one-thread fingerprint to the byte, and a
    failure names the first broken matrix in the checkpoint's order, whichever thread
    finished first."""
    save_file(weights, str(tmp_path / "ok.safetensors"))
    model = load_model(tmp_path / "ok.safetensors")
    assert default_threads(model) == 1  # nothing to decode: a second thread does not pay
    assert fingerprint_model(model, threads=threads).to_bytes() == fingerprint_model(model, threads=1).to_bytes()
    matrices = [n for n, ref in model.tensors.items() if len(ref.shape) == 2 and "attention" in n]
    first, later = matrices[1], matrices[-1]
    broken = {n: v.copy() for n, v in weights.items()}
    broken[first][0, 0] = np.inf
    broken[later][1, 1] = np.nan
    save_file(broken, str(tmp_path / "bad.safetensors"))
    with pytest.raises(InvalidWeightsError, match=f"{first!r} has 1 NaN/Inf"):
        fingerprint_model(load_model(tmp_path / "bad.safetensors"), threads=threads)


def test_unrecognised_names_are_rejected(tmp_path: Path) -> None:
    save_file({"foo": np.ones((4, 4), np.float32)}, str(tmp_path / "odd.safetensors"))
    with pytest.raises(InvalidWeightsError, match="no attention or MLP"):
        fingerprint_model(load_model(tmp_path / "odd.safetensors"))


def test_missing_shard_and_missing_adapter_weights(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "gone.safetensors"}}))
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(folder)
    adapter = tmp_path / "ad"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    with pytest.raises(ModelLoadError, match="no adapter_model"):
        load_model(adapter)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(UnsupportedFormatError):
        load_model(empty)


def test_half_precision_widening_is_exact_for_every_value() -> None:
    from heritage.reading.dtypes import bf16_to_float32, f16_to_float32

    every = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    reference = every.view(np.float16).astype(np.float32)
    widened = f16_to_float32(every)
    nan = np.isnan(reference)
    np.testing.assert_array_equal(widened.view(np.uint32)[~nan], reference.view(np.uint32)[~nan])
    assert np.isnan(widened[nan]).all()
    as_bf16 = torch.from_numpy(every.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(bf16_to_float32(every).view(np.uint32), as_bf16.view(np.uint32))
