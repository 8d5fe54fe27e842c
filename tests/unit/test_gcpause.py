"""The counted pause of the cyclic garbage collector (kato_web/web/gcpause.py)."""
from __future__ import annotations

import gc
import threading

from kato_web.web import gcpause


def test_pause_disables_and_restores():
    assert gc.isenabled()
    with gcpause.paused():
        assert not gc.isenabled()
        assert gcpause.depth() == 1
    assert gc.isenabled()
    assert gcpause.depth() == 0


def test_nested_and_overlapping_pauses_end_with_the_last_one():
    first_in, second_done, release = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def long_request():
        with gcpause.paused():
            first_in.set()
            release.wait(5)
            seen["during_long"] = gc.isenabled()

    worker = threading.Thread(target=long_request)
    worker.start()
    first_in.wait(5)
    with gcpause.paused():  # a second, shorter request in another thread
        with gcpause.paused():
            assert gcpause.depth() == 3
    second_done.set()
    seen["after_short"] = gc.isenabled()  # the long one still holds its pause
    release.set()
    worker.join(5)
    assert seen == {"during_long": False, "after_short": False}
    assert gc.isenabled() and gcpause.depth() == 0


def test_a_collector_switched_off_before_stays_off():
    gc.disable()
    try:
        with gcpause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_exception_still_ends_the_pause():
    try:
        with gcpause.paused():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.isenabled() and gcpause.depth() == 0
