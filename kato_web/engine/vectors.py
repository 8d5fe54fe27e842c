"""Nearest learned vectors of an observed vector (kato-3.10.md decision 17, §1.4m).

A node's learned vectors are kept per dimension as one float64 matrix; a query compares a
vector only with those of its own dimension. The search is exact: Euclidean distance, the k
nearest, ties broken by name. Pure numpy; the service layer keeps one `VectorSet` per node in
each worker and feeds it the rows learned since its last refresh.

Speed: the squared distances of all rows come from one matrix-vector product
(|m|² − 2·m·v + |v|²). That expansion rounds differently from the direct sum of squares, so it
only picks the candidates: every row within a proven rounding bound of the k-th best is then
measured directly (sqrt of the sum of squared differences), and those exact distances decide.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

NEIGHBOURS = 3  # KATO's k for vector observations
_EPS = float(np.finfo(np.float64).eps)


class _Group:
    """The learned vectors of one dimension: names, rows and squared norms, grown by doubling."""

    __slots__ = ("dim", "names", "rows", "norms", "size")

    def __init__(self, dim: int):
        self.dim = dim
        self.names: list[str] = []
        self.rows = np.empty((0, dim), dtype=np.float64)
        self.norms = np.empty(0, dtype=np.float64)
        self.size = 0

    def add(self, name: str, vector: np.ndarray) -> None:
        if self.size == len(self.rows):
            capacity = max(16, 2 * len(self.rows))
            rows = np.empty((capacity, self.dim), dtype=np.float64)
            rows[: self.size] = self.rows[: self.size]
            norms = np.empty(capacity, dtype=np.float64)
            norms[: self.size] = self.norms[: self.size]
            self.rows, self.norms = rows, norms
        self.rows[self.size] = vector
        self.norms[self.size] = float(np.dot(vector, vector))
        self.names.append(name)
        self.size += 1

    def nearest(self, vector: np.ndarray, k: int) -> list[tuple[float, str]]:
        n = self.size
        if n == 0 or k <= 0:
            return []
        rows, norms = self.rows[:n], self.norms[:n]
        if n > 4 * k:
            v2 = float(np.dot(vector, vector))
            approx = norms - 2.0 * (rows @ vector) + v2
            kth = float(np.partition(approx, k - 1)[k - 1])
            # |error| of each approximate squared distance ≤ 2·dim·eps·(|m|² + |v|²) (dot products
            # of dim terms); twice that keeps every row that could truly be among the k nearest.
            bound = 4.0 * (self.dim + 2) * _EPS * (float(norms.max()) + v2)
            picked = np.flatnonzero(approx <= kth + bound)
        else:
            picked = np.arange(n)
        exact = _distances(rows[picked], vector)
        found = sorted(zip(exact.tolist(), (self.names[i] for i in picked.tolist())))
        return found[:k]


def _distances(rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Return the Euclidean distance of each row to `vector`, each row computed on its own
    (the same value whichever other rows are in `rows`)."""
    diff = rows - vector
    return np.sqrt((diff * diff).sum(axis=1))


class VectorSet:
    """The learned vectors of one node, searched per dimension."""

    def __init__(self) -> None:
        self._groups: dict[int, _Group] = {}
        self._names: set[str] = set()

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def dimensions(self) -> dict[int, int]:
        """Return {dimension: how many vectors}, by dimension."""
        return {dim: group.size for dim, group in sorted(self._groups.items())}

    def add(self, name: str, vector: Sequence[float] | np.ndarray) -> bool:
        """Add one vector under its name; False (and nothing changes) if the name is known."""
        if name in self._names:
            return False
        array = np.asarray(vector, dtype=np.float64).reshape(-1)
        group = self._groups.get(len(array))
        if group is None:
            group = self._groups[len(array)] = _Group(len(array))
        group.add(name, array)
        self._names.add(name)
        return True

    def add_bytes(self, rows: Iterable[tuple[str, int, bytes]]) -> None:
        """Add stored rows (name, dimension, float64 bytes) in the given order."""
        for name, dim, data in rows:
            vector = np.frombuffer(data, dtype=np.float64)
            if len(vector) == dim:
                self.add(name, vector)

    def nearest(self, vector: Sequence[float] | np.ndarray, k: int = NEIGHBOURS,
                extra: Iterable[tuple[str, Sequence[float]]] = ()) -> list[str]:
        """Return the names of the `k` learned vectors nearest to `vector`, nearest first.

        Only vectors of the same dimension count; equal distances are ordered by name. `extra`
        (name, vector) pairs are searched as if they had been added (a request's own learns).
        """
        return [name for _d, name in self.nearest_with_distances(vector, k, extra)]

    def nearest_with_distances(self, vector, k: int = NEIGHBOURS,
                               extra: Iterable[tuple[str, Sequence[float]]] = ()) -> list[tuple[float, str]]:
        query = np.asarray(vector, dtype=np.float64).reshape(-1)
        group = self._groups.get(len(query))
        found = group.nearest(query, k) if group is not None else []
        names, values = [], []
        for name, other in extra:
            other = np.asarray(other, dtype=np.float64).reshape(-1)
            if name not in self._names and name not in names and len(other) == len(query):
                names.append(name)
                values.append(other)
        if names:
            exact = _distances(np.vstack(values), query)
            found = sorted(found + list(zip(exact.tolist(), names)))
        return found[:k]


def encode(vector: Sequence[float]) -> bytes:
    """Return the stored form of a vector: its float64 values' bytes."""
    return np.asarray(vector, dtype=np.float64).tobytes()
