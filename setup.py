"""Packaging glue: copy the root-level runtime files into the built package.

gunicorn.conf.py, wsgi.py, alembic.ini and alembic/ stay where the repository keeps them (one copy);
an installed kato-web finds them under kato_web/_project/ (kato_web/config.py: project_file), so that
`kato-web migrate` and `kato-web serve` work outside the repository. Everything else is in
pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("gunicorn.conf.py", "wsgi.py", "alembic.ini", "alembic")


class BuildWithProjectFiles(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "kato_web" / "_project"
        target.mkdir(parents=True, exist_ok=True)
        for name in BUNDLED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithProjectFiles})
