#!/usr/bin/env bash
# Set up the environment if needed, then run the main job end to end: start Neo4j,
# build the small ground-truth model zoo (real fine-tuning, cached after the first
# run), import it, recover the genealogy, print the trees and the addresses of the API
# and Neo4j Browser.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$("$repo/scripts/setup.sh" | tail -n 1)"
cd "$repo"
exec "$bin/heritage" demo "$@"
