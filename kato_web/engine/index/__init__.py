"""The compiled fast path of prediction: ``PatternIndex`` and the switch of its kernels.

Modules follow the prediction path: compiled.py (numba, the FAST switch), columns.py (a node's
patterns as integer arrays), candidates.py (postings, count bound, prefix filter), matching.py
(LCS, difflib-identical blocks, event span), ensemble.py (ensemble and metrics), json_writers.py
(future_potentials and prediction objects as JSON bytes), pattern_index.py (``PatternIndex``,
which ties them together, and ``warm_up``).

``FAST`` is read through ``compiled`` on each access (``index.FAST`` below), so it always says
what ``use_compiled`` last set; ``from kato_web.engine.index import FAST`` would copy it once.
"""

from __future__ import annotations

from . import compiled
from .compiled import COMPILED, use_compiled
from .pattern_index import PatternIndex, compile_part, kernel_cache_dir, kernels_cached, kernels_ready, warm_up

__all__ = ["COMPILED", "FAST", "PatternIndex", "compile_part", "kernel_cache_dir", "kernels_cached", "kernels_ready",
           "use_compiled", "warm_up"]


def __getattr__(name: str):
    if name == "FAST":
        return compiled.FAST
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
