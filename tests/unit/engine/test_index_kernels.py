"""The compiled kernels after the index became a package (issue 12): all warmed, all cached.

A kernel is a numba dispatcher in one of ``kato_web.engine.index``'s modules. These checks run
in fresh interpreters, as a worker starts: what one test process compiled earlier cannot hide
a kernel that ``warm_up`` misses.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kato_web.engine import index as index_module

pytestmark = pytest.mark.skipif(not index_module.COMPILED, reason="numba kernels unavailable")

ROOT = Path(__file__).resolve().parents[3]

# Prints, per kernel, whether warm_up compiled or loaded it and how many of its signatures came
# from the on-disk cache or were compiled anew.
PROBE = r"""
import importlib, json, pkgutil
from numba.core.registry import CPUDispatcher
import kato_web.engine.index as package
package.warm_up()
out = {}
for info in pkgutil.iter_modules(package.__path__):
    module = importlib.import_module(f"{package.__name__}.{info.name}")
    for name, value in vars(module).items():
        if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module.__name__:
            calls = sorted(n for n in value.py_func.__code__.co_names
                           if isinstance(value.py_func.__globals__.get(n), CPUDispatcher))
            foreign = sorted(n for n in calls
                             if value.py_func.__globals__[n].py_func.__module__ != module.__name__)
            out[f"{info.name}.{name}"] = {
                "signatures": len(value.signatures), "calls": calls, "foreign": foreign,
                "hits": sum(value.stats.cache_hits.values()),
                "misses": sum(value.stats.cache_misses.values())}
print(json.dumps(out))
"""


def _probe() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def kernels():
    _probe()  # compiles and stores whatever the cache lacks (a fresh clone: every kernel)
    return _probe()  # a second worker start


def test_every_module_of_the_path_has_kernels(kernels):
    modules = {name.split(".")[0] for name in kernels}
    assert {"candidates", "matching", "ensemble", "json_writers", "columns"} <= modules


def test_kernels_call_only_kernels_of_their_own_file(kernels):
    # numba's cache is keyed on the caller's own source file: a call into another file would
    # keep stale machine code after that file changed (index/compiled.py).
    assert {name: k["foreign"] for name, k in kernels.items() if k["foreign"]} == {}


def test_warm_up_reaches_every_kernel(kernels):
    # A kernel only ever called by another kernel is compiled into its caller; every other one
    # must have been compiled (or loaded) by warm_up, so that no request pays for it.
    called = {f"{name.split('.')[0]}.{c}" for name, k in kernels.items() for c in k["calls"]}
    cold = [name for name, k in kernels.items() if name not in called and not k["signatures"]]
    assert cold == []


def test_a_second_start_loads_every_kernel_from_the_disk_cache(kernels):
    loaded = {name: k for name, k in kernels.items() if k["signatures"]}
    assert loaded, "nothing compiled"
    assert {name: k["misses"] for name, k in loaded.items() if k["misses"]} == {}
    assert all(k["hits"] >= k["signatures"] for k in loaded.values())



def test_the_second_compile_part_names_kernels_that_exist():
    # A kernel renamed away from the split would silently move to the first part (slower
    # first starts, never wrong answers); keep the names real.
    from kato_web.engine.index import pattern_index

    names = {name for name, _kernel in pattern_index._kernels()}
    assert pattern_index._SECOND_PART <= names
    assert len(names - pattern_index._SECOND_PART) >= 10


def test_the_parallel_first_compile_leaves_nothing_to_compile(tmp_path):
    # A fresh install: two processes compile half the kernels each, at once, into an empty
    # cache (services/kernels.py, run by gunicorn's master); a worker starting after them
    # loads every kernel from the disk cache and compiles none.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", "from kato_web.services.kernels import compile_kernels; compile_kernels(2)"], cwd=ROOT,
                   timeout=600, check=True, env=env)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=True, env=env)
    kernels = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = {name: k for name, k in kernels.items() if k["signatures"]}
    assert len(loaded) >= 10
    assert {name: k["misses"] for name, k in loaded.items() if k["misses"]} == {}
    assert all(k["hits"] >= k["signatures"] for k in loaded.values())
