"""Recognising a checkpoint file by its content, not its extension."""

from __future__ import annotations

import enum
import json
import struct
from pathlib import Path


class FileKind(str, enum.Enum):
    SAFETENSORS = "safetensors"
    TORCH_ZIP = "torch_zip"
    TORCH_LEGACY = "torch_legacy"
    ZIP = "zip"  # a zip archive that is not (or not yet known to be) a PyTorch checkpoint
    GGUF = "gguf"
    ONNX = "onnx"
    UNKNOWN = "unknown"


def sniff_bytes(head: bytes) -> FileKind:
    """Classify a file from its first bytes (at least 16 are useful)."""
    if head.startswith(b"PK\x03\x04"):
        return FileKind.ZIP
    if head.startswith(b"GGUF"):
        return FileKind.GGUF
    # safetensors before pickles: a header length of 0x0280..0x05FF bytes (or any whose
    # low bytes read 0x80, 0x02..0x05) starts the file like a pickle PROTO opcode, while
    # no pickle has eight bytes of plausible length followed by "{".
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= 100 * 1024 * 1024 and head[8:9] == b"{":
            return FileKind.SAFETENSORS
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return FileKind.TORCH_LEGACY
    if len(head) >= 2 and head[0] == 0x08 and head[1] in (0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09):
        return FileKind.ONNX  # protobuf field 1 (ir_version) varint
    return FileKind.UNKNOWN


def sniff_file(path: Path) -> FileKind:
    with path.open("rb") as fh:
        head = fh.read(64)
    kind = sniff_bytes(head)
    if kind is FileKind.ZIP and _is_torch_zip(path):
        return FileKind.TORCH_ZIP
    return kind


def _is_torch_zip(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("data.pkl") for n in zf.namelist())
    except Exception:  # a damaged archive can raise almost anything; it is just "not torch"
        return False


def read_json(path: Path) -> dict:
    from heritage.errors import ModelLoadError

    if not path.is_file():  # a FIFO or a device would block or never end
        raise ModelLoadError(f"{path.name}: not a regular file")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path.name}: invalid JSON ({exc})") from None
    except RecursionError:
        raise ModelLoadError(f"{path.name}: invalid JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path.name}: expected a JSON object")
    return value
