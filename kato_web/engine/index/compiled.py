"""Whether the compiled path runs here: numba, numpy's own BLAS ``ddot``, and the FAST switch.

Every kernel module of this package decorates its kernels with ``jit`` from here and reads
``FAST`` through this module (``compiled.FAST``), never as a copy taken at import, so that
``use_compiled`` switches every reader at once.

Kernels are cached on disk (``cache=True``: the second process start loads machine code instead
of compiling). numba keys a kernel's cache on its own source file only, so a kernel must call
kernels of its own file alone: were ``ensemble._ensemble`` to call a kernel of ``matching.py``,
editing that kernel would leave the caller's stale machine code in the cache. A test holds this.
"""

from __future__ import annotations

import glob
import os

import numpy as np

__all__ = ["COMPILED", "FAST", "ddot", "jit", "use_compiled"]

FAST = False
ddot = None
try:  # pragma: no branch
    import llvmlite.binding as _llvm
    from numba import njit, types as _nt

    _libs = sorted(glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                          "libscipy_openblas64_*.so")))
    if _libs:
        _llvm.load_library_permanently(_libs[0])
        # numpy's 1-D float64 dot is ``0. + cblas_ddot(n, x, 1, y, 1)`` on this very symbol; calling
        # it gives numpy's result to the last bit, whatever kernel OpenBLAS picked for this CPU.
        ddot = _nt.ExternalFunction(
            "scipy_cblas_ddot64_",
            _nt.float64(_nt.int64, _nt.voidptr, _nt.int64, _nt.voidptr, _nt.int64))
        FAST = True
except ImportError:  # pragma: no cover - numba is pinned in requirements.txt
    FAST = False
COMPILED = FAST  # whether the compiled path can run here at all

if COMPILED:
    jit = njit(cache=True, nogil=True)
else:  # pragma: no cover - the kernels stay plain Python functions that nothing calls
    def jit(function):
        return function


def use_compiled(enabled: bool) -> bool:
    """Switch the compiled path on or off (KATO_FAST_PREDICT via the app's config); return FAST.

    Off, every prediction scores all patterns directly (same answers, far slower): a way to
    check the compiled path against the reference on live data.
    """
    global FAST
    FAST = COMPILED and bool(enabled)
    return FAST
