"""pytest set-up shared by ``tests/`` and the doctests (the README's "Python API" section
and the examples in the package's docstrings), all collected by a plain ``pytest``.

The README's examples store models in a catalogue: they run against the tests' own
private Neo4j (``tests/neo4j_fixtures.py``), emptied first, never a user's server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

pytest_plugins = ["neo4j_fixtures"]

# Running the package's entry point would start the command line during collection.
collect_ignore = ["heritage/__main__.py"]


@pytest.fixture(autouse=True)
def _readme_runs_on_the_test_database(request: pytest.FixtureRequest) -> None:
    if request.node.path.name == "README.md":
        request.getfixturevalue("neo4j_db")
