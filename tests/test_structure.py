"""The layers of pyproject.toml's import contracts hold, and the check would notice a break.

``.ci/run`` runs import-linter and mypy through ``scripts/check.sh``; this test runs import-linter in
the suite too, so the README's test command guards the layers, and shows on a small copy of the
layout that a forbidden import fails the check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")


def _lint(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(config), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = _lint(REPO / "pyproject.toml", REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_a_forbidden_import_breaks_the_check(tmp_path):
    """The same contracts over a copy of the apps' names, where viewer imports collab and a pure core
    imports Django: both contracts must be reported broken."""
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    for package in contracts["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "viewer" / "leak.py").write_text("import collab\n")
    (tmp_path / "viewer" / "rules.py").write_text("import django\n")
    django = tmp_path / "django"
    django.mkdir()
    (django / "__init__.py").write_text("")
    config = tmp_path / "contracts.toml"
    lines = ["[tool.importlinter]",
             f"root_packages = {contracts['root_packages']!r}",
             "include_external_packages = true"]
    for contract in contracts["contracts"]:
        if contract["type"] != "forbidden":
            continue
        sources = [m for m in contract["source_modules"] if (tmp_path / m.replace(".", "/")).with_suffix(".py").exists()
                   or (tmp_path / m.replace(".", "/")).is_dir()]
        if not sources:
            continue
        lines += ["", "[[tool.importlinter.contracts]]", f"name = {contract['name']!r}", 'type = "forbidden"',
                  f"source_modules = {sources!r}", f"forbidden_modules = {contract['forbidden_modules']!r}"]
    config.write_text("\n".join(lines).replace("'", '"') + "\n")
    result = _lint(config, tmp_path)
    assert result.returncode != 0
    assert "viewer.leak -> collab" in result.stdout, result.stdout[-2000:]
    assert "viewer.rules -> django" in result.stdout, result.stdout[-2000:]
    shutil.rmtree(django)
