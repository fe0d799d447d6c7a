"""The dependency rule, checked by import-linter with the contract in pyproject.toml:
`tailor.core` imports no project code; `feature_repo` (and the dbt project) only the
kernel; `serving` and `pipelines` the kernel and `feature_repo`, never each other; only
`tailor.cli` composes both."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tailor", "feature_repo", "serving", "pipelines", "transformations")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
IGNORED = shutil.ignore_patterns("__pycache__", "target", "logs")


def _lint(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_code_obeys_the_dependency_rule():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("serving/decision/sneaky.py", "import pipelines.generate"),
        ("pipelines/sneaky.py", "from serving.decision import engine"),
        ("tailor/core/sneaky.py", "import feature_repo"),
        ("feature_repo/sneaky.py", "import serving.wiring"),
    ],
)
def test_an_import_against_the_rule_breaks_the_contract(tmp_path, module, forbidden):
    """The contract catches each kind of breach, so the check above can fail."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=IGNORED)
    (tmp_path / module).write_text(f"{forbidden}\n")
    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and Path(module).stem in result.stdout, result.stdout
