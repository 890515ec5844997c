"""Canonical tensor names: the same weight gets the same name however it was wrapped.

Checkpoints store one backbone under many container prefixes. Three kinds are removed:

* **pure wrappers**, which never belong to a model's own names: ``module.``
  (DistributedDataParallel), ``_orig_mod.`` (``torch.compile``), ``base_model.model.``
  (PEFT), ``0.auto_model.`` / ``auto_model.`` (sentence-transformers);
* **a base-model prefix**: a transformers task class (``...ForSequenceClassification``,
  ``...ForCausalLM``, ``...ForMaskedLM``, ...) keeps its backbone in an attribute named
  by ``base_model_prefix``. Across transformers' task classes that attribute is
  ``model``, ``transformer`` or the model type itself (``bert``, ``roberta``,
  ``distilbert``, ``gpt_neox``, ``deberta``, ...): :data:`BASE_MODEL_PREFIXES` lists
  those values, and a checkpoint's own ``config.json`` ``model_type`` counts too. The
  prefixes that are also the names of modules inside a backbone (``encoder``,
  ``decoder``, ``backbone``, ``vision_model``, ``language_model`` ...) are not in the list,
  and ``transformer`` is one only when a numbered ``layer.N`` does not follow it
  (DistilBERT's backbone has its own ``transformer.layer.N``; GPT-2's wrapper holds ``h.N``);
* **any other container, recognised by structure**: when one top-level module holds
  every numbered block (``layer.N``, ``layers.N``, ``h.N``, ``block.N``) and a token
  embedding, it is the whole backbone and its name is a wrapper (``encoder.`` around a
  complete model, an unknown task class's prefix). A bare backbone never passes this
  test, since its embeddings and its blocks are separate top-level modules.

What stays outside the backbone (``classifier``, ``lm_head``, ``cls.predictions`` ...)
keeps its name and is classified as a head by :mod:`heritage.reading.layers`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["BASE_MODEL_PREFIXES", "PURE_WRAPPERS", "canonical_name", "canonical_names"]

PURE_WRAPPERS = ("module.", "_orig_mod.", "base_model.model.", "0.auto_model.", "auto_model.")

# transformers' ``base_model_prefix`` values (transformers 5.x, every class in its auto
# mappings) that are ``model``, ``transformer`` or a model type; the others name modules
# that also occur inside backbones and are left to the structural rule.
BASE_MODEL_PREFIXES = frozenset("""
aimv2 albert align altclip audio_spectrogram_transformer beit bert biogpt bit blip bridgetower
bros canine chinese_clip chmv2 clap clip convbert convnext convnextv2 cpmant cvt dac
data2vec_audio data2vec_text data2vec_vision deberta decision_transformer deit depth_anything
depth_pro dinat dinov2 dinov2_with_registers distilbert dpt edgetam edgetam_video
efficientloftr efficientnet electra encodec encoder_decoder eomt eomt_dinov3 ernie esm esmc
fastspeech2_conformer flava fnet focalnet funnel git glpn gpt_neox gpt_neox_japanese groupvit
gte hiera hubert ibert ijepa internvl_vision layoutlm layoutlmv2 layoutlmv3 led levit
lightglue lilt longformer luke lw_detr_vit lxmert markuplm metaclip_2 mgp_str mimi mobilebert
mobilenet_v1 mobilenet_v2 mobilevit mobilevitv2 model mpnet mra neucodec nomic_bert
nystromformer owlv2 owlvit perceiver pixio pocket_tts_audio_tokenizer poolformer
prompt_depth_anything prophetnet pvt pvt_v2 reformer regnet rembert resnet rf_detr_dinov2
roberta roberta_prelayernorm roc_bert roformer rwkv sam sam2 sam2_video sam3 sam3_tracker
sam3_video sam_hq seamless_m4t seamless_m4t_v2 segformer sew sew_d siglip siglip2
speech_encoder_decoder speecht5 splinter superglue superpoint swiftformer swin swin2sr swinv2
switch_transformers tapas textnet timesformer transformer unispeech unispeech_sat
vibevoice_acoustic_tokenizer videomae videomt vilt vision_encoder_decoder
vision_text_dual_encoder visual_bert vit vitdet vits vivit vjepa2 wav2vec2 wav2vec2_bert
wav2vec2_conformer wavlm xcodec xcodec2 yoso zoedepth
""".split())

_DISTILBERT_BLOCKS = re.compile(r"^layer\.\d+\.")
_BLOCK = re.compile(r"(?:^|\.)(?:layer|layers|h|blocks|block)\.\d+\.")
_TOKEN_EMBEDDING = re.compile(
    r"(?:^|\.)(?:word_embeddings|embed_tokens|wte|embed_in|tok_embeddings|shared|token_embd)\.weight$")


def _model_type_prefix(model_type: str | None) -> str | None:
    return model_type.replace("-", "_") if model_type else None


def canonical_name(name: str, model_type: str | None = None) -> str:
    """``name`` without pure wrappers and one base-model prefix (per name, no structure).

    ``model_type`` is the checkpoint's ``config.json`` ``model_type``, whose prefix
    (``-`` written ``_``) is a base-model prefix too.
    """
    changed = True
    while changed:
        changed = False
        for prefix in PURE_WRAPPERS:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix):]
                changed = True
    head, dot, rest = name.partition(".")
    if not (dot and rest):
        return name
    if head == "transformer" and _DISTILBERT_BLOCKS.match(rest):
        return name
    if head in BASE_MODEL_PREFIXES or head == _model_type_prefix(model_type):
        name = rest
    return name


def _structural_wrapper(names: Iterable[str]) -> str | None:
    """The top-level module that holds every numbered block and a token embedding, if any."""
    block_tops: set[str] = set()
    embedding_tops: set[str] = set()
    for name in names:
        top, dot, rest = name.partition(".")
        if not dot:
            continue
        if _BLOCK.search(name):
            if not _BLOCK.search(rest):
                return None  # numbered blocks directly at the top level: nothing wraps them
            block_tops.add(top)
        if _TOKEN_EMBEDDING.search(rest):
            embedding_tops.add(top)
    if len(block_tops) == 1 and block_tops <= embedding_tops:
        return next(iter(block_tops))
    return None


def canonical_names(raw_names: Iterable[str], model_type: str | None = None) -> dict[str, str]:
    """Canonical name of every raw name of one checkpoint (see the module docstring).

    The structural rule is applied repeatedly (a Lightning ``model.`` around a
    transformers ``model.``), but never when it would give two tensors one name.
    """
    mapping = {raw: canonical_name(raw, model_type) for raw in raw_names}
    while True:
        wrapper = _structural_wrapper(mapping.values())
        if wrapper is None:
            return mapping
        cut = len(wrapper) + 1
        proposed = {raw: (name[cut:] if name.startswith(wrapper + ".") else name)
                    for raw, name in mapping.items()}
        if len(set(proposed.values())) < len(proposed):
            return mapping
        mapping = proposed
