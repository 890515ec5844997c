"""Plain-text rendering of genealogies for the terminal."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable


def render_tree(root: str, children: dict[str, list[tuple[str, float]]],
                label: dict[str, str] | None = None) -> list[str]:
    """Indented lines for the tree under ``root``; ``children`` maps a node to (child, confidence)."""
    label = label or {}
    lines = [f"{root}{label.get(root, '')}"]

    def walk(node: str, prefix: str) -> None:
        kids = sorted(children.get(node, []))
        for i, (child, confidence) in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{child}{label.get(child, '')}"
                         f"  (confidence {confidence:.2f})")
            walk(child, prefix + ("    " if last else "│   "))

    walk(root, "")
    return lines


def edges_to_children(edges: Iterable[tuple[str, str, float]]) -> dict[str, list[tuple[str, float]]]:
    children: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for parent, child, confidence in edges:
        children[parent].append((child, confidence))
    return children


def render_genealogy(genealogy) -> str:
    out: list[str] = []
    for family in genealogy.families:
        out.append(f"Family {family.index + 1}: {len(family.members)} model(s), metric {family.metric}, "
                   f"{family.regime_evidence}")
        children = edges_to_children((e.parent, e.child, e.confidence) for e in family.edges)
        out.extend("  " + line for line in render_tree(family.root, children))
        out.append("")
    return "\n".join(out).rstrip()
