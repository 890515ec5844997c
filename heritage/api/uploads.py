"""Receiving a model upload: streamed to disk with a size limit, then checked by content.

FastAPI's ``UploadFile`` parses the whole multipart body (to a temporary file outside
our control, without a size limit) before the route runs.  Here the body is parsed as
it arrives: file bytes go straight to a file in ``HERITAGE_UPLOAD_DIR`` and into a
SHA-256, and the request is cut off with 413 as soon as the limit is passed.
Parsing, hashing and writing happen in a worker thread, in batches of about 1 MiB,
so a large upload never blocks the event loop.

The file is then recognised from its bytes, never from its name: a safetensors
header, a PyTorch zip archive, or a pickle (legacy ``torch.save``).  Pickles are
inspected opcode by opcode (:mod:`heritage.api.security`) and refused when loading
them would import anything beyond tensors and plain containers; anything else is 415.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, AsyncIterator

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header

from heritage.api.errors import BadUpload, UnsafeUpload, UnsupportedContent, UploadTooLarge
from heritage.api.security import unsafe_globals_in_checkpoint

__all__ = [
    "ReceivedUpload",
    "DetectedFormat",
    "receive_upload",
    "detect_format",
    "store_upload",
    "remove_stored_upload",
    "discard",
    "UPLOAD_FIELDS",
]

log = logging.getLogger(__name__)

# Form fields the upload accepts besides the file; anything else is refused.
UPLOAD_FIELDS = ("name", "description")
FILE_FIELD = "file"
_BATCH_BYTES = 1024 * 1024
_MAX_FIELD_BYTES = 64 * 1024
_FORM_OVERHEAD_BYTES = 256 * 1024  # boundaries, part headers and the small fields
_INCOMING = ".incoming"


@dataclass
class ReceivedUpload:
    """A file received into the upload directory (not yet checked)."""

    path: Path
    size: int
    sha256: str
    filename: str | None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DetectedFormat:
    """What the bytes of an upload are."""

    format: str  # "safetensors" | "pytorch"
    extension: str


class _Sink:
    """multipart callbacks: the file part to disk (hashed, size-checked), fields to memory."""

    def __init__(self, target: Path, max_bytes: int) -> None:
        self.target = target
        self.max_bytes = max_bytes
        self.hash = hashlib.sha256()
        self.size = 0
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self.file_seen = False
        self._fh: IO[bytes] | None = None
        self._headers: dict[bytes, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._part_name: str | None = None
        self._part_is_file = False
        self._field_buffer = bytearray()

    # -- python-multipart callbacks
    def on_part_begin(self) -> None:
        self._headers = {}
        self._part_name = None
        self._part_is_file = False
        self._field_buffer = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.strip().lower()] = self._header_value.strip()
        self._header_field = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise BadUpload("a multipart part has no name")
        self._part_name = name.decode("utf-8", "replace")
        if self._part_name == FILE_FIELD:
            if self.file_seen:
                raise BadUpload("only one file may be uploaded per request")
            self.file_seen = True
            self._part_is_file = True
            raw = options.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw is not None else None
            self._fh = self.target.open("xb")
        elif self._part_name not in UPLOAD_FIELDS:
            raise BadUpload(f"unexpected form field {self._part_name!r}; expected "
                            f"{', '.join((FILE_FIELD, *UPLOAD_FIELDS))}")
        elif self._part_name in self.fields:
            raise BadUpload(f"form field {self._part_name!r} given twice")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._part_is_file:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise UploadTooLarge(f"upload larger than the limit of {self.max_bytes} bytes",
                                     limit=self.max_bytes)
            self.hash.update(chunk)
            assert self._fh is not None
            self._fh.write(chunk)
        else:
            self._field_buffer += chunk
            if len(self._field_buffer) > _MAX_FIELD_BYTES:
                raise BadUpload(f"form field {self._part_name!r} is too long")

    def on_part_end(self) -> None:
        if self._part_is_file:
            assert self._fh is not None
            self._fh.close()
            self._fh = None
        elif self._part_name is not None:
            try:
                self.fields[self._part_name] = self._field_buffer.decode("utf-8")
            except UnicodeDecodeError:
                raise BadUpload(f"form field {self._part_name!r} is not UTF-8") from None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def callbacks(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_part_data", "on_part_end", "on_header_field",
            "on_header_value", "on_header_end", "on_headers_finished")}


def _boundary(content_type: str | None) -> bytes:
    media, options = parse_options_header(content_type or "")
    if media != b"multipart/form-data":
        raise UnsupportedContent("expected a multipart/form-data body with the model in field 'file'")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadUpload("multipart/form-data body without a boundary")
    return boundary


async def _batches(stream: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    buffer = bytearray()
    async for chunk in stream:
        buffer += chunk
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def incoming_dir(upload_dir: Path) -> Path:
    path = Path(upload_dir) / _INCOMING
    path.mkdir(parents=True, exist_ok=True)
    return path


async def receive_upload(
    content_type: str | None,
    content_length: str | None,
    stream: AsyncIterator[bytes],
    upload_dir: Path,
    max_bytes: int,
) -> ReceivedUpload:
    """Stream a multipart body to a new file under ``upload_dir``; see the module doc.

    Raises :class:`UploadTooLarge` (413), :class:`UnsupportedContent` (415, not
    multipart) or :class:`BadUpload` (400, malformed form).  On failure nothing is left
    on disk.
    """
    boundary = _boundary(content_type)
    limit = max_bytes + _FORM_OVERHEAD_BYTES
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadUpload("invalid Content-Length header") from None
        if declared > limit:
            raise UploadTooLarge(f"upload larger than the limit of {max_bytes} bytes", limit=max_bytes)
    target = incoming_dir(upload_dir) / f"{uuid.uuid4().hex}.part"
    sink = _Sink(target, max_bytes)
    parser = MultipartParser(boundary, sink.callbacks(), max_size=limit)  # type: ignore[arg-type]
    try:
        received = 0
        async for batch in _batches(stream, _BATCH_BYTES):
            received += len(batch)
            if received > limit:
                raise UploadTooLarge(f"upload larger than the limit of {max_bytes} bytes", limit=max_bytes)
            await anyio.to_thread.run_sync(parser.write, batch)
        await anyio.to_thread.run_sync(parser.finalize)
    except (UploadTooLarge, BadUpload, UnsupportedContent):
        sink.close()
        discard(target)
        raise
    except Exception as exc:  # the multipart parser's own errors: a malformed body
        sink.close()
        discard(target)
        log.info("malformed multipart upload: %s", exc)
        raise BadUpload("malformed multipart/form-data body") from None
    sink.close()
    if not sink.file_seen:
        discard(target)
        raise BadUpload("no file in the upload: send the model in form field 'file'")
    if sink.size == 0:
        discard(target)
        raise BadUpload("the uploaded file is empty")
    return ReceivedUpload(target, sink.size, sink.hash.hexdigest(), sink.filename, sink.fields)


# --------------------------------------------------------------------------- content checks

_PICKLE_PROTOCOL0_STARTS = (b"(", b"c", b"]", b"}", b"I", b"L", b"S", b"V", b"N")


def _check_safetensors_header(path: Path) -> None:
    """The loader's own header check (length, JSON, entries, offsets), as a 400."""
    from heritage.errors import ModelLoadError
    from heritage.reading.safetensors_file import read_header

    try:
        read_header(path)
    except ModelLoadError as exc:
        raise BadUpload(str(exc)) from None


def _refuse_if_unsafe(found: list[str]) -> None:
    if found:
        shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
        raise UnsafeUpload(
            "refused: loading this checkpoint would run code (it imports "
            f"{shown}); only tensors and plain containers are accepted"
        )


def detect_format(path: Path) -> DetectedFormat:
    """Recognise an upload by content and refuse unsafe or unsupported ones.

    Raises :class:`UnsupportedContent` (415), :class:`UnsafeUpload` (400) or
    :class:`BadUpload` (400).  Reads headers and pickle opcodes only: no tensor data,
    and no pickle is ever loaded.
    """
    from heritage.reading.sniff import FileKind, sniff_bytes

    with path.open("rb") as fh:
        head = fh.read(64)
    kind = sniff_bytes(head)
    if kind is FileKind.SAFETENSORS:
        _check_safetensors_header(path)
        return DetectedFormat("safetensors", ".safetensors")
    try:
        if kind is FileKind.ZIP:
            if not _is_torch_zip(path):
                raise UnsupportedContent("a zip archive that is not a PyTorch checkpoint")
            _refuse_if_unsafe(unsafe_globals_in_checkpoint(path, is_zip=True))
            return DetectedFormat("pytorch", ".pt")
        if kind is FileKind.TORCH_LEGACY or head.startswith(_PICKLE_PROTOCOL0_STARTS):
            try:
                found = unsafe_globals_in_checkpoint(path, is_zip=False)
            except ValueError:
                if kind is FileKind.TORCH_LEGACY:
                    raise
                raise UnsupportedContent(_UNSUPPORTED) from None  # text, not a pickle
            _refuse_if_unsafe(found)
            return DetectedFormat("pytorch", ".pt")
    except ValueError as exc:
        raise BadUpload(f"malformed PyTorch checkpoint: {str(exc)[:200]}") from None
    if kind is FileKind.GGUF:
        return _check_gguf(path)
    if kind is FileKind.ONNX:
        raise UnsupportedContent("ONNX graphs are not supported; export the weights to safetensors")
    raise UnsupportedContent(_UNSUPPORTED)


def _check_gguf(path: Path) -> DetectedFormat:
    """A GGUF (llama.cpp) file: its header must parse and name at least one tensor."""
    from heritage.errors import ModelLoadError
    from heritage.reading.gguf_file import read_gguf_header

    try:
        header = read_gguf_header(path)
    except ModelLoadError as exc:
        raise BadUpload(f"malformed GGUF file: {exc}") from None
    if not header.tensors:
        raise BadUpload("malformed GGUF file: it holds no tensors")
    return DetectedFormat("gguf", ".gguf")


def _is_torch_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("data.pkl") for n in zf.namelist())
    except Exception as exc:  # a corrupt archive: zipfile raises several types
        raise ValueError(f"corrupt zip archive ({exc.__class__.__name__})") from None


_UNSUPPORTED = "unsupported content: expected a safetensors file, a PyTorch checkpoint (.pt/.pth/.bin) or a GGUF file"


def store_upload(received: ReceivedUpload, detected: DetectedFormat, upload_dir: Path) -> Path:
    """Move a checked upload to its permanent place ``<upload_dir>/<uuid><ext>``.

    The name is random, never the client's: a client file name cannot choose where
    the file lands, and two uploads never collide.
    """
    final = Path(upload_dir) / f"{uuid.uuid4().hex}{detected.extension}"
    os.replace(received.path, final)
    received.path = final
    return final


def remove_stored_upload(path: str | Path | None, upload_dir: Path) -> bool:
    """Delete the file :func:`store_upload` stored for a model that is being deleted.

    Only a regular file directly inside ``upload_dir`` is removed; anything else (a path
    elsewhere, a link, a folder) is left alone and logged: the caller's record says the
    upload stored it, and the location must agree before a file is deleted.
    """
    if not path:
        return False
    candidate = Path(path)
    if candidate.parent.resolve() != Path(upload_dir).resolve() or candidate.is_symlink() or not candidate.is_file():
        log.warning("not removing %s: not a file of the upload folder %s", candidate, upload_dir)
        return False
    discard(candidate)
    return not candidate.exists()


def discard(path: Path | None) -> None:
    """Remove a file we created; never raises."""
    if path is None:
        return
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:  # pragma: no cover - e.g. a read-only directory
        log.warning("could not remove %s: %s", path, exc)
