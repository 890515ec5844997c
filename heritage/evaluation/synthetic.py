"""Small synthetic genealogies for tests and benchmarks.

A root gets heavy-tailed (Student-t) weights, as pretraining produces; each fine-tune
adds a dense Gaussian update, which lowers kurtosis as real fine-tuning does, and a
"LoRA" child adds a low-rank update. Real fine-tuned models (see :mod:`heritage.evaluation.zoo`)
are the ground truth for accuracy; these are for fast checks of the machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROLES = ("query", "key", "value")


def layer_names(layers: int) -> list[str]:
    names = []
    for i in range(layers):
        names += [f"encoder.layer.{i}.attention.self.{r}.weight" for r in ROLES]
        names += [f"encoder.layer.{i}.attention.output.dense.weight",
                  f"encoder.layer.{i}.intermediate.dense.weight",
                  f"encoder.layer.{i}.output.dense.weight"]
    return names


def _shape(name: str, hidden: int) -> tuple[int, int]:
    if "intermediate" in name:
        return (4 * hidden, hidden)
    if name.endswith("output.dense.weight") and "attention" not in name:
        return (hidden, 4 * hidden)
    return (hidden, hidden)


def random_root(rng: np.random.Generator, hidden: int = 64, layers: int = 2,
                tail: float = 4.0) -> dict[str, np.ndarray]:
    return {
        n: (rng.standard_t(tail, size=_shape(n, hidden)) * 0.05).astype(np.float32)
        for n in layer_names(layers)
    }


def finetune(parent: dict[str, np.ndarray], rng: np.random.Generator,
             step: float = 0.1) -> dict[str, np.ndarray]:
    """A dense update of relative size ``step`` (lowers kurtosis)."""
    out = {}
    for n, w in parent.items():
        out[n] = (w + rng.standard_normal(w.shape).astype(np.float32) * (step * float(w.std()))).astype(np.float32)
    return out


def lora_child(parent: dict[str, np.ndarray], rng: np.random.Generator, rank: int = 2,
               step: float = 0.05) -> dict[str, np.ndarray]:
    """A low-rank update on query/value only (a merged LoRA fine-tune)."""
    out = dict(parent)
    for n, w in parent.items():
        if n.endswith(("query.weight", "value.weight")):
            b = rng.standard_normal((w.shape[0], rank)).astype(np.float32)
            a = rng.standard_normal((rank, w.shape[1])).astype(np.float32)
            delta = b @ a
            delta *= step * np.linalg.norm(w) / np.linalg.norm(delta)
            out[n] = (w + delta).astype(np.float32)
    return out


@dataclass
class SyntheticZoo:
    models: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    parents: dict[str, str | None] = field(default_factory=dict)

    def add(self, name: str, weights: dict[str, np.ndarray], parent: str | None) -> None:
        self.models[name] = weights
        self.parents[name] = parent

    def write(self, directory: Path) -> dict[str, Path]:
        from safetensors.numpy import save_file

        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, weights in self.models.items():
            path = directory / f"{name}.safetensors"
            save_file(weights, str(path))
            paths[name] = path
        return paths


def family_zoo(seed: int = 0, hidden: int = 64, layers: int = 2, children: int = 3,
               grandchildren: int = 2, prefix: str = "m") -> SyntheticZoo:
    """One family: a root, ``children`` fine-tunes, ``grandchildren`` per child."""
    rng = np.random.default_rng(seed)
    zoo = SyntheticZoo()
    root = random_root(rng, hidden, layers)
    zoo.add(f"{prefix}0", root, None)
    for c in range(children):
        child = finetune(root, rng)
        cname = f"{prefix}{c + 1}"
        zoo.add(cname, child, f"{prefix}0")
        for g in range(grandchildren):
            zoo.add(f"{cname}_{g + 1}", finetune(child, rng), cname)
    return zoo
