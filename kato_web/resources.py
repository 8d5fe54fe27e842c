"""Where the project's root-level runtime files are: the repository, or the installed package.

A source checkout uses gunicorn.conf.py, alembic.ini and alembic/ at the repository root; an
installed kato-web carries copies of them in kato_web/_project/ (setup.py puts them there).
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent
BUNDLED_ROOT = PACKAGE_DIR / "_project"


def in_source_checkout() -> bool:
    return (SOURCE_ROOT / "alembic.ini").is_file() and (SOURCE_ROOT / "alembic").is_dir()


def project_file(name: str) -> Path:
    """Return the path of a root-level project file (`gunicorn.conf.py`, `alembic.ini`, `alembic`)."""
    root = SOURCE_ROOT if in_source_checkout() else BUNDLED_ROOT
    path = root / name
    if not path.exists():
        raise FileNotFoundError(f"{name} is missing from {root}: reinstall kato-web")
    return path


def instance_dir() -> Path:
    """Where the default SQLite database lives: the checkout's instance/, else ./instance."""
    return (SOURCE_ROOT if in_source_checkout() else Path.cwd()) / "instance"
