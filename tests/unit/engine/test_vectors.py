"""Nearest learned vectors (kato-3.10.md decision 17): exact, per dimension, ties by name."""
from __future__ import annotations

import math

import numpy as np

from kato_web.engine.vectors import VectorSet, encode


def brute_force(stored: dict[str, list[float]], query: list[float], k: int = 3) -> list[str]:
    same = [(math.dist(v, query), name) for name, v in stored.items() if len(v) == len(query)]
    return [name for _d, name in sorted(same)[:k]]


def test_matches_a_brute_force_search_on_random_data_with_many_rows():
    rng = np.random.default_rng(7)
    vectors = VectorSet()
    stored = {}
    for i in range(3000):
        dim = 8 if i % 3 else 5
        # coarse values make many exact ties, which must go by name
        values = rng.integers(-3, 4, size=dim).astype(float).tolist()
        name = f"VCTR|{i:05d}"
        stored[name] = values
        vectors.add(name, values)
    assert vectors.dimensions() == {5: 1000, 8: 2000}
    loaded = VectorSet()  # as a worker loads them: stored rows in blocks
    loaded.add_bytes((name, len(v), encode(v)) for name, v in stored.items())
    assert loaded.dimensions() == vectors.dimensions()
    for _ in range(50):
        for dim in (5, 8):
            query = rng.integers(-3, 4, size=dim).astype(float).tolist()
            assert vectors.nearest(query) == loaded.nearest(query) == brute_force(stored, query)
    assert vectors.nearest([0.0] * 6) == []  # no vector of that dimension


def test_large_magnitudes_still_pick_the_exact_nearest():
    # the matrix-product shortcut rounds; the exact step must decide
    vectors = VectorSet()
    base = 1e8
    stored = {f"v{i:03d}": [base + i * 1e-7, base] for i in range(100)}
    for name, values in stored.items():
        vectors.add(name, values)
    query = [base + 42.4e-7, base]
    assert vectors.nearest(query) == brute_force(stored, query)


def test_duplicates_are_ignored_and_stored_bytes_round_trip():
    vectors = VectorSet()
    assert vectors.add("a", [1.0, 2.0]) and not vectors.add("a", [9.0, 9.0])
    copy = VectorSet()
    copy.add_bytes([("a", 2, encode([1.0, 2.0])), ("b", 2, encode([0.5, -0.0]))])
    assert len(copy) == 2 and copy.nearest([0.0, 0.0]) == ["b", "a"]


def test_extra_pairs_are_searched_as_if_added():
    vectors = VectorSet()
    for name, values in (("c", [3.0]), ("d", [4.0]), ("e", [5.0])):
        vectors.add(name, values)
    got = vectors.nearest([0.0], extra=[("a", [1.0]), ("b", [2.0]), ("c", [3.0]), ("z", [1.0, 1.0])])
    assert got == ["a", "b", "c"]
    assert len(vectors) == 3  # nothing was added
