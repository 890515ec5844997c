"""Small synthetic genealogies for tests and benchmarks.

A root gets heavy-tailed (Student-t) weights, as pretraining produces; each fine-tune
adds a dense Gaussian update, which lowers kurtosis as real fine-tuning does, and a
"LoRA" child adds a low-rank update. Real fine-tuned models (see :mod:`heritage.evaluation.zoo`)
are the ground truth for accuracy; these are for fast checks of the machinery.
"""

from __future__ import annotations

import math
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
    # Storage dtype per model when not float32 (e.g. "float16").
    dtypes: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, weights: dict[str, np.ndarray], parent: str | None) -> None:
        self.models[name] = weights
        self.parents[name] = parent

    def write(self, directory: Path) -> dict[str, Path]:
        from safetensors.numpy import save_file

        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, weights in self.models.items():
            path = directory / f"{name}.safetensors"
            dtype = self.dtypes.get(name, "float32")
            save_file({n: w.astype(dtype) for n, w in weights.items()}, str(path))
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


def heavy_tailed_finetune(parent: dict[str, np.ndarray], rng: np.random.Generator, step: float,
                          tail: float) -> dict[str, np.ndarray]:
    """A dense update of relative size ``step`` with Student-t(``tail``) entries: heavy
    tails (small ``tail``) raise kurtosis, light ones lower it, as real fine-tunes do
    either way, so kurtosis is no free direction signal here."""
    out = {}
    for n, w in parent.items():
        noise = rng.standard_t(tail, size=w.shape) if math.isfinite(tail) else rng.standard_normal(w.shape)
        noise = noise / (float(noise.std()) or 1.0)
        out[n] = (w + noise.astype(np.float32) * (step * float(w.std()))).astype(np.float32)
    return out


def _lineage(zoo: SyntheticZoo, name: str) -> set[str]:
    """``name`` and its ancestors."""
    out = {name}
    while zoo.parents.get(name):
        name = zoo.parents[name]
        out.add(name)
    return out


def hard_family(seed: int, prefix: str, hidden: int = 48, layers: int = 2, size: int = 8,
                merge_share: float = 0.15, conversion_share: float = 0.1,
                easy: bool = False) -> tuple[SyntheticZoo, list[dict]]:
    """One family built to be hard to recover: random tree shape, fine-tune steps from
    tiny to large (0.3 % to 30 % of the weights), update tails that raise or lower
    kurtosis, plus some linear merges of two members that are not each other's ancestors
    (as people merge fine-tunes of one base) and some float16 conversions.

    ``easy``: the same shapes with fine-tunes like the real zoo's (steps of 1-3 %,
    Gaussian updates that lower kurtosis), so a calibration also sees families where
    the evidence is clear.

    Returns the zoo (float16 conversions are stored as float16) and its true edges
    ``[{parent, child, relation, weight}]`` in the format of a zoo's ``truth.json``.
    """
    rng = np.random.default_rng(seed)
    zoo = SyntheticZoo()
    root = f"{prefix}0"
    zoo.add(root, random_root(rng, hidden, layers, tail=float(rng.choice([3.0, 4.0, 6.0]))), None)
    edges: list[dict] = []
    names = [root]
    for i in range(1, size):
        name = f"{prefix}{i}"
        roll = rng.random()
        floats = [n for n in names if n not in zoo.dtypes]
        pairs = [(a, b) for a in floats for b in floats
                 if a < b and a not in _lineage(zoo, b) and b not in _lineage(zoo, a)]
        if roll < conversion_share:
            parent = floats[int(rng.integers(len(floats)))]
            zoo.add(name, {n: w.astype(np.float16).astype(np.float32) for n, w in zoo.models[parent].items()},
                    parent)
            zoo.dtypes[name] = "float16"
            edges.append({"parent": parent, "child": name, "relation": "conversion"})
        elif roll < conversion_share + merge_share and pairs:
            pa, pb = pairs[int(rng.integers(len(pairs)))]
            w = float(rng.uniform(0.25, 0.75))
            zoo.add(name, {n: (w * zoo.models[pa][n] + (1 - w) * zoo.models[pb][n]).astype(np.float32)
                           for n in zoo.models[pa]}, pa if w >= 0.5 else pb)
            edges += [{"parent": pa, "child": name, "relation": "merge", "weight": w},
                      {"parent": pb, "child": name, "relation": "merge", "weight": 1 - w}]
        else:
            parent = floats[int(rng.integers(len(floats)))]
            low, high = (0.01, 0.03) if easy else (0.003, 0.3)
            step = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            tail = np.inf if easy else float(rng.choice([2.5, 4.0, 10.0, np.inf]))
            zoo.add(name, heavy_tailed_finetune(zoo.models[parent], rng, step, tail), parent)
            edges.append({"parent": parent, "child": name, "relation": "finetune"})
        names.append(name)
    return zoo, edges
