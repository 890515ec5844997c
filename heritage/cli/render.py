"""Plain-text rendering of genealogies for the terminal."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class ShownEdge:
    """One edge as the terminal shows it: ``child`` under ``parent``."""

    parent: str
    child: str
    confidence: float | None
    relation: str = "finetune"
    weight: float | None = None

    def label(self) -> str:
        kind = self.relation if self.weight is None else f"{self.relation}, weight {self.weight:.2f}"
        conf = "" if self.confidence is None else f", confidence {self.confidence:.2f}"
        return f"  ({kind}{conf})"


def render_tree(root: str, children: dict[str, list[ShownEdge]],
                label: dict[str, str] | None = None) -> list[str]:
    """Indented lines for the genealogy under ``root`` (``children``: a node's edges down).

    A merge child appears under each of its parents; its own descendants are drawn once,
    under its main parent (the first edge met), and the other places say so.
    """
    label = label or {}
    lines = [f"{root}{label.get(root, '')}"]
    drawn: set[str] = {root}

    def walk(node: str, prefix: str) -> None:
        kids = sorted(children.get(node, []), key=lambda e: e.child)
        for i, edge in enumerate(kids):
            last = i == len(kids) - 1
            again = edge.child in drawn
            lines.append(f"{prefix}{'└── ' if last else '├── '}{edge.child}{label.get(edge.child, '')}"
                         f"{edge.label()}{'  [drawn above]' if again and children.get(edge.child) else ''}")
            if not again:
                drawn.add(edge.child)
                walk(edge.child, prefix + ("    " if last else "│   "))

    walk(root, "")
    return lines


def edges_to_children(edges: Iterable[ShownEdge]) -> dict[str, list[ShownEdge]]:
    children: dict[str, list[ShownEdge]] = defaultdict(list)
    for edge in edges:
        children[edge.parent].append(edge)
    return children


def render_genealogy(genealogy) -> str:
    out: list[str] = []
    for family in genealogy.families:
        out.append(f"Family {family.index + 1}: {len(family.members)} model(s), metric {family.metric}, "
                   f"{family.regime_evidence}")
        children = edges_to_children(ShownEdge(e.parent, e.child, e.confidence, e.relation, e.weight)
                                     for e in family.edges)
        out.extend("  " + line for line in render_tree(family.root, children))
        out.append("")
    return "\n".join(out).rstrip()
