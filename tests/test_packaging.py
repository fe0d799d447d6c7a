"""Tailor installs as a wheel, not only as a checkout: every file its packages read at run
time ships inside them, and an installed `tailor demo` runs from any directory with
its data and models under `TAILOR_HOME`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.support.flow import CLOCK_START

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tailor", "feature_repo", "serving", "pipelines", "transformations")
NOT_SHIPPED = ("__pycache__", "target", "logs", "dbt_packages")
IGNORED = shutil.ignore_patterns(*NOT_SHIPPED)


def _source_files() -> set[str]:
    """Every file of the packages in the checkout, as wheel paths."""
    files = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            relative = path.relative_to(ROOT)
            if path.is_file() and set(NOT_SHIPPED).isdisjoint(relative.parts):
                files.add(relative.as_posix())
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the source, so no stale `build/` folder leaks into the wheel
    and the checkout stays clean."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=IGNORED)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("tailor-*.whl")
    return built


def test_the_wheel_carries_every_file_the_packages_read(wheel: Path):
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_source_files() - shipped)
    assert missing == [], f"not in the wheel: {missing}"
    for data_file in (
        "feature_repo/feature_store.yaml",
        "feature_repo/profiles/redis.yaml",
        "serving/placements.yaml",
        "transformations/dbt_project.yml",
        "transformations/models/marts/user_daily_features.sql",
        "tailor/core/database/alembic/env.py",
    ):
        assert data_file in shipped


def test_an_installed_tailor_runs_the_demo_from_another_directory(wheel: Path, tmp_path: Path):
    """A fresh virtual environment gets the wheel (not an editable install); the
    dependencies come from this one through a .pth line, which, unlike a site dir, does
    not run this environment's editable-install hook."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAILOR_")}
    env.update(
        TAILOR_HOME=str(tmp_path / "home"),
        TAILOR_GENERATOR__USERS="600",
        TAILOR_GENERATOR__DAYS="30",
        TAILOR_CLOCK_START=CLOCK_START.isoformat(),
        PYTHONPATH="",
    )
    where = subprocess.run(
        [str(python), "-c", "import serving, transformations; print(serving.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout
    demo = subprocess.run(
        [str(venv / "bin" / "tailor"), "demo", "--no-serve"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Sample decisions" in demo.stdout
    home = tmp_path / "home"
    assert (home / "models" / "latest" / "model.txt").is_file()
    assert (home / "data" / "marts" / "user_daily_features.parquet").is_file()
    assert (home / "data" / "decisions.db").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing written to the working directory
