"""Which server-side paths ``register`` may read: only inside HERITAGE_IMPORT_ROOTS.

Why: registering a path makes the server open it; without a boundary any client could
make it read any file it can (the seed accepted anything).  Paths are resolved (symlinks
followed, ``..`` collapsed) before the check, and for a folder every file inside it is
checked too, so a symlink inside an allowed folder cannot point outside it.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence

from heritage.catalogue.errors import PathNotAllowedError, UnusablePathError

__all__ = ["check_import_path"]

# A model folder is small (config, card, a few shards); a huge tree is not a model.
_MAX_FOLDER_ENTRIES = 10_000


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _resolve(path: str | Path, roots: Sequence[Path]) -> Path:
    # No ``~`` expansion: a client's "~user" means nothing on the server.
    raw = Path(path)
    if ".." in raw.parts:
        raise PathNotAllowedError(f"{path}: '..' is not allowed in paths to register")
    if raw.is_absolute():
        return raw.resolve()
    candidates = [(root / raw).resolve() for root in roots]
    existing = [c for c in candidates if c.exists()]
    return (existing or candidates)[0]


def check_import_path(path: str | Path, roots: Sequence[Path]) -> Path:
    """The resolved ``path`` when it lies inside one of ``roots``; else
    :class:`PathNotAllowedError` (or :class:`UnusablePathError` when it cannot be resolved).  A relative path is taken relative to each root in turn."""
    if not roots:
        raise PathNotAllowedError(
            "registering server-side paths is disabled: set HERITAGE_IMPORT_ROOTS to the folders it may read"
        )
    resolved_roots = [Path(r).expanduser().resolve() for r in roots]
    try:
        resolved = _resolve(path, resolved_roots)
    except PathNotAllowedError:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UnusablePathError(f"{str(path)[:200]}: not a usable path ({reason})") from None
    if not _inside(resolved, resolved_roots):
        raise PathNotAllowedError(f"{path} is outside the import roots ({', '.join(map(str, resolved_roots))})")
    if resolved.is_dir():
        for count, entry in enumerate(resolved.rglob("*")):
            if count >= _MAX_FOLDER_ENTRIES:
                raise PathNotAllowedError(f"{path}: more than {_MAX_FOLDER_ENTRIES} entries; not a model folder")
            if not _inside(entry.resolve(), resolved_roots):
                raise PathNotAllowedError(f"{path}: {entry.name} links outside the import roots")
    return resolved
