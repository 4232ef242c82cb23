#!/usr/bin/env bash
# Structure checks: the import contracts of pyproject.toml (import-linter) and mypy on the pure cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/lint-imports
.venv/bin/mypy
