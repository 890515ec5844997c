"""Typed relations and the exact tests that find near-duplicates before any tree is built.

Relations (stored on every ``DERIVED_FROM`` edge as ``relation``):

* ``finetune`` — trained from the parent (full or merged-LoRA fine-tuning);
* ``adapter`` — an unmerged PEFT adapter on its base;
* ``merge`` — a combination of two or more parents (one edge per parent, with its weight);
* ``quantization`` — a quantised (GGUF) copy of a float model, always a leaf;
* ``conversion`` — the same weights in another dtype or format: the child's values are
  exactly the parent's rounded to the child's precision (or equal);
* ``head_only`` — the backbone is bit-identical, only a task head was added or trained;
* ``distillation`` — a student with fewer blocks whose blocks map onto the parent's.

Conversions, head-only children and quantisations sit at distances far below any
fine-tune (or at zero), where the tree's distance and direction signals are noise. So
they are found first, by exact tests on the fingerprints' digests
(:func:`near_duplicates`), the tree is built on the remaining *representatives*, and
they are attached afterwards.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from heritage.lineage.alignment import Alignment
from heritage.lineage.candidate_distances import CandidateDistances
from heritage.reading.fingerprint import Fingerprint
from heritage.reading.layers import is_task_head

__all__ = ["Relation", "Attachment", "near_duplicates", "equal_values", "rounded_from",
           "heads_match", "from_declared", "carries_task_head", "is_headless", "PRECISION_RANK"]


class Relation(str, enum.Enum):
    FINETUNE = "finetune"
    ADAPTER = "adapter"
    MERGE = "merge"
    QUANTIZATION = "quantization"
    CONVERSION = "conversion"
    HEAD_ONLY = "head_only"
    DISTILLATION = "distillation"


# Hugging Face's base_model_relation words -> ours.
_DECLARED = {"adapter": Relation.ADAPTER, "merge": Relation.MERGE, "quantized": Relation.QUANTIZATION,
             "quantization": Relation.QUANTIZATION, "finetune": Relation.FINETUNE}


def from_declared(word: str | None) -> Relation | None:
    """Our relation for a model card's ``base_model_relation`` (None when unknown)."""
    return _DECLARED.get((word or "").strip().lower())


# Finer precision ranks higher: a conversion's parent has the higher rank.
PRECISION_RANK = {"f64": 3, "f32": 2, "f16": 1, "bf16": 1}
_MANTISSA_BITS = {"f16": 10, "bf16": 7}
# Relative sketch difference below which two matrices count as the same values (the
# sketches of equal matrices are equal; this only absorbs BLAS differences between
# machines that computed them).
_SAME = 1e-6


def _relative(la, lb) -> float:
    scale = math.sqrt((la.norm**2 + lb.norm**2) / 2) or 1.0
    return float(np.linalg.norm(la.sketch - lb.sketch)) / scale


def equal_values(a: Fingerprint, b: Fingerprint, alignment: Alignment) -> bool:
    """True when every aligned matrix holds the same values in both (digests of the
    float32 values agree and the sketches, which see every entry, are equal) and both
    models have all their compared matrices aligned."""
    if not alignment.pairs or alignment.share_a < 1.0 or alignment.share_b < 1.0 or alignment.mapped:
        return False
    for x, y in alignment.pairs:
        la, lb = a.layers[x], b.layers[y]
        if not la.digests or la.digests.get("f32") != lb.digests.get("f32") or _relative(la, lb) > _SAME:
            return False
    return True


def rounded_from(child: Fingerprint, parent: Fingerprint, alignment: Alignment) -> bool:
    """True when ``child`` (stored in float16 or bfloat16) holds exactly ``parent``'s
    values rounded to its precision, on every aligned matrix (``alignment``: child's
    matrices first)."""
    p, q = child.precision, parent.precision
    if p not in _MANTISSA_BITS or q is None or PRECISION_RANK[q] <= PRECISION_RANK[p]:
        return False
    if not alignment.pairs or alignment.share_a < 1.0 or alignment.mapped:
        return False
    bound = 2.0 ** -_MANTISSA_BITS[p]  # rounding moves a value by at most half an ulp
    for x, y in alignment.pairs:
        lc, lp = child.layers[x], parent.layers[y]
        if not lc.digests or lc.digests.get(p) != lp.digests.get(p) or _relative(lc, lp) > bound:
            return False
    return True


def heads_match(a: Fingerprint, b: Fingerprint, precision: str = "f32") -> bool:
    """Same task heads (names, shapes and values at ``precision``) in both models."""
    if set(a.heads) != set(b.heads):
        return False
    for name, head in a.heads.items():
        other = b.heads[name]
        if head.shape != other.shape or head.digests.get(precision) != other.digests.get(precision):
            return False
    return True


def carries_task_head(fp: Fingerprint) -> bool:
    """The model stores a task head (``classifier``, ``score``, ``qa_outputs`` ...)."""
    return any(is_task_head(name) for name in fp.heads)


def is_headless(fp: Fingerprint) -> bool:
    """The model stores no head at all (a pooler aside): a bare backbone."""
    return all("pooler" in name for name in fp.heads)


def _task_head_params(fp: Fingerprint) -> int:
    """Parameters of task heads (the pooler belongs to many backbones and does not count)."""
    return sum(int(np.prod(h.shape)) for n, h in fp.heads.items() if "pooler" not in n)


@dataclass(frozen=True)
class Attachment:
    """A model attached outside the tree: ``child`` -> ``parent`` (indices) by ``relation``."""

    child: int
    parent: int
    relation: Relation
    evidence: str


def near_duplicates(fps: Sequence[Fingerprint], distances: "np.ndarray | CandidateDistances",
                    alignment: Callable[[int, int], Alignment]) -> tuple[list[int], list[Attachment]]:
    """Split a family into tree representatives and attached near-duplicates.

    1. Models whose backbones hold the same values form a group; its representative is
       the one with the smallest task head (then the finer precision, then the name),
       and the others are ``head_only`` children (different heads) or ``conversion``
       children (same heads: a format change).
    2. A representative whose values are exactly another's rounded to its (coarser)
       precision is a ``conversion`` child of it (``head_only`` if its heads differ).
    3. A quantised model is a ``quantization`` child of the nearest float model.

    ``distances``: the family's matrix, or its :class:`CandidateDistances` (a large
    family: pairs off the candidate edges read as infinitely far).
    ``alignment(i, j)`` gives the alignment of model i with model j. Returns the
    representatives (indices, in order) and the attachments.

    Examples
    --------
    >>> import numpy as np
    >>> from heritage.reading.fingerprint import Fingerprint, LayerFingerprint
    >>> from heritage.lineage.alignment import align
    >>> from heritage.reading.layers import LayerRole
    >>> def fp(name, values, digest, dtype="F32", quant=None):
    ...     layer = LayerFingerprint("layer.0.q.weight", LayerRole.ATTENTION_Q, (2, 2), 1.0, 0.0, 1.0,
    ...                              0.0, np.array(values, dtype=np.float32), {"f32": digest})
    ...     return Fingerprint(name, "", False, None, 48, {layer.name: layer}, dtype=dtype, quantization=quant)
    >>> fps = [fp("base", [[1, 0], [0, 1]], "x"), fp("copy", [[1, 0], [0, 1]], "x"),
    ...        fp("q4", [[1.01, 0], [0, 1]], "y", "Q4_K", "Q4_K")]
    >>> d = np.array([[0, 0, .01], [0, 0, .01], [.01, .01, 0]])
    >>> reps, attached = near_duplicates(fps, d, lambda i, j: align(fps[i], fps[j], frozenset(LayerRole)))
    >>> reps, [(a.child, a.parent, a.relation.value) for a in attached]
    ([0], [(1, 0, 'conversion'), (2, 0, 'quantization')])
    """
    n = len(fps)
    attachments: list[Attachment] = []
    group_of = list(range(n))

    def find(i: int) -> int:
        while group_of[i] != i:
            group_of[i] = group_of[group_of[i]]
            i = group_of[i]
        return i

    float_models = np.array([i for i in range(n) if not fps[i].quantization], dtype=np.int64)
    # Only pairs this close can hold equal values (in the order of a loop over all pairs).
    if isinstance(distances, np.ndarray):
        close_a, close_b = np.nonzero(np.triu(distances[np.ix_(float_models, float_models)] < 1e-3, k=1))
        close = list(zip(float_models[close_a].tolist(), float_models[close_b].tolist()))
    else:  # candidate distances of a large family (the same pairs, found on its candidate edges)
        close = distances.pairs_below(1e-3, float_models)
    for i, j in close:
        if find(i) != find(j) and equal_values(fps[i], fps[j], alignment(i, j)):
            group_of[find(j)] = find(i)
    groups: dict[int, list[int]] = {}
    for i in float_models.tolist():
        groups.setdefault(find(i), []).append(i)
    reps: list[int] = []
    for members in groups.values():
        rep = min(members, key=lambda i: (_task_head_params(fps[i]),
                                          -PRECISION_RANK.get(fps[i].precision or "", 0), fps[i].name))
        reps.append(rep)
        for i in members:
            if i != rep:
                same = heads_match(fps[i], fps[rep])
                attachments.append(Attachment(i, rep, Relation.CONVERSION if same else Relation.HEAD_ONLY,
                                              "same backbone values" + ("" if same else ", different head")))
    reps.sort()
    converted: dict[int, int] = {}
    rep_array = np.asarray(reps, dtype=np.int64)
    for c in reps:
        precision = fps[c].precision
        if precision not in _MANTISSA_BITS:
            continue  # only a float16/bfloat16 model can be a rounding of another
        # Rounding moves each matrix by at most this much (relative): farther pairs are no conversion.
        near = rep_array[(rep_array != c) & (distances[c, rep_array] <= 1.01 * 2.0 ** -_MANTISSA_BITS[precision])]
        sources = [p for p in near.tolist() if rounded_from(fps[c], fps[p], alignment(c, p))]
        if sources:
            parent = min(sources, key=lambda p: (-PRECISION_RANK[fps[p].precision], distances[c, p]))
            converted[c] = parent
    for c, parent in converted.items():
        precision = fps[c].precision or "f32"
        same = heads_match(fps[c], fps[parent], precision)
        attachments.append(Attachment(c, parent, Relation.CONVERSION if same else Relation.HEAD_ONLY,
                                      f"values = parent's rounded to {precision}"
                                      + ("" if same else ", different head")))
    reps = [i for i in reps if i not in converted]
    floats = [i for i in range(n) if not fps[i].quantization]
    quantised = [i for i in range(n) if fps[i].quantization]
    if floats:
        for q in quantised:
            parent = min(floats, key=lambda p: (float(distances[q, p]), fps[p].name))
            attachments.append(Attachment(q, parent, Relation.QUANTIZATION,
                                          f"{fps[q].quantization} copy of the nearest float model"))
    else:
        reps += quantised
    return sorted(reps), attachments
