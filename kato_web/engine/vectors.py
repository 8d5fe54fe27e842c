"""Nearest learned vectors of an observed vector (kato-3.10.md decision 17, §1.4m).

A node's learned vectors are kept per dimension as one float64 matrix; a query compares a
vector only with those of its own dimension. The search is exact: Euclidean distance, the k
nearest, ties broken by name. Pure numpy; the service layer keeps one `VectorSet` per node in
each worker and feeds it the rows learned since its last refresh.

Speed: the squared distances of all rows come from one float32 matrix-vector product
(|m|² − 2·m·v + |v|²; a float32 copy halves the memory each query streams through). That
shortcut rounds, so it only picks the candidates: every row within a proven rounding bound of
the k-th best is then measured directly in float64 (sqrt of the sum of squared differences),
and those exact distances decide. Values too large for float32 skip the shortcut.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

NEIGHBOURS = 3  # KATO's k for vector observations

try:
    from numba import njit

    # The screening pass, compiled: one streaming read of the float32 rows, no BLAS threads
    # fighting gunicorn's workers for the cores. fastmath lets it vectorise the sums; the
    # order of a sum only moves its rounding inside the bound that nearest() allows for.
    @njit(cache=True, nogil=True, fastmath=True)
    def _screen(rows32, n, norms, vector32, v2, out):  # pragma: no cover - compiled
        dim = rows32.shape[1]
        for i in range(n):
            acc = 0.0
            for j in range(dim):
                acc += np.float64(rows32[i, j]) * np.float64(vector32[j])
            out[i] = norms[i] - 2.0 * acc + v2
except ImportError:  # pragma: no cover - numba is pinned in requirements.txt
    _screen = None
_EPS32 = float(np.finfo(np.float32).eps)
# Above this squared norm float32 could overflow: such a group is searched exactly throughout.
_SCREEN_LIMIT = 1e30


class _Group:
    """The learned vectors of one dimension: names, rows and squared norms, grown by doubling."""

    __slots__ = ("dim", "names", "rows", "rows32", "norms", "max_norm", "size")

    def __init__(self, dim: int):
        self.dim = dim
        self.names: list[str] = []
        self.rows = np.empty((0, dim), dtype=np.float64)
        self.rows32 = np.empty((0, dim), dtype=np.float32)
        self.norms = np.empty(0, dtype=np.float64)
        self.max_norm = 0.0
        self.size = 0

    def add(self, name: str, vector: np.ndarray) -> None:
        if self.size == len(self.rows):
            self._grow(max(16, 2 * len(self.rows)))
        norm = float(np.dot(vector, vector))
        self.rows[self.size] = vector
        with np.errstate(over="ignore"):
            self.rows32[self.size] = vector
        self.norms[self.size] = norm
        self.max_norm = max(self.max_norm, norm)
        self.names.append(name)
        self.size += 1

    def extend(self, names: list[str], matrix: np.ndarray) -> None:
        """Append many rows at once (a load of stored vectors)."""
        count = len(names)
        if self.size + count > len(self.rows):
            self._grow(max(16, 2 * len(self.rows), self.size + count))
        start, self.size = self.size, self.size + count
        self.rows[start:self.size] = matrix
        with np.errstate(over="ignore"):
            self.rows32[start:self.size] = matrix
        norms = np.einsum("ij,ij->i", matrix, matrix)
        self.norms[start:self.size] = norms
        if count:
            self.max_norm = max(self.max_norm, float(norms.max()))
        self.names.extend(names)

    def _grow(self, capacity: int) -> None:
        rows = np.empty((capacity, self.dim), dtype=np.float64)
        rows[: self.size] = self.rows[: self.size]
        rows32 = np.empty((capacity, self.dim), dtype=np.float32)
        rows32[: self.size] = self.rows32[: self.size]
        norms = np.empty(capacity, dtype=np.float64)
        norms[: self.size] = self.norms[: self.size]
        self.rows, self.rows32, self.norms = rows, rows32, norms

    def nearest(self, vector: np.ndarray, k: int) -> list[tuple[float, str]]:
        n = self.size
        if n == 0 or k <= 0:
            return []
        rows = self.rows[:n]
        v2 = float(np.dot(vector, vector))
        if n > 4 * k and self.max_norm < _SCREEN_LIMIT and v2 < _SCREEN_LIMIT:
            vector32 = vector.astype(np.float32)
            if _screen is not None:
                approx = np.empty(n, dtype=np.float64)
                _screen(self.rows32, n, self.norms, vector32, v2, approx)
            else:
                approx = self.norms[:n] - 2.0 * (self.rows32[:n] @ vector32).astype(np.float64) + v2
            kth = float(np.partition(approx, k - 1)[k - 1])
            # Each approximate squared distance is off by at most (dim + 8)·eps32·(|m|² + |v|²):
            # float32 rounding of both vectors, then a dot product of dim terms. A row whose
            # approximation is within twice that (with room to spare) of the k-th could truly
            # be among the k nearest; any other cannot.
            bound = 4.0 * (self.dim + 8) * _EPS32 * (self.max_norm + v2)
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

    def nbytes(self) -> int:
        """Bytes held by the matrices (both precisions, with their spare capacity) and names."""
        return sum(g.rows.nbytes + g.rows32.nbytes + g.norms.nbytes + 100 * g.size for g in self._groups.values())

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
        """Add stored rows (name, dimension, float64 bytes) in the given order, a dimension's
        rows in one block."""
        by_dim: dict[int, tuple[list[str], list[bytes]]] = {}
        seen: set[str] = set()
        for name, dim, data in rows:
            if name in self._names or name in seen or dim < 1 or len(data) != 8 * dim:
                continue
            seen.add(name)
            names, datas = by_dim.setdefault(dim, ([], []))
            names.append(name)
            datas.append(bytes(data))
        for dim, (names, datas) in by_dim.items():
            group = self._groups.get(dim)
            if group is None:
                group = self._groups[dim] = _Group(dim)
            group.extend(names, np.frombuffer(b"".join(datas), dtype=np.float64).reshape(len(names), dim))
            self._names.update(names)

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
