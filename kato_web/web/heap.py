"""Give the C heap's free memory back to the operating system after a large answer.

A predictions answer over a large node at a low recall threshold runs to tens of megabytes
(54 MB at a million patterns, θ = 0.1), built from numpy arrays, byte buffers and Python
objects that are all freed once the response is sent. glibc keeps that freed memory in its
arenas (one per thread that allocated) rather than returning it, so a worker that served
one such answer holds hundreds of megabytes more for the rest of its life: measured in one
thread, 425 MB with a million-pattern node loaded, 650 MB after one answer, 429 MB after
``malloc_trim(0)``, which took 12 ms.

``init_app`` trims once responses larger than ``KATO_TRIM_AFTER_BYTES`` (8 MiB by default; 0
switches it off) stop coming: each such response, once sent, (re)arms a timer, and the trim
runs when none followed for ``KATO_TRIM_DELAY_SECONDS`` (5 s). Measured over HTTP at a million
patterns, θ = 0.1 (~1 s, ~54 MB answers back to back on one connection): trimming after every
answer made them ~10 % slower (each faulted its memory in again), and so did a 1 s delay
(shorter than the gap between two such answers); with 5 s the p50 is that of no trimming
(956 against 965 ms) and the worker that served them holds 475 MB afterwards instead of 870.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading

_lock = threading.Lock()
_libc = None
trims = 0  # how many trims ran in this process (tests, diagnostics)


def _malloc_trim():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim  # noqa: B018 - glibc only; elsewhere there is nothing to trim
        except (OSError, AttributeError):
            _libc = False
    return _libc.malloc_trim if _libc else None


def trim() -> bool:
    """Return freed heap memory to the OS where the C library can (glibc); True if it ran."""
    global trims
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)  # ctypes releases the GIL for the call: other threads keep serving
    with _lock:
        trims += 1
    return True


_timer: threading.Timer | None = None


def trim_when_quiet(delay: float) -> None:
    """Trim `delay` seconds from now, unless called again before then (which moves it on)."""
    global _timer
    with _lock:
        if _timer is not None:
            _timer.cancel()
        _timer = threading.Timer(delay, trim)
        _timer.daemon = True
        _timer.start()


def init_app(app, after_bytes: int, delay: float) -> None:
    """Trim once responses larger than `after_bytes` (0: never) have stopped for `delay` s."""
    if after_bytes <= 0:
        return

    @app.after_request
    def _trim_after_large_answers(response):
        size = response.content_length
        if size is not None and size > after_bytes:
            response.call_on_close(lambda: trim_when_quiet(delay))
        return response
