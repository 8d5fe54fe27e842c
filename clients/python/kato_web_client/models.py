"""Typed answers: one dataclass per answer of the OpenAPI document (`/openapi.json`).

Field names are the document's. Keys a newer server adds land in `extra`, so an older client
keeps working.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar

Event = list[str]
T = TypeVar("T")


def build(cls: type[T], data: dict, **nested: Any) -> T:
    """Make `cls` from a JSON object: known keys as fields, the rest in `extra`."""
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    values = {k: v for k, v in data.items() if k in names}
    values.update(nested)
    for f in dataclasses.fields(cls):
        if f.name not in values and f.name != "extra" and f.default is dataclasses.MISSING \
                and f.default_factory is dataclasses.MISSING:
            values[f.name] = None
    obj = cls(**values)
    if "extra" in {f.name for f in dataclasses.fields(cls)}:
        obj.extra = {k: v for k, v in data.items() if k not in names}  # type: ignore[attr-defined]
    return obj


@dataclass
class SessionInfo:
    session_id: str
    node_id: str
    created_at: str
    expires_at: str
    ttl_seconds: int
    metadata: dict[str, Any]
    session_config: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ObserveResult:
    status: str
    session_id: str
    processor_id: str
    stm_length: int
    time: int
    unique_id: str
    auto_learned_pattern: Optional[str]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SequenceItemResult:
    status: str
    sequence_position: int
    stm_length: int
    time: int
    unique_id: str
    auto_learned_pattern: Optional[str]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ObserveSequenceResult:
    status: str
    processor_id: str
    observations_processed: int
    initial_stm_length: int
    final_stm_length: int
    results: list[SequenceItemResult]
    auto_learned_patterns: list[str]
    final_learned_pattern: Optional[str]
    isolated: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> "ObserveSequenceResult":
        return build(cls, data, results=[build(SequenceItemResult, r) for r in data.get("results", [])])


@dataclass
class LearnResult:
    status: str
    pattern_name: str
    session_id: str
    message: str
    processor_id: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prediction:
    """One learned pattern matching the short-term memory, with KATO's metrics."""

    type: str
    name: str
    frequency: int
    emotives: dict[str, float]
    matches: list[str]
    past: list[Event]
    present: list[Event]
    missing: list[Event]
    extras: list[Event]
    future: list[Event]
    sequence: list[Event]
    potential: float
    evidence: float
    similarity: float
    fragmentation: float
    snr: float
    confluence: float
    predictive_information: float
    confidence: float
    entropy: float
    normalized_entropy: float
    global_normalized_entropy: float
    itfdf_similarity: float
    tfidf_score: float
    pattern_probability: float
    weighted_strength: float
    bayesian_posterior: float
    bayesian_prior: float
    bayesian_likelihood: float
    anomalies: Optional[list[dict[str, Any]]] = None
    weighted_similarity: Optional[float] = None
    weighted_evidence: Optional[float] = None
    weighted_confidence: Optional[float] = None
    weighted_snr: Optional[float] = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pattern_name(self) -> str:
        """The name as learn and GET /pattern give it (`PTRN|<hash>`)."""
        return self.name if self.name.startswith("PTRN|") else "PTRN|" + self.name


@dataclass
class FuturePotential:
    future: list[Event]
    aggregate_potential: float
    supporting_patterns: int
    total_weighted_frequency: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Predictions:
    """The ranked predictions (iterate over it) and the aggregated futures."""

    predictions: list[Prediction]
    future_potentials: list[FuturePotential]
    session_id: str
    count: int
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> "Predictions":
        return build(cls, data, predictions=[build(Prediction, p) for p in data.get("predictions") or []],
                     future_potentials=[build(FuturePotential, f) for f in data.get("future_potentials") or []])

    def __iter__(self):
        return iter(self.predictions)

    def __len__(self) -> int:
        return len(self.predictions)

    def __getitem__(self, index: int) -> Prediction:
        return self.predictions[index]


@dataclass
class Pattern:
    name: str
    pattern_data: list[Event]
    length: int
    frequency: int
    emotives: Optional[list[dict[str, float]]] = None
    metadata: Optional[dict[str, list[str]]] = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SymbolStats:
    name: str
    frequency: int
    pattern_member_frequency: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FinalizeResult:
    status: str
    patterns_processed: int
    time_ms: float
    session_id: str
    node_id: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Health:
    status: str
    service_name: str
    uptime_seconds: float
    active_sessions: int
    extra: dict[str, Any] = field(default_factory=dict)
