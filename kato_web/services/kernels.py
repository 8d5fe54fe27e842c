"""Compiling the prediction kernels into numba's on-disk cache, in child processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def compile_kernels(parts: int | None = None) -> None:
    """Compile the prediction kernels into numba's on-disk cache, in child processes.

    The compiler's memory (~120 MB) then never lives in the process that serves (or that
    gunicorn forks the workers from). With two or more usable cores, two children compile
    half the kernels each, at once (engine.index.compile_part): the first start's wait is
    about halved. A child that fails leaves its kernels to the caller's warm_up.
    """
    if parts is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        parts = 2 if cores >= 2 else 1
    code = ("from kato_web.engine.index import compile_part; "
            f"compile_part({{part}}, {parts})" if parts == 2 else
            "from kato_web.engine.index import warm_up; warm_up()")
    root = str(Path(__file__).resolve().parents[2])
    children = [subprocess.Popen([sys.executable, "-c", code.format(part=part)], cwd=root)
                for part in range(parts)]
    for child in children:
        child.wait()
