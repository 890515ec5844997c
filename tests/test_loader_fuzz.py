"""Property-based robustness of the loaders: mutated checkpoints load or fail cleanly.

Every mutation of a valid safetensors or PyTorch file must either load (and fingerprint)
or raise the project's own :class:`ModelLoadError` — never another exception type,
never hang (each example runs under an alarm), and never blow up memory (the peak RSS
while this module's tests ran is checked after them: reset at its start, so whatever the
process did before, building a model zoo for instance, does not count).
"""

from __future__ import annotations

import io
import resource
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save as save_safetensors_bytes

from heritage.errors import HeritageError, ModelLoadError
from heritage.reading.ingest import ingest
from heritage.evaluation.synthetic import family_zoo

import torch

PER_EXAMPLE_SECONDS = 10
MEMORY_CAP_BYTES = 512 * 1024 * 1024


def _valid_weights() -> dict[str, np.ndarray]:
    return family_zoo(seed=0, children=0, grandchildren=0, hidden=8, layers=1).models["m0"]


SAFETENSORS = save_safetensors_bytes(_valid_weights())


def _torch_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in _valid_weights().items()}, buf)
    return buf.getvalue()


TORCH_ZIP = _torch_bytes()


def _gguf_bytes(tmp: Path) -> bytes:
    from gguf_writing import Q, tiny_llama, write_llama_gguf

    folder, config = tiny_llama(tmp, hidden=32)
    write_llama_gguf(tmp / "m.gguf", folder, config, lambda name, data: Q.Q8_0 if "mlp" in name else Q.Q4_0)
    return (tmp / "m.gguf").read_bytes()


@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory) -> bytes:
    return _gguf_bytes(tmp_path_factory.mktemp("gguf"))


def _status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` memory figure (``VmHWM``, ``VmRSS``) in bytes; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _peak_rss() -> int:
    """Peak RSS since :func:`_reset_peak_rss` (Linux), else over the process's life."""
    peak = _status_bytes("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak_rss() -> int:
    """Start a new peak (Linux: writing 5 to ``clear_refs`` resets ``VmHWM``) and return
    the memory to measure growth from: the current RSS, or the peak so far off Linux."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        current = _status_bytes("VmRSS")
        if current is not None:
            return current
    except OSError:
        pass
    return _peak_rss()


@pytest.fixture(scope="module", autouse=True)
def memory_at_start() -> int:
    return _reset_peak_rss()


@contextmanager
def _deadline(seconds: int):
    def on_alarm(signum, frame):
        raise TimeoutError(f"loader still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for position, value in edits:
        buf[position % len(buf)] = value
    if cut is not None:
        buf = buf[: cut % (len(buf) + 1)]
    return bytes(buf)


mutations = st.tuples(
    st.lists(st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(0, 255)), max_size=8),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
)


def _check(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    with _deadline(PER_EXAMPLE_SECONDS):
        try:
            ingest(path)
        except ModelLoadError:
            pass
        except HeritageError as exc:  # pragma: no cover - would be a wrong error type
            pytest.fail(f"unexpected project error type {type(exc).__name__}: {exc}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations)
def test_mutated_safetensors_load_or_fail_cleanly(tmp_path: Path, mutation) -> None:
    edits, cut = mutation
    _check(tmp_path / "m.safetensors", _mutate(SAFETENSORS, edits, cut))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations)
def test_mutated_torch_checkpoints_load_or_fail_cleanly(tmp_path: Path, mutation) -> None:
    edits, cut = mutation
    _check(tmp_path / "m.pt", _mutate(TORCH_ZIP, edits, cut))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=st.tuples(
    st.lists(st.tuples(st.integers(min_value=0, max_value=2048), st.integers(0, 255)), max_size=8),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**6))))
def test_mutated_gguf_files_load_or_fail_cleanly(tmp_path: Path, gguf_bytes: bytes, mutation) -> None:
    edits, cut = mutation  # edits within the header and the first tensors, where the structure is
    _check(tmp_path / "m.gguf", _mutate(gguf_bytes, edits, cut))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.binary(min_size=0, max_size=64), body=st.binary(max_size=256))
def test_arbitrary_bytes_with_a_plausible_prefix(tmp_path: Path, header: bytes, body: bytes) -> None:
    data = len(header).to_bytes(8, "little") + header + body
    _check(tmp_path / "x.safetensors", data)


def test_memory_stayed_bounded_during_the_fuzzing(memory_at_start: int) -> None:
    """Runs after the fuzz tests in this module (pytest keeps file order)."""
    growth = _peak_rss() - memory_at_start
    assert growth < MEMORY_CAP_BYTES, f"peak RSS grew by {growth / 1e6:.0f} MB while fuzzing"
