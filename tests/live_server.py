"""``heritage serve`` as a real process on a free port of 127.0.0.1 (not a test module).

Used by the tests that need a server over HTTP (concurrency, the browser tests) and by
``scripts/screenshots.py`` and ``benchmarks/bench_ui.py``.  The process sees only the
``HERITAGE_*`` variables given here (never the shell's), and the ``NEO4J_*`` variables of
the environment: the tests export their private server's, the scripts their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from neo4j_servers import free_port

__all__ = ["heritage_serve", "register_zoo"]

START_TIMEOUT_S = 60.0


@contextmanager
def heritage_serve(log_path: Path, **heritage: str) -> Iterator[str]:
    """Start ``heritage serve`` with ``HERITAGE_<NAME>=value`` for each keyword (e.g.
    ``API_KEYS=...``); yield its base URL once ``/api/health`` answers 200; stop it after.

    The server's output goes to ``log_path``; a ``Traceback`` in it (an unexpected error
    inside the server) fails the caller when the server stops.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERITAGE_")}
    env.update({f"HERITAGE_{name.upper()}": str(value) for name, value in heritage.items()})
    env.setdefault("HERITAGE_ENV", "development")
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "heritage", "serve", "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "warning"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"the server did not answer within {START_TIMEOUT_S:g} s"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text, text[-5000:]  # no unexpected error inside the server


def register_zoo(url: str, key: str, zoo: Path) -> dict[str, str]:
    """Register every model of a built zoo (``heritage.evaluation.zoo``) through
    ``POST /api/models/register`` (the server's import roots must hold ``zoo/models``), named
    as in its ``truth.json``; returns ``{name: id}``."""
    import json

    truth = json.loads((zoo / "truth.json").read_text())
    ids = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as client:
        for record in truth["models"]:
            response = client.post("/api/models/register", json={"path": record["entry"], "name": record["name"]})
            assert response.status_code == 201, (record["name"], response.text)
            ids[record["name"]] = response.json()["model"]["id"]
    return ids
