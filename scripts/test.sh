#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite against a real Neo4j of its
# own: HERITAGE_TEST_NEO4J_URI if set (that server is emptied), else a Docker engine's
# testcontainers neo4j:5, else a private local server (tests/neo4j_servers.py) on free
# ports. The user's server (`heritage neo4j start`, NEO4J_*) is never touched.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$("$repo/scripts/setup.sh" | tail -n 1)"
cd "$repo"
exec "$bin/python" -m pytest "$@"
