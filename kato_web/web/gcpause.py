"""Pause Python's cyclic garbage collector while a request builds a large acyclic answer.

A predictions answer at a low recall threshold is tens of thousands of fresh lists and
dicts. With the collector on, every few hundred allocations trigger a young collection that
walks them all, and they get promoted and walked again by older collections: measured, a
few milliseconds per large answer spent proving that plain JSON data has no cycles. Those
objects are freed by reference counting once the response bytes exist, so pausing the
collector for the span of the request costs nothing later (CPython counts a freed container
back out of the young generation).

The collector is process-wide and gunicorn runs several threads per worker, so pauses are
counted: it is switched back on when the last pause ends, and only if it was on before the
first one began.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def depth() -> int:
    """How many pauses are in progress (for tests)."""
    return _depth
