"""A fresh checkout: the embedded defaults work with no data folder and no configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_migrate_on_the_default_sqlite_creates_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "not" / "there" / "yet"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CROSSREAD_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="crossread.settings")
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert (data / "crossread.sqlite3").is_file()


def test_settings_refuse_a_bad_environment(tmp_path: Path) -> None:
    env = {**os.environ, "DJANGO_DEBUG": "maybe", "CROSSREAD_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "DJANGO_DEBUG must be a boolean" in result.stderr


def test_the_models_and_their_migrations_agree(tmp_path: Path) -> None:
    """A model change (new choices too) without its migration fails here, not on a deployment."""
    env = {**os.environ, "CROSSREAD_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
