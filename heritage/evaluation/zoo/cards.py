"""Model cards (``README.md``) as the Hub writes them, through ``huggingface_hub``.

A card's YAML front matter is where the Hub records declared lineage: ``base_model``
(a string, or a list for merges) and ``base_model_relation`` (``adapter``, ``merge``,
``quantized`` or ``finetune``).  The cards are produced by
:class:`huggingface_hub.ModelCard` from :class:`huggingface_hub.ModelCardData`, the
ecosystem's own writer, so their YAML is exactly what a pushed model would carry.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["model_card_text"]


def model_card_text(
    title: str,
    description: str,
    *,
    base_model: Sequence[str] = (),
    relation: str | None = None,
    library_name: str = "transformers",
    pipeline_tag: str | None = None,
    tags: Sequence[str] = (),
    license: str = "apache-2.0",
) -> str:
    """The text of a ``README.md`` declaring ``base_model`` (one id, or a list) and ``relation``."""
    from huggingface_hub import ModelCard, ModelCardData

    extra = {"base_model_relation": relation} if relation else {}
    base: str | list[str] | None = None
    if len(base_model) == 1:
        base = base_model[0]
    elif base_model:
        base = list(base_model)
    data = ModelCardData(
        base_model=base,
        library_name=library_name,
        license=license,
        pipeline_tag=pipeline_tag,
        tags=list(tags) or None,
        **extra,
    )
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n# {title}\n\n{description}\n"))
