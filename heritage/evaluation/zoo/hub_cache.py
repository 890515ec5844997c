"""Lay published model files out as a Hugging Face hub cache (``~/.cache/huggingface/hub``).

What people most often hand a lineage tool is not a tidy folder but their hub cache::

    models--<org>--<name>/
        blobs/<etag>                      the file contents, one per distinct file
        snapshots/<commit>/<path>         relative symlinks into ../../blobs
        refs/main                         the commit hash ``main`` points to

The layout, folder naming (``huggingface_hub.file_download.repo_folder_name``) and etags
follow ``huggingface_hub``: a file stored with Git LFS on the Hub (weights, by the
Hub's default ``.gitattributes``, or anything of 10 MB and more) is named by the
SHA-256 of its content, any other file by its git blob SHA-1.  No hub is reachable
here, so the commit hash is made up, deterministically, from the repository id and its
files; it is a 40-hex revision like a real one.

Blobs are hard links to the published files where the file system allows (a cache
costs no extra disk), copies otherwise.  ``huggingface_hub.scan_cache_dir`` and
``from_pretrained(..., cache_dir=..., local_files_only=True)`` read the result.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

__all__ = ["CachedRepo", "add_to_hub_cache", "LFS_SUFFIXES"]

# The Hub's default .gitattributes sends these to LFS (the subset that weight repos use).
LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf",
    ".ot", ".pb", ".tflite", ".model", ".zip", ".tar", ".gz",
)
_LFS_MIN_SIZE = 10 * 1024 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CachedRepo:
    """One repository written into the cache."""

    repo_id: str
    revision: str
    folder: Path
    files: tuple[str, ...]


def _is_lfs(path: Path) -> bool:
    return path.suffix in LFS_SUFFIXES or path.stat().st_size >= _LFS_MIN_SIZE


def _etag(path: Path) -> str:
    """SHA-256 for LFS files, git blob SHA-1 (``blob <size>\\0<content>``) for the others."""
    if _is_lfs(path):
        digest = hashlib.sha256()
    else:
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(source: Path) -> list[tuple[str, Path]]:
    """(path in the repository, file) pairs of a folder, or of a single file."""
    if source.is_file():
        return [(source.name, source)]
    return sorted(
        (path.relative_to(source).as_posix(), path) for path in source.rglob("*") if path.is_file()
    )


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def add_to_hub_cache(
    cache: Path, repo_id: str, source: Path, extra_files: Mapping[str, Path] | None = None
) -> CachedRepo:
    """Write ``source`` (a model folder or a single file) as ``repo_id``'s ``main`` revision.

    ``extra_files`` adds files under other repository paths (e.g. a ``README.md`` next
    to a single GGUF file).
    """
    from huggingface_hub.file_download import repo_folder_name

    if repo_id.count("/") != 1:
        raise ValueError(f"a hub repository id is 'org/name', not {repo_id!r}")
    files = dict(_files(source))
    files.update(extra_files or {})
    if not files:
        raise ValueError(f"{source}: nothing to cache")
    etags = [(name, _etag(path), path) for name, path in sorted(files.items())]
    commit = hashlib.sha1(
        "\n".join([repo_id, *(f"{name} {etag}" for name, etag, _ in etags)]).encode()
    ).hexdigest()

    folder = Path(cache) / repo_folder_name(repo_id=repo_id, repo_type="model")
    blobs = folder / "blobs"
    snapshot = folder / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, etag, path in etags:
        blob = blobs / etag
        if not blob.exists():
            _link_or_copy(path, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)  # no newline, as huggingface_hub writes it
    return CachedRepo(repo_id, commit, folder, tuple(name for name, _, _ in etags))
