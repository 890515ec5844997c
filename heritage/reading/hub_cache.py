"""Hugging Face hub caches (``~/.cache/huggingface/hub``): each cached revision is a model.

A cache holds ``models--org--name/`` folders with ``blobs/`` (content-addressed files),
``snapshots/<revision>/`` (the repository's files as symlinks into ``blobs/``) and
``refs/`` (branch names -> revisions). ``huggingface_hub.scan_cache_dir`` reads that
layout (and reports what is corrupt); :func:`cache_entries` turns its answer into
``(name, path)`` models:

* a revision is named ``org/name``, the hub repository id;
* when several revisions of one repository are cached, each is named
  ``org/name@<revision>`` with the first 12 characters of its commit hash, so every
  name stays unique and says which revision it is (the full hash is the model's
  ``revision``);
* a snapshot with several GGUF files (quantisations of one model) gives one model per
  file, named ``org/name/<file stem>`` (then ``@<revision>`` as above).

Names contain ``/``; batch import stores them verbatim and the CLI addresses models by
them. Only model repositories are read (datasets and spaces are skipped).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from heritage.errors import ModelLoadError

__all__ = ["cache_entries", "hub_cache_models", "is_hub_cache", "snapshot_revision"]

log = logging.getLogger(__name__)

_REPO_FOLDER = re.compile(r"^models--(?P<id>.+)$")
_REVISION = re.compile(r"^[0-9a-f]{40}$")
SHORT_REVISION = 12


def snapshot_revision(path: Path) -> str | None:
    """The commit hash when ``path`` is (or lies in) a hub cache snapshot
    (``.../models--org--name/snapshots/<revision>/...``), else None."""
    parts = Path(path).parts
    for i in range(len(parts) - 2):
        if parts[i + 1] == "snapshots" and _REPO_FOLDER.match(parts[i]) and _REVISION.match(parts[i + 2]):
            return parts[i + 2]
    return None


def is_hub_cache(folder: Path) -> bool:
    """True when ``folder`` holds hub cache repository folders (``models--*`` with ``snapshots/``)."""
    try:
        return any(_REPO_FOLDER.match(p.name) and (p / "snapshots").is_dir() for p in folder.iterdir())
    except OSError:
        return False


def _snapshot_models(snapshot: Path) -> list[tuple[str, Path]]:
    """``(suffix, path)``: the snapshot itself, or each GGUF file of a GGUF-only snapshot."""
    files = [p for p in snapshot.iterdir() if p.is_file()]
    ggufs = sorted(p for p in files if p.name.endswith(".gguf"))
    others = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".pth")]
    if ggufs and not others and not (snapshot / "adapter_config.json").exists():
        if len(ggufs) == 1:
            return [("", ggufs[0])]
        return [(f"/{p.name[:-len('.gguf')]}", p) for p in ggufs]
    return [("", snapshot)]


def cache_entries(folder: str | Path) -> list[tuple[str, Path, str]]:
    """``(name, snapshot path, revision)`` of every cached model revision in ``folder``.

    Raises :class:`ModelLoadError` when ``folder`` is not a readable hub cache.
    """
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound, CorruptedCacheException

    try:
        info = scan_cache_dir(Path(folder))
    except (CacheNotFound, CorruptedCacheException, OSError) as exc:
        raise ModelLoadError(f"{folder}: not a readable Hugging Face cache ({exc})") from None
    for warning in info.warnings:
        log.warning("hub cache %s: %s", folder, warning)
    out: list[tuple[str, Path, str]] = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        revisions = sorted(repo.revisions, key=lambda r: r.commit_hash)
        several = len(revisions) > 1
        for revision in revisions:
            for suffix, path in _snapshot_models(Path(revision.snapshot_path)):
                name = f"{repo.repo_id}{suffix}"
                if several:
                    name += f"@{revision.commit_hash[:SHORT_REVISION]}"
                out.append((name, path, revision.commit_hash))
    return out


def hub_cache_models(folder: Path) -> list[tuple[str, Path]] | None:
    """``(name, path)`` models when ``folder`` is a hub cache, the folder above one
    (``~/.cache/huggingface``) or one repository folder of a cache (``models--org--name``);
    None for any other folder."""
    for cache in (folder, folder / "hub"):
        if is_hub_cache(cache):
            return [(name, path) for name, path, _revision in cache_entries(cache)]
    if _REPO_FOLDER.match(folder.name) and (folder / "snapshots").is_dir():
        return [(name, path) for name, path, _revision in cache_entries(folder.parent)
                if Path(path).is_relative_to(folder)]
    return None
