"""Fixtures for the packaging tests: a fresh clone of the committed HEAD, as a newcomer gets it."""
from __future__ import annotations

import subprocess

import pytest

from tests.support import ROOT


@pytest.fixture(scope="session")
def clone(tmp_path_factory):
    """A `git clone` of this repository's HEAD (uncommitted changes are not in it)."""
    target = tmp_path_factory.mktemp("newcomer") / "kato-web"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    return target
