"""Observation input and event assembly (engine.md §2.1–§2.4).

Pure functions: turn one observation's strings and vectors into the STM event it contributes.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np

VECTOR_PREFIX = "VCTR|"

# numpy's default print options. str(ndarray) depends on the process-global print options, so we pin
# the defaults explicitly: a stray np.set_printoptions() elsewhere must never change vector names.
_NUMPY_DEFAULT_PRINT_OPTIONS: dict[str, Any] = {
    "edgeitems": 3,
    "threshold": 1000,
    "floatmode": "maxprec",
    "precision": 8,
    "suppress": False,
    "linewidth": 75,
    "nanstr": "nan",
    "infstr": "inf",
    "sign": "-",
    "formatter": None,
    "legacy": False,
}


class ObservationError(ValueError):
    """Signal an observation the engine cannot process."""


class VectorDimensionError(ObservationError):
    """Signal vectors whose lengths disagree with each other or with the node's dimension."""

    def __init__(
        self,
        message: str,
        expected_dimension: int | None = None,
        actual_dimension: int | None = None,
        vector_name: str | None = None,
        observation_index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expected_dimension = expected_dimension
        self.actual_dimension = actual_dimension
        self.vector_name = vector_name
        # Set by observe_sequence so the API can add "observation_index" to the 400 body (api.md §7.3.2).
        self.observation_index = observation_index

    def as_detail(self) -> dict[str, Any]:
        """Return the api.md §7.3.1 `detail` object (shape B) for this error."""
        detail: dict[str, Any] = {
            "error": "VectorDimensionError",
            "message": self.message,
            "expected_dimension": self.expected_dimension,
            "actual_dimension": self.actual_dimension,
            "vector_name": self.vector_name,
        }
        if self.observation_index is not None:
            detail["observation_index"] = self.observation_index
        return detail


@dataclass
class Observation:
    """One observation as received from the API (types already validated there)."""

    strings: list[str] = field(default_factory=list)
    vectors: list[list[float]] = field(default_factory=list)
    emotives: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    unique_id: str | None = None


def _as_floats(vector: list[float]) -> list[float]:
    """Coerce one vector's components to float (bools become 1.0/0.0, as the API does)."""
    return [float(x) for x in vector]


def vector_dimension(vectors: list[list[float]], expected_dim: int | None = None) -> int | None:
    """Return the common length of `vectors` (None if there are none), rejecting ragged input.

    KATO sums vectors with numpy, which would broadcast a length-1 vector or fail on other
    mismatches; kato-web rejects any length disagreement instead. A non-None `expected_dim`
    (the node's locked dimension) must match too.
    """
    if not vectors:
        return None
    dim: int | None = None
    for vector in vectors:
        length = len(vector)
        if length == 0:
            raise VectorDimensionError(
                "Vector must have at least one component",
                expected_dimension=expected_dim if expected_dim is not None else dim,
                actual_dimension=0,
            )
        if dim is None:
            dim = length
        elif length != dim:
            raise VectorDimensionError(
                f"Vectors of one observation must have equal lengths: expected {dim}, got {length}",
                expected_dimension=dim,
                actual_dimension=length,
            )
    if expected_dim is not None and dim != expected_dim:
        raise VectorDimensionError(
            f"Vector dimension mismatch: expected {expected_dim}, got {dim}",
            expected_dimension=expected_dim,
            actual_dimension=dim,
        )
    return dim


def summed_vector(vectors: list[list[float]]) -> np.ndarray:
    """Return the element-wise sum of one observation's vectors (what its VCTR| name hashes)."""
    if not vectors:
        raise ValueError("summed_vector needs at least one vector")
    vector_dimension(vectors)
    arrays = [np.array(_as_floats(v), dtype=np.float64) for v in vectors]
    # Left-to-right addition like KATO's reduce(+); starting from the first array (not 0) keeps -0.0.
    return reduce(operator.add, arrays)


def vector_name(summed: np.ndarray) -> str:
    """Return the `VCTR|` symbol of a summed vector (engine.md §2.3)."""
    with np.printoptions(**_NUMPY_DEFAULT_PRINT_OPTIONS):
        text = str(np.array(summed))
    return VECTOR_PREFIX + hashlib.sha1(text.encode("utf-8")).hexdigest()


def vector_symbol(vectors: list[list[float]]) -> str:
    """Return the `VCTR|` symbol of the element-wise sum of `vectors` (engine.md §2.3)."""
    return vector_name(summed_vector(vectors))


def build_event(strings: list[str], vectors: list[list[float]], sort_symbols: bool,
                neighbours: list[str] = (), own: str | None = None) -> list[str]:
    """Build the STM event: vector symbols first, then strings, each group sorted separately.

    The vector symbols are the observation's own `VCTR|` name and the names of its nearest
    learned vectors (`neighbours`, nearest first; kato-3.10.md decision 17), each once. Unsorted,
    they keep that order (own first): a set's order would differ between processes.
    """
    vector_symbols: list[str] = []
    if vectors:
        vector_symbols.append(own if own is not None else vector_symbol(vectors))
        for name in neighbours:
            if name not in vector_symbols:
                vector_symbols.append(name)
    string_symbols = list(strings)
    if sort_symbols:
        # Groups are sorted separately and concatenated, never merge-sorted (engine.md §2.4).
        vector_symbols.sort()
        string_symbols.sort()
    return vector_symbols + string_symbols
