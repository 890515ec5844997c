"""Neo4j servers that belong to the tests alone.

Why: the suite empties its database before every test, so it must never reach a
server that holds somebody's catalogue.  The server ``heritage neo4j start`` gives a user
lives in ``<repo>/.neo4j`` on ports 7687/7474 (or wherever ``NEO4J_*`` points); the tests
instead start their own, in a home of their own under ``<repo>/.neo4j-test/``, on free
ports, with a random password, and remove its data when they end.  ``NEO4J_*`` variables
are never read to choose the test server.

The jars are fetched once into ``.neo4j-test/lib`` (Maven copies them from its local
repository after the first download) and shared by every test server through a
symlinked ``lib``.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from graph import local_server
from graph.processes import process_alive
from graph.settings import Neo4jSettings

log = logging.getLogger(__name__)

TEST_ROOT = Path(__file__).resolve().parents[1] / ".neo4j-test"
_SESSION_PREFIX = "session-"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shared_lib(root: Path = TEST_ROOT) -> Path:
    """The jars of the test servers, fetched on first use (``<root>/lib``)."""
    return local_server.fetch(Neo4jSettings(home_dir=root))


def _clean_leftovers(root: Path) -> None:
    """Stop and remove servers of earlier test sessions that were killed before cleaning up."""
    for home in root.glob(f"{_SESSION_PREFIX}*"):
        try:
            owner = int(home.name[len(_SESSION_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if owner == os.getpid() or process_alive(owner):
            continue
        log.info("removing the test server left by session %d in %s", owner, home)
        try:
            local_server.stop(Neo4jSettings(home_dir=home), timeout=30)
        except Exception as exc:  # a broken leftover must not stop this session
            log.warning("could not stop the leftover server in %s: %s", home, exc)
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def private_server(home: Path | None = None, root: Path = TEST_ROOT,
                   password: str | None = None) -> Iterator[Neo4jSettings]:
    """Start a Neo4j of our own (own home, free Bolt and HTTP ports, random password) and
    yield its settings; stop it and delete its home (data included) afterwards.

    ``home`` defaults to a fresh ``<root>/session-<pid>-<random>`` folder.
    """
    root.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(root)
    lib = shared_lib(root)
    if home is None:
        home = root / f"{_SESSION_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "lib").exists():
        (home / "lib").symlink_to(lib.resolve(), target_is_directory=True)
    settings = Neo4jSettings(uri=f"bolt://127.0.0.1:{free_port()}", password=password or secrets.token_urlsafe(18),
                             http_port=free_port(), home_dir=home)
    settings = local_server.start(settings).settings
    try:
        yield settings
    finally:
        try:
            local_server.stop(settings)
        finally:
            shutil.rmtree(home, ignore_errors=True)
