"""Which server-side paths ``register`` may read: only inside HERITAGE_IMPORT_ROOTS.

Why: registering a path makes the server open it; without a boundary any client could
make it read any file it can (the seed accepted anything).  Paths are resolved (symlinks
followed, ``..`` collapsed) before the check, and for a folder every entry inside it is
checked too, so a symlink inside an allowed folder cannot point outside it.

Only regular files and folders are accepted: opening a FIFO blocks until someone writes
to it, and a device or socket is no model, so they are refused (400) before anything
opens them.  A folder with more than :data:`MAX_FOLDER_ENTRIES` entries is refused too,
after reading at most that many.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from heritage.catalogue.errors import PathNotAllowedError, UnusablePathError

__all__ = ["MAX_FOLDER_ENTRIES", "check_import_path"]

# A model folder is small (config, card, a few shards); a huge tree is not a model.
MAX_FOLDER_ENTRIES = 10_000


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


def _kind(path: Path, shown: str) -> int:
    """``stat`` mode bits of ``path`` (symlinks followed); refuse what is neither file nor folder."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UnusablePathError(f"{shown}: no such file or folder") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UnusablePathError(f"{shown}: not a regular file or folder (a FIFO, device or socket)")
    return mode


def _check_folder(folder: Path, shown: str, roots: Sequence[Path]) -> None:
    """Every entry below ``folder`` stays inside the roots and is a file or folder."""
    count = 0
    pending, seen = [folder], {folder}
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                count += 1
                if count > MAX_FOLDER_ENTRIES:
                    raise UnusablePathError(f"{shown}: more than {MAX_FOLDER_ENTRIES} entries; not a model folder")
                path = Path(entry.path)
                target = path.resolve() if entry.is_symlink() else path
                if not _inside(target, roots):
                    raise PathNotAllowedError(f"{shown}: {entry.name} links outside the import roots")
                if stat.S_ISDIR(_kind(path, f"{shown}: {entry.name}")) and target not in seen:
                    seen.add(target)  # a linked folder is walked once, whatever links to it
                    pending.append(target)


def check_import_path(path: str | Path, roots: Sequence[Path]) -> Path:
    """The resolved ``path`` when it lies inside one of ``roots``; else
    :class:`PathNotAllowedError` (403).  :class:`UnusablePathError` (400) when it cannot
    be resolved, is not a regular file or folder, or is a folder of too many entries.  A
    relative path is taken relative to each root in turn."""
    if not roots:
        raise PathNotAllowedError(
            "registering server-side paths is disabled: set HERITAGE_IMPORT_ROOTS to the folders it may read"
        )
    resolved_roots = [Path(r).expanduser().resolve() for r in roots]
    shown = str(path)[:200]
    try:
        resolved = _resolve(path, resolved_roots)
    except PathNotAllowedError:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UnusablePathError(f"{shown}: not a usable path ({reason})") from None
    if not _inside(resolved, resolved_roots):
        raise PathNotAllowedError(f"{shown} is outside the import roots ({', '.join(map(str, resolved_roots))})")
    try:
        if stat.S_ISDIR(_kind(resolved, shown)):
            _check_folder(resolved, shown, resolved_roots)
    except PathNotAllowedError:  # a PermissionError, hence an OSError: keep it a 403
        raise
    except OSError as exc:  # unreadable folder, a name too long...
        raise UnusablePathError(f"{shown}: not a usable path ({exc.strerror or exc})") from None
    return resolved
