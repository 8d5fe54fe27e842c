"""The records and settings every engine module shares (engine.md §4.5, §5, §6).

``predictor`` (the direct algorithm) and ``index`` (the compiled fast path) both speak in these
types; keeping them here, apart from either, is what lets the two import in one direction only
(``index`` falls back to ``predictor``; ``predictor`` never imports ``index``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Mapping, Sequence

from .matching import prefix_sums

__all__ = ["JSONList", "PatternRecord", "PredictConfig", "RANK_KEYS", "SymbolStats", "WEIGHTED_KEYS"]

# The keys a prediction list can be ranked by (``rank_sort_algo``, engine.md §6).
RANK_KEYS: tuple[str, ...] = (
    "potential",
    "similarity",
    "evidence",
    "confidence",
    "snr",
    "fragmentation",
    "frequency",
    "normalized_entropy",
    "global_normalized_entropy",
    "itfdf_similarity",
    "confluence",
    "predictive_information",
    "bayesian_posterior",
    "bayesian_prior",
    "bayesian_likelihood",
    "tfidf_score",
    # kato-3.10.md §1.3: the four affinity-weighted keys, after tfidf_score. They are null
    # when affinity_emotive is off; as ranking keys null ranks last (decision 19).
    "weighted_similarity",
    "weighted_evidence",
    "weighted_confidence",
    "weighted_snr",
)

WEIGHTED_KEYS: tuple[str, ...] = RANK_KEYS[-4:]


@dataclass(frozen=True)
class PatternRecord:
    """A learned pattern as the predictor needs it: bare name, events, frequency, emotive window."""

    name: str
    events: Sequence[Sequence[str]]
    frequency: int
    emotives: Sequence[Mapping[str, float]] = ()
    flat: tuple[str, ...] = field(init=False, repr=False, compare=False)
    offsets: tuple[int, ...] = field(init=False, repr=False, compare=False)
    symbol_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "flat", tuple(x for e in self.events for x in e))
        object.__setattr__(self, "offsets", prefix_sums(self.events))
        object.__setattr__(self, "symbol_set", frozenset(self.flat))

    @property
    def length(self) -> int:
        """Return L, the number of symbols of the pattern."""
        return len(self.flat)


@dataclass(frozen=True)
class SymbolStats:
    """The KB counters the metrics read: pmf per known symbol, N_sym, TUP and TPF (§4.5).

    ``frequency`` (f(σ), a symbol's total learn count) and ``affinity`` (σ → emotive → summed
    affinity, only symbols that have some) feed the affinity weights (kato-3.10.md §1.4d);
    ``finalized`` says the node was finalized (§1.4e: whole-pattern entropies and TF). A
    PatternIndex takes all three from the SymbolStats given to its ``predict`` (only pmf comes
    from the index itself).
    """

    pmf: Mapping[str, int]
    n_symbols: int
    total_unique_patterns: int
    total_pattern_frequencies: int
    frequency: Mapping[str, int] = field(default_factory=dict)
    affinity: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    finalized: bool = False


@dataclass(frozen=True)
class PredictConfig:
    """The session settings that shape a prediction call."""

    recall_threshold: float = 0.1
    max_predictions: int = 100
    use_token_matching: bool = True
    rank_sort_algo: str = "potential"
    filter_pipeline: tuple[str, ...] = ()
    length_min_ratio: float = 0.5
    length_max_ratio: float = 2.0
    jaccard_threshold: float = 0.3
    jaccard_min_overlap: int = 2
    fuzzy_token_threshold: float = 0.0  # τ of kato-3.10.md §1.4b; 0 = off
    affinity_emotive: str | None = None  # e of §1.4d; None = off

    @classmethod
    def from_mapping(cls, config: Mapping[str, object]) -> "PredictConfig":
        """Pick the prediction settings out of a session's effective configuration dict."""
        kwargs = {}
        for f in fields(cls):
            value = config.get(f.name)
            if value is None:
                continue
            if f.name == "filter_pipeline":
                value = tuple(value)  # type: ignore[arg-type]
            kwargs[f.name] = value
        return cls(**kwargs)


class JSONList:
    """A list as its JSON text (``orjson.dumps`` of it) and its length: an answer's part that
    is only ever sent, written without building its Python objects."""

    __slots__ = ("text", "length")

    def __init__(self, text: bytes, length: int):
        self.text = text
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JSONList):
            return NotImplemented
        return self.text == other.text and self.length == other.length

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JSONList({self.length} items, {len(self.text)} bytes)"
