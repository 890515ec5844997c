"""Declared lineage from a Hugging Face model card (README.md YAML front matter).

Only the few keys we use are parsed (``base_model``, ``base_model_relation``,
``license``, ``library_name``), with a tolerant line-based reader so no YAML library
is needed; ``base_model`` may be a scalar or a list (a merge).
"""

from __future__ import annotations

from pathlib import Path

_KEYS = ("base_model", "base_model_relation", "license", "library_name", "pipeline_tag")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_front_matter(text: str) -> dict[str, object]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    card: dict[str, object] = {}
    current_list: list[str] | None = None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        stripped = line.strip()
        if current_list is not None and stripped.startswith("- "):
            current_list.append(_unquote(stripped[2:]))
            continue
        current_list = None
        if ":" not in line or line.startswith((" ", "\t")):
            continue
        key, _, value = line.partition(":")
        key = key.strip()
        if key not in _KEYS:
            continue
        value = value.strip()
        if not value:
            current_list = []
            card[key] = current_list
        elif value.startswith("[") and value.endswith("]"):
            card[key] = [_unquote(v) for v in value[1:-1].split(",") if v.strip()]
        else:
            card[key] = _unquote(value)
    return card


def read_model_card(folder: Path) -> dict[str, object]:
    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    try:
        return parse_front_matter(readme.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}
