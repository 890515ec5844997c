#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite against a real Neo4j.
# Neo4j: NEO4J_URI if set, else a Docker engine's testcontainers neo4j:5, else the
# local server (`heritage neo4j start`), started by the test fixtures when not running.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$("$repo/scripts/setup.sh" | tail -n 1)"
cd "$repo"
exec "$bin/python" -m pytest "$@"
