"""The Python API: names importable from ``heritage``, fingerprints of in-memory weights.

The README's "Python API" section is itself run as a doctest (see the root conftest.py);
these tests pin what it relies on: importing ``heritage`` is cheap, every public name
resolves, and a fingerprint taken from arrays in memory equals the one taken from the
file the ecosystem's own writer (``safetensors.numpy.save_file``, ``torch.save``) makes
of the same arrays.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import heritage
from heritage import GenealogyRecovery, ModelLoadError, fingerprint
from heritage.evaluation.synthetic import family_zoo


def assert_same_fingerprint(a, b) -> None:
    assert a.structure_hash == b.structure_hash and set(a.layers) == set(b.layers)
    for name, layer in a.layers.items():
        other = b.layers[name]
        np.testing.assert_allclose(layer.sketch, other.sketch, rtol=1e-5, atol=1e-6)
        assert layer.shape == other.shape and layer.norm == pytest.approx(other.norm, rel=1e-6)
    assert a.kurtosis == pytest.approx(b.kurtosis, rel=1e-6)


def test_importing_heritage_loads_nothing_until_a_name_is_used() -> None:
    code = ("import sys, heritage; loaded = [m for m in sys.modules if m.startswith(('heritage.', 'graph', 'torch'))]; "
            "print(loaded); sys.exit(1 if loaded else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in heritage.__all__:
        assert getattr(heritage, name) is not None, name
    with pytest.raises(AttributeError):
        heritage.no_such_name  # noqa: B018


def test_numpy_arrays_fingerprint_like_their_safetensors_file(tmp_path: Path) -> None:
    weights = family_zoo(3, children=0, grandchildren=0).models["m0"]
    save_file(weights, str(tmp_path / "m0.safetensors"))
    assert_same_fingerprint(fingerprint(weights, name="m0"), fingerprint(tmp_path / "m0.safetensors"))
    as_float64 = {name: w.astype(np.float64) for name, w in weights.items()}
    assert_same_fingerprint(fingerprint(as_float64), fingerprint(weights))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_state_dict_fingerprints_like_its_torch_save_file(tmp_path: Path, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64).to(dtype)
    state = {f"module.{name}": tensor for name, tensor in layer.state_dict().items()}  # a wrapper prefix too
    torch.save(state, tmp_path / "layer.pt")
    in_memory, on_disk = fingerprint(state, name="layer"), fingerprint(tmp_path / "layer.pt")
    assert set(in_memory.layers) == {"self_attn.in_proj_weight", "self_attn.out_proj.weight"}
    assert_same_fingerprint(in_memory, on_disk)


def test_recovery_from_state_dicts_in_memory() -> None:
    zoo = family_zoo(5)
    fingerprints = [fingerprint({k: torch.from_numpy(v) for k, v in w.items()}, name=name)
                    for name, w in zoo.models.items()]
    genealogy = GenealogyRecovery().recover(fingerprints)
    truth = {(parent, child) for child, parent in zoo.parents.items() if parent}
    found = {(e.parent, e.child) for e in genealogy.edges}
    assert len(found & truth) >= 0.9 * len(truth)
    assert all(family.validation().valid for family in genealogy.families)


@pytest.mark.parametrize("weights,message", [
    ({}, "no weights"),
    ({"layer.query.weight": np.array(["a", "b"])}, "not a numeric array"),
    ({1: np.eye(3)}, "must be strings"),
    ({"module.q.weight": np.eye(3), "q.weight": np.eye(3)}, "same name"),
])
def test_unusable_in_memory_weights_are_a_clear_error(weights: dict, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        fingerprint(weights)
