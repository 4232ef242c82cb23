#!/usr/bin/env bash
# Quick start: install into .venv/, create the database, load the demo project, users and studies,
# and serve the app (HTTP and websockets) on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py clean_storage  # what an interrupted ingest left in the object store
.venv/bin/python manage.py load_demo
.venv/bin/python manage.py load_demo_trial
echo "Open http://127.0.0.1:8000/ and log in with a demo user above."
exec .venv/bin/python manage.py runserver "${CROSSREAD_ADDRESS:-127.0.0.1:8000}"
