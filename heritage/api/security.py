"""Security checks that do not depend on FastAPI: API keys and pickle inspection.

API keys are compared in constant time against every configured key, so the time a
rejection takes says nothing about how close a guess was.

Pickle inspection walks the opcodes of a pickle *without unpickling it* and lists
every global it would import.  A PyTorch checkpoint needs only a handful (tensor
rebuild helpers, storage types, ``OrderedDict``); anything else (``os.system``,
``builtins.eval``, a custom class) means that loading the file would run code, and
the upload is refused before any loader sees it.  ``torch.load(weights_only=True)``
in the compute core is the second line of defence, not the only one.
"""

from __future__ import annotations

import hmac
import io
import pickletools
import zipfile
from pathlib import Path
from typing import IO, Iterable

__all__ = [
    "SECURITY_HEADERS",
    "KeyVerifier",
    "SAFE_GLOBALS",
    "unsafe_globals_in_pickle",
    "unsafe_globals_in_checkpoint",
    "TORCH_LEGACY_MAGIC",
]

# Defensive headers on every answer, 500s included (see heritage.api.app.SecurityHeaders).
SECURITY_HEADERS: dict[str, str] = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}

# ------------------------------------------------------------------------------------ API keys


class KeyVerifier:
    """Checks a presented key against the configured ones in constant time."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(k.encode("utf-8") for k in keys if k)

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def verify(self, presented: str | None) -> bool:
        if not presented or not self._keys:
            return False
        candidate = presented.encode("utf-8", "surrogateescape")
        matched = False
        for key in self._keys:  # no early exit: every key is compared
            matched |= hmac.compare_digest(candidate, key)
        return matched


# ------------------------------------------------------------------------- pickle inspection

# What torch.save() of a state dict needs (torch's own weights_only allow-list, reduced).
_TORCH_STORAGES = {
    f"{t}Storage"
    for t in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte",
              "Bool", "ComplexFloat", "ComplexDouble", "Untyped")
}
_TORCH_DTYPES = {
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
    "bool", "complex64", "complex128", "float", "double", "half", "long", "int", "short",
}
SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("collections", "OrderedDict"), ("torch", "Size"), ("torch", "device")}
    | {("torch._utils", n) for n in ("_rebuild_tensor", "_rebuild_tensor_v2",
                                     "_rebuild_tensor_v3", "_rebuild_parameter")}
    | {("torch", s) for s in _TORCH_STORAGES}
    | {("torch.storage", "UntypedStorage"), ("torch.storage", "TypedStorage")}
    | {("torch", d) for d in _TORCH_DTYPES}
)

# torch.save's legacy (non-zip) format starts with a pickled magic number.
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
               "SHORT_BINUNICODE", "BINUNICODE8"}
_MAX_OPS = 50_000_000
# A torch checkpoint's pickle holds names and storage references, never tensor data:
# a few MB at most.  Capping what is read also defuses length fields that claim
# gigabytes and compressed members that inflate without end.
MAX_PICKLE_BYTES = 256 * 1024**2
_MAX_LINE = 1024 * 1024


class _Capped:
    """A read-only stream that never returns (or allocates) more than it may read."""

    def __init__(self, raw: IO[bytes], budget: int = MAX_PICKLE_BYTES) -> None:
        self.raw = raw
        self.budget = budget

    def _take(self, data: bytes) -> bytes:
        self.budget -= len(data)
        if self.budget < 0:
            raise ValueError("pickle too large to inspect")
        return data

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.budget + 1
        return self._take(self.raw.read(min(n, self.budget + 1)))

    def readline(self, limit: int = -1) -> bytes:
        return self._take(self.raw.readline(_MAX_LINE))


class _PickleFacts:
    def __init__(self) -> None:
        self.globals: list[tuple[str, str]] = []
        self.unresolved = 0
        self.extensions = 0
        self.first_long: int | None = None


def _walk(stream: IO[bytes]) -> _PickleFacts:
    """Read ONE pickle (up to its STOP) from ``stream`` and collect what it would import.

    Raises ``ValueError`` for bytes that are not a well-formed pickle.
    """
    facts = _PickleFacts()
    stack: list[object] = []  # strings we can see, None for anything else
    memo: dict[int, object] = {}
    count = 0
    for opcode, arg, _pos in pickletools.genops(stream):
        count += 1
        if count > _MAX_OPS:
            raise ValueError("pickle too large to inspect")
        name = opcode.name
        if name in _STRING_OPS:
            value = arg.decode("latin-1") if isinstance(arg, bytes) else arg
            stack.append(value)
        elif name in ("LONG1", "LONG4", "INT", "BININT", "BININT1", "BININT2", "LONG"):
            if facts.first_long is None and isinstance(arg, int):
                facts.first_long = arg
            stack.append(None)
        elif name == "GLOBAL" or name == "INST":
            module, _, attr = str(arg).partition(" ")
            facts.globals.append((module, attr))
            stack.append(None)
        elif name == "STACK_GLOBAL":
            attr = stack.pop() if stack else None
            module = stack.pop() if stack else None
            if isinstance(module, str) and isinstance(attr, str):
                facts.globals.append((module, attr))
            else:
                facts.unresolved += 1
            stack.append(None)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = stack[-1] if stack else None
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(int(arg)))
        elif name in ("FRAME", "PROTO", "STOP"):
            continue  # framing only: no stack effect
        elif name in ("EXT1", "EXT2", "EXT4"):
            facts.extensions += 1
            stack.append(None)
        else:
            # Exact stack effects do not matter for the few string look-ups above;
            # an unknown value is recorded as None so STACK_GLOBAL stays conservative.
            stack.append(None)
    return facts


def _describe(facts: _PickleFacts) -> list[str]:
    bad = sorted({f"{m}.{a}" for m, a in facts.globals if (m, a) not in SAFE_GLOBALS})
    if facts.unresolved:
        bad.append(f"{facts.unresolved} import(s) computed at load time")
    if facts.extensions:
        bad.append(f"{facts.extensions} copyreg extension import(s)")
    return bad


def unsafe_globals_in_pickle(data: bytes | IO[bytes]) -> list[str]:
    """Globals (``module.name``) a single pickle would import beyond the safe set.

    An empty list means loading it can only build tensors and plain containers.
    Raises ``ValueError`` when the bytes are not a pickle.
    """
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return _describe(_walk(_Capped(stream)))  # type: ignore[arg-type]


def _legacy_torch(path: Path) -> list[str]:
    """Inspect a legacy torch.save file: a chain of pickles followed by raw storage bytes."""
    bad: list[str] = []
    with path.open("rb") as raw:
        fh: IO[bytes] = _Capped(raw)  # type: ignore[assignment]
        facts = _walk(fh)
        bad += _describe(facts)
        if facts.first_long != TORCH_LEGACY_MAGIC:
            return bad  # a bare pickle: the loader reads only this one
        # magic, protocol version, sys info, the object, the storage keys
        for _ in range(4):
            bad += _describe(_walk(fh))
    return bad


def _zip_torch(path: Path) -> list[str]:
    bad: list[str] = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.filename.endswith(".pkl"):
                with zf.open(info) as member:
                    bad += [f"{info.filename}: {g}" for g in unsafe_globals_in_pickle(member)]
    return bad


def unsafe_globals_in_checkpoint(path: Path, is_zip: bool) -> list[str]:
    """Unsafe imports in a PyTorch checkpoint (zip or legacy), without loading it.

    Raises ``ValueError`` for a file whose pickles are malformed.
    """
    try:
        return _zip_torch(path) if is_zip else _legacy_torch(path)
    except ValueError:
        raise
    except Exception as exc:  # zipfile/zlib/struct errors of a corrupt file
        raise ValueError(f"malformed checkpoint ({exc.__class__.__name__}: {str(exc)[:100]})") from None
