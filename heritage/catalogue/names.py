"""Which model names the catalogue accepts.

A name is what people read in the CLI, the API and Neo4j Browser, so it must show what it
is.  Refused: control characters and line or paragraph separators (they break one-line
output); invisible formatting characters, Unicode category Cf: bidirectional overrides and
isolates, zero-width spaces and joiners, the byte-order mark, soft hyphens (after U+202E,
RIGHT-TO-LEFT OVERRIDE, ``evil<U+202E>gpj.safetensors`` displays as
``evilsrosnetefas.jpg``); names made only of dots; empty names.  Anything else,
Cypher-looking text included, is plain data (every value reaches Neo4j as a parameter).
The API also refuses ``/`` and ``\\``.
"""

from __future__ import annotations

import unicodedata

from heritage.catalogue.errors import InvalidNameError

__all__ = ["check_model_name", "name_problem", "without_hidden_characters"]

# Cc control, Cf format, Cs surrogate, Zl line separator, Zp paragraph separator.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN_CATEGORIES


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a model (one line), or ``None`` when it can."""
    if not name.strip():
        return "a name cannot be empty"
    hidden = next((c for c in name if _hidden(c)), None)
    if hidden is not None:
        return f"it contains {_describe(hidden)}, an invisible or control character"
    if set(name) == {"."}:
        return "a name cannot be made only of dots"
    return None


def check_model_name(name: str) -> str:
    """``name`` itself when it may name a model; :class:`InvalidNameError` otherwise."""
    problem = name_problem(name)
    if problem is not None:
        raise InvalidNameError(name, problem)
    return name


def without_hidden_characters(text: str) -> str:
    """``text`` without the characters :func:`name_problem` refuses (for names derived
    from a client's file name, which nobody chose as a name)."""
    return "".join(c for c in text if not _hidden(c))
