"""The answers kato-web sends, as pydantic models: the contract the OpenAPI document states.

Views build plain dicts (the fast path serialises them with orjson, and predictions are even
written as JSON text by compiled kernels), so these models are not used to build answers. They
describe them: kato_web/web/openapi.py turns them into the document's response schemas, and
the tests validate live answers against that document (tests/integration/test_openapi.py).
Field names and shapes are KATO's (spec api.md §6, §7; kato-3.10.md §1). Objects allow extra
keys, as KATO's clients ignore unknown ones; every documented key is required unless KATO's
answer leaves it out.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

Event = list[str]
Events = list[Event]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- errors (api.md §2.2) ------------------------------------------------------------------

class ValidationErrorItem(_Answer):
    """One request-validation problem, in pydantic's words (shape C)."""

    type: str = Field(description="Machine-readable kind, e.g. `string_type`, `missing`, `json_invalid`.")
    loc: list[Union[str, int]] = Field(description="Where: `body`/`query`/`path`, then field names and indexes.")
    msg: str
    input: Any = Field(description="The offending value (`null` for a missing body).")
    ctx: Optional[dict[str, Any]] = Field(None, description="Extra facts, e.g. the bound that was exceeded.")


class ValidationErrorResponse(_Answer):
    """422: the body, a query parameter or the path failed validation (shape C)."""

    detail: list[ValidationErrorItem]


class ErrorMessage(_Answer):
    """An error with a text message (shape A), also unknown routes and wrong methods (shape F)."""

    detail: str


class ConfigValidationDetail(_Answer):
    error: str = Field(examples=["Configuration validation failed"])
    validation_errors: dict[str, str] = Field(description="Each rejected setting and why.")


class ConfigValidationError(_Answer):
    """400: a session setting had an invalid value; nothing was applied (shape B)."""

    detail: ConfigValidationDetail


class ObjectErrorDetail(_Answer):
    error: str
    message: Optional[str] = None


class ObjectError(_Answer):
    """400 with an object detail (shape B), e.g. vectors of different lengths in one observation."""

    detail: ObjectErrorDetail


class SessionNotFoundDetail(_Answer):
    code: Literal["SESSION_NOT_FOUND"]
    message: str
    session_id: str


class SessionNotFoundError(_Answer):
    """404: the session does not exist or has expired (shape D)."""

    error: SessionNotFoundDetail


# -- sessions (api.md §6.12, §7.2) -------------------------------------------------------

class SessionResponse(_Answer):
    session_id: str = Field(description='`"session-" + 32 hex + "-" + epoch milliseconds`.')
    node_id: str
    created_at: str = Field(description="ISO-8601 UTC with microseconds and `Z`.")
    expires_at: str
    ttl_seconds: int
    metadata: dict[str, Any]
    session_config: dict[str, Any] = Field(description="The effective session settings.")


class SessionCount(_Answer):
    active_session_count: int


class SessionExists(_Answer):
    exists: bool
    expired: bool
    session_id: str


class SessionDeleted(_Answer):
    status: Literal["deleted"]
    session_id: str


class SessionConfigResponse(_Answer):
    session_id: str
    config: dict[str, Any] = Field(description="The effective session settings.")


class ConfigUpdated(_Answer):
    status: Literal["okay"]
    message: str
    session_id: str


class SessionExtended(_Answer):
    status: Literal["extended"]
    session_id: str
    ttl_seconds: int


# -- operations (api.md §6.2–§6.11, §7.3) -------------------------------------------------

class ObserveResult(_Answer):
    status: Literal["okay"]
    session_id: str
    processor_id: str = Field(description="The session's node id as given at creation.")
    stm_length: int
    time: int
    unique_id: str
    auto_learned_pattern: Optional[str] = Field(description="`PTRN|…` when this observation triggered a learn.")


class SequenceItemResult(_Answer):
    status: Literal["okay"]
    sequence_position: int
    stm_length: int
    time: int
    unique_id: str
    auto_learned_pattern: Optional[str]


class ObserveSequenceResult(_Answer):
    status: Literal["completed"]
    processor_id: str
    observations_processed: int
    initial_stm_length: int
    final_stm_length: int
    results: list[SequenceItemResult]
    auto_learned_patterns: list[str]
    final_learned_pattern: Optional[str]
    isolated: bool


class STMResponse(_Answer):
    stm: Events
    session_id: str
    length: int


class LearnResult(_Answer):
    status: Literal["learned"]
    pattern_name: str = Field(description='`PTRN|<sha1>`, or `""` when the STM held fewer than 2 symbols.')
    session_id: str
    processor_id: None
    message: str


class ClearResult(_Answer):
    status: Literal["cleared"]
    session_id: str


class ClearAllResult(ClearResult):
    scope: Literal["all"]


class Prediction(_Answer):
    """One learned pattern that matches the STM, with KATO's metrics (engine.md §6)."""

    type: str
    name: str = Field(description="The bare 40-hex pattern hash (no `PTRN|` prefix).")
    frequency: int
    emotives: dict[str, float]
    matches: list[str]
    past: Events
    present: Events
    missing: Events
    extras: Events
    future: Events
    sequence: Events
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
    anomalies: Optional[list[dict[str, Any]]] = Field(
        None, description="Fuzzy-matched symbol pairs (kato-3.10.md §1.4b), when that matching is on.")
    weighted_similarity: Optional[float] = None
    weighted_evidence: Optional[float] = None
    weighted_confidence: Optional[float] = None
    weighted_snr: Optional[float] = None


class FuturePotential(_Answer):
    future: Events
    aggregate_potential: float
    supporting_patterns: int
    total_weighted_frequency: float


class PredictionsResponse(_Answer):
    predictions: list[Prediction]
    future_potentials: list[FuturePotential]
    session_id: str
    processor_id: None
    count: int
    time: None
    unique_id: None


class PerceptData(_Answer):
    strings: list[str] = []
    vectors: list[list[float]] = []
    emotives: dict[str, float] = {}
    path: list[Any] = []
    metadata: dict[str, Any] = {}


class PerceptDataResponse(_Answer):
    percept_data: PerceptData = Field(description="The last observation; `{}` after a clear.")
    session_id: str
    node_id: str


class CognitionData(_Answer):
    predictions: list[dict[str, Any]]
    emotives: dict[str, float]
    symbols: list[str]
    command: str
    metadata: dict[str, Any]
    path: list[Any]
    strings: list[str]
    vectors: list[Any]
    short_term_memory: Events
    time: Optional[int] = None


class CognitionDataResponse(_Answer):
    cognition_data: CognitionData
    session_id: str
    node_id: str


class FinalizeResult(_Answer):
    """Finalize training of the session's node (kato-3.10.md §1.1, decision 15)."""

    status: Literal["completed"]
    patterns_processed: int
    time_ms: float
    session_id: str
    node_id: str = Field(description="The session's node id as given at creation.")
    message: str


# -- node-level (api.md §6.10, §7.4) ------------------------------------------------------

class Pattern(_Answer):
    name: str = Field(description="`PTRN|<sha1>`.")
    pattern_data: Events
    length: int = Field(description="Total number of symbols.")
    frequency: int
    emotives: Optional[list[dict[str, float]]] = Field(None, description="Present only if any were stored.")
    metadata: Optional[dict[str, list[str]]] = None


class PatternLookup(_Answer):
    status: Literal["okay", "error"]
    pattern: Optional[Pattern] = None
    message: Optional[str] = Field(None, description="Set when `status` is `error` (pattern not found).")


class PatternResponse(_Answer):
    pattern: PatternLookup
    node_id: str = Field(description="The node's derived knowledge-base id, e.g. `alice_kato`.")


class NodePerceptData(_Answer):
    percept_data: dict[str, Any]
    node_id: str
    warning: str


class NodeCognitionData(_Answer):
    cognition_data: dict[str, Any]
    node_id: str
    warning: str


class SymbolStats(_Answer):
    name: str
    frequency: int = Field(description="Times the symbol was learned, re-learns included.")
    pattern_member_frequency: int = Field(description="Number of distinct patterns holding it.")


class SymbolStatsResponse(_Answer):
    symbols: dict[str, SymbolStats]
    node_id: str


class AffinitiesResponse(_Answer):
    affinities: dict[str, dict[str, float]] = Field(description="symbol → emotive → affinity")
    node_id: str


class SymbolAffinityResponse(_Answer):
    symbol: str
    affinity: dict[str, float] = Field(description="emotive → affinity; `{}` for an unknown symbol")
    node_id: str


# -- service (api.md §7.1, §7.5, §7.6) ----------------------------------------------------

class RootInfo(_Answer):
    service: str
    version: str = Field(description="kato-web's own version.")
    kato_api_version: str = Field(description="The KATO release whose API kato-web answers like.")
    description: str
    docs: str
    health: str
    status: str
    uptime_seconds: float
    architecture: str
    session_support: bool


class Health(_Answer):
    status: Literal["healthy", "degraded", "unhealthy"]
    processor_status: str
    service_name: str
    uptime_seconds: float
    issues: list[str]
    metrics_collected: int
    last_collection: float
    active_sessions: int
    timestamp: str


class Liveness(_Answer):
    status: Literal["alive"]


class ReadinessCheck(_Answer):
    ok: bool
    detail: str


class Readiness(_Answer):
    """Whether this instance can serve: database reachable and at the latest migration, kernels loaded."""

    status: Literal["ready", "not ready"]
    checks: dict[str, ReadinessCheck]
    reasons: Optional[list[str]] = Field(None, description="Why not, when not ready.")


class Status(_Answer):
    status: str
    base_processor_id: str
    uptime_seconds: float
    sessions: dict[str, Any]
    processors: dict[str, Any]
    version: str
    kato_api_version: str


class Metrics(_Answer):
    timestamp: float
    sessions: dict[str, Any]
    performance: dict[str, Any]
    resources: dict[str, Any]
    databases: dict[str, Any]
    processor_manager: dict[str, Any]
    rates: dict[str, Any]


class Stats(_Answer):
    time_range_minutes: int
    timestamp: float
    processor_manager: dict[str, Any]
    current_status: dict[str, Any]
    time_series: dict[str, list[dict[str, Any]]]
    summary: dict[str, Any]


class MetricStatistics(_Answer):
    count: int
    min: float
    max: float
    avg: float


class MetricSeries(_Answer):
    metric_name: str
    time_range_minutes: int
    timestamp: float
    statistics: MetricStatistics
    data_points: list[dict[str, Any]]


class Concurrency(_Answer):
    status: Literal["healthy", "warning", "critical"]
    current: dict[str, Any]
    peak: dict[str, Any]
    limits: dict[str, Any]
    configuration: dict[str, Any]
    recommendations: list[dict[str, Any]]
    timestamp: str


class CacheStats(_Answer):
    cache_performance: dict[str, Any]
    cache_health: dict[str, Any]
    timestamp: str


class CacheInvalidated(_Answer):
    status: str
    patterns_invalidated: int
    symbols_invalidated: int
    session_id: Optional[str]
    timestamp: str


class DistributedSTMStats(_Answer):
    status: str
    distributed_stm_enabled: bool
    timestamp: str


class ConnectionPools(_Answer):
    status: str
    timestamp: str
