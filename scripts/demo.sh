#!/usr/bin/env bash
# Quick start: install into .venv/, create the database, load the demo project, users and studies,
# and serve the app (HTTP and websockets) on http://127.0.0.1:8000, and DICOM (DIMSE) on port 11112.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py clean_storage  # what an interrupted ingest left in the object store
.venv/bin/python manage.py load_demo
.venv/bin/python manage.py load_demo_trial
# The DIMSE listener beside the web server, stopped with it.
.venv/bin/python manage.py dicom_listener --port "${CROSSREAD_DICOM_PORT:-11112}" &
listener=$!
trap 'kill "$listener" 2>/dev/null || true' EXIT INT TERM
echo "Open http://127.0.0.1:8000/ and log in with a demo user above."
echo "DICOM: send to AE title DEMO at 127.0.0.1:${CROSSREAD_DICOM_PORT:-11112} (e.g. storescu -aec DEMO 127.0.0.1 11112 file.dcm)."
.venv/bin/python manage.py runserver "${CROSSREAD_ADDRESS:-127.0.0.1:8000}"
