#!/usr/bin/env bash
# Install into .venv/ and run the whole test suite. Extra arguments go to pytest.
# Browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium); the
# Redis channel-layer tests need a Redis server on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
