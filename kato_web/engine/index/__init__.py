"""The compiled fast path of prediction (step 1 of its split: the old module, moved whole)."""

from __future__ import annotations

from . import pattern_index as _module
from .pattern_index import COMPILED, PatternIndex, use_compiled, warm_up

__all__ = ["COMPILED", "FAST", "PatternIndex", "use_compiled", "warm_up"]


def __getattr__(name: str):
    if name == "FAST":  # switched by use_compiled: read it where it lives, never a copy
        return _module.FAST
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
