"""The session state machine: observe, auto-learn, manual learn, clear (engine.md §2–§3, §13).

Everything here is pure and deterministic. The service layer loads a session row, calls these
functions, persists the returned state, and executes the returned LearnRequests against storage
in order. No function mutates the state it is given.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from .observation import (Observation, VectorDimensionError, build_event, summed_vector, vector_dimension,
                          vector_name)
from .pattern import LearnRequest, average_emotives, make_learn_request, total_symbols
from .vectors import NEIGHBOURS

# api.md §4.6: STM and both accumulators keep only their most recent 1000 entries.
MAX_STM_EVENTS = 1000
MAX_ACCUMULATOR = 1000

ROLLING = "ROLLING"
CLEAR = "CLEAR"


@dataclass
class SessionState:
    """The per-session short-term state stored in the session row."""

    stm: list[list[str]] = field(default_factory=list)
    emotives: list[dict[str, float]] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    time: int = 0
    percept: dict[str, Any] = field(default_factory=dict)
    # [VCTR| name, summed vector] observed since the last learn or clear: the next learn
    # stores them on the node (kato-3.10.md decision 17).
    vectors: list[list[Any]] = field(default_factory=list)

    def copy(self) -> SessionState:
        """Return an independent deep copy."""
        return SessionState(
            stm=[list(event) for event in self.stm],
            emotives=[dict(record) for record in self.emotives],
            # Metadata values are arbitrary JSON, possibly nested, hence deepcopy.
            metadata=copy.deepcopy(self.metadata),
            time=self.time,
            percept=copy.deepcopy(self.percept),
            vectors=[[name, list(values)] for name, values in self.vectors],
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict of plain types (for a JSON column)."""
        return {
            "stm": [list(event) for event in self.stm],
            "emotives": [dict(record) for record in self.emotives],
            "metadata": copy.deepcopy(self.metadata),
            "time": self.time,
            "percept": copy.deepcopy(self.percept),
            "vectors": [[name, list(values)] for name, values in self.vectors],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SessionState:
        """Rebuild a state from `to_dict()` output; missing keys take their empty defaults."""
        data = data or {}
        return cls(
            stm=[list(event) for event in data.get("stm") or []],
            emotives=[dict(record) for record in data.get("emotives") or []],
            metadata=copy.deepcopy(list(data.get("metadata") or [])),
            time=int(data.get("time") or 0),
            percept=copy.deepcopy(dict(data.get("percept") or {})),
            vectors=[[name, list(values)] for name, values in data.get("vectors") or []],
        )


@dataclass
class StmConfig:
    """The session settings that drive observation processing."""

    max_pattern_length: int = 0
    stm_mode: str = CLEAR
    sort_symbols: bool = True
    process_predictions: bool = True


@dataclass
class ObserveOutcome:
    """The result of one observe call.

    `prediction_stm` is the STM (right after the event was appended, before auto-learn) on which
    observe-time predictions must be computed; None means the stored predictions become [].
    Predictions must see the knowledge base as it was before this observation's auto-learn.
    """

    state: SessionState
    event: list[str]
    learned: list[LearnRequest]
    auto_learned_pattern: str | None
    prediction_stm: list[list[str]] | None
    vector_dimension: int | None = None


@dataclass
class SequenceOutcome:
    """The result of observe_sequence (api.md §6.4 fields plus what the service must execute).

    `prediction_stm` is the last item's prediction STM: the stored observe-time predictions are
    what that item's observe produced, so None means they become []. When no item was processed
    `predictions_updated` is False and the stored predictions must be left untouched.
    """

    state: SessionState
    results: list[dict[str, Any]]
    learned: list[LearnRequest]
    auto_learned_patterns: list[str]
    final_learned_pattern: str | None
    initial_stm_length: int
    final_stm_length: int
    prediction_stm: list[list[str]] | None
    predictions_updated: bool
    # How many of `learned` ran before the last item's predictions were due; the rest ran
    # after, so those predictions must not see them.
    learns_before_prediction: int = 0
    vector_dimension: int | None = None


def _reset_accumulators(state: SessionState) -> None:
    """Empty both accumulators in place (every learn does this: spec README decision 11).

    The pending vectors go with them: the learn that empties them stores them.
    """
    state.emotives = []
    state.metadata = []
    state.vectors = []


def _learn_in_place(state: SessionState, events: list[list[str]]) -> LearnRequest | None:
    """Build the LearnRequest for `events` from the accumulators, then reset them in place.

    The accumulators are reset by every learn call, including one that stores nothing because the
    events hold fewer than 2 symbols (engine.md §13 `learn`, README decision 11).
    """
    request = make_learn_request(events, state.emotives, state.metadata, state.vectors)
    _reset_accumulators(state)
    return request


def _auto_learn_in_place(state: SessionState, cfg: StmConfig) -> LearnRequest | None:
    """Apply the engine.md §3 auto-learn rule to `state` in place; return what to store."""
    mpl = cfg.max_pattern_length
    length = len(state.stm)  # counts events, not symbols
    if mpl <= 0 or length < mpl:
        return None
    events = state.stm
    if length > 1 and cfg.stm_mode == ROLLING:
        window = mpl - 1
        # With mpl == 1 the window is empty: keep nothing ("the last mpl-1 events", api.md §9.3),
        # not Python's STM[-0:], which would keep the whole STM.
        if window == 0:
            keep: list[list[str]] = []
        elif length > window:
            keep = events[-window:]
        else:
            keep = events[1:]
    else:
        # A single event (any mode), CLEAR, or any unrecognised mode: learn and empty the STM.
        keep = []
    request = _learn_in_place(state, events)
    state.stm = [list(event) for event in keep]
    return request


def _enforce_limits(state: SessionState) -> None:
    """Cap STM and accumulators to their most recent entries (api.md §4.6)."""
    if len(state.stm) > MAX_STM_EVENTS:
        state.stm = state.stm[-MAX_STM_EVENTS:]
    if len(state.emotives) > MAX_ACCUMULATOR:
        state.emotives = state.emotives[-MAX_ACCUMULATOR:]
    if len(state.metadata) > MAX_ACCUMULATOR:
        state.metadata = state.metadata[-MAX_ACCUMULATOR:]
    if len(state.vectors) > MAX_ACCUMULATOR:
        state.vectors = state.vectors[-MAX_ACCUMULATOR:]


def _observe_in_place(
    state: SessionState, obs: Observation, cfg: StmConfig, expected_dim: int | None,
    vector_memory=None, learned_vectors: list = (),
) -> ObserveOutcome:
    """Run the [REF] observe pipeline on `state`, mutating it; the outcome shares that state."""
    # Validate and build the event before touching the state, so a bad observation changes nothing.
    dim = vector_dimension(obs.vectors, expected_dim)
    own, neighbours, summed = None, [], None
    if obs.vectors:
        summed = summed_vector(obs.vectors)
        own = vector_name(summed)
        if vector_memory is not None:
            # kato-3.10.md decision 17: the nearest learned vectors of the same dimension.
            neighbours = vector_memory.nearest(summed, NEIGHBOURS, extra=learned_vectors)
    event = build_event(obs.strings, obs.vectors, cfg.sort_symbols, neighbours, own)

    state.time += 1
    # [REF]: accumulate before the event and before auto-learn, so the learned pattern includes them.
    if obs.emotives:
        state.emotives.append(dict(obs.emotives))
    if obs.metadata:
        state.metadata.append(copy.deepcopy(obs.metadata))
    if own is not None and all(pending[0] != own for pending in state.vectors):
        state.vectors.append([own, summed.tolist()])
    state.percept = {
        "strings": sorted(obs.strings),  # api.md §6.11: always sorted, whatever sort_symbols says
        "vectors": [[float(x) for x in vector] for vector in obs.vectors],
        "emotives": average_emotives(state.emotives),  # before any auto-learn reset
        "path": [],
        "metadata": copy.deepcopy(obs.metadata),
    }

    prediction_stm: list[list[str]] | None = None
    learned: list[LearnRequest] = []
    auto_name: str | None = None
    if event:
        state.stm.append(event)
        # The STM now holds this non-empty event, so it has the one symbol that is enough to
        # predict (kato-3.10.md decision 14; engine.md §2.6's "≥ 2" rule no longer holds).
        if cfg.process_predictions:
            # The events themselves are never changed once in the STM (auto-learn and the
            # limits replace the list, observe appends new events): a copy of the list is
            # enough to keep this STM as it stands now, at a fraction of a deep copy's cost.
            prediction_stm = list(state.stm)
        request = _auto_learn_in_place(state, cfg)
        if request is not None:
            learned.append(request)
            auto_name = request.name

    _enforce_limits(state)
    return ObserveOutcome(
        state=state,
        event=list(event),
        learned=learned,
        auto_learned_pattern=auto_name,
        prediction_stm=prediction_stm,
        vector_dimension=dim,
    )


def observe(
    state: SessionState, obs: Observation, cfg: StmConfig, expected_dim: int | None = None,
    in_place: bool = False, vector_memory=None,
) -> ObserveOutcome:
    """Process one observation on a copy of `state` ([REF] order, engine.md §2.5, §3, §13).

    `in_place`: work on `state` itself, for a caller that owns it and drops it on error (a
    state just decoded from the database); copying a long STM on every observe is O(length).

    `expected_dim` is the node's locked vector dimension, if any; a mismatch raises
    VectorDimensionError. `outcome.vector_dimension` reports this observation's dimension.

    `vector_memory` (e.g. a VectorSet: `nearest(vector, k, extra=…)` → names) supplies the
    learned neighbours of an observed vector; without it an event holds only its own name.
    """
    return _observe_in_place(state if in_place else state.copy(), obs, cfg, expected_dim, vector_memory)


def learn(state: SessionState) -> tuple[SessionState, LearnRequest | None]:
    """Learn the whole STM, clear it and reset the accumulators; time is unchanged.

    Returns None as the request when the STM holds fewer than 2 symbols (including an empty STM;
    the API answers 400 for that before calling).
    """
    new_state = state.copy()
    request = _learn_in_place(new_state, new_state.stm)
    new_state.stm = []
    return new_state, request


def clear_stm(state: SessionState) -> SessionState:
    """Return the cleared state: empty STM and accumulators, time 0, no percept.

    Nothing of `state` survives a clear; it is taken only to keep the call shape uniform.
    """
    return SessionState(stm=[], emotives=[], metadata=[], time=0, percept={}, vectors=[])


def _default_sequence_id() -> str:
    """Return a fresh observe-sequence id (api.md §6.4)."""
    return "seq-obs-" + uuid.uuid4().hex


def observe_sequence(
    state: SessionState,
    observations: list[Observation],
    cfg: StmConfig,
    learn_after_each: bool = False,
    learn_at_end: bool = False,
    clear_stm_between: bool = False,
    id_factory: Callable[[], str] = _default_sequence_id,
    expected_dim: int | None = None,
    vector_memory=None,
) -> SequenceOutcome:
    """Process a batch of observations with the api.md §7.3.2 options on a copy of `state`.

    `auto_learned_patterns` follows api.md §6.4: per item first the learn_after_each name (even "")
    and then the item's auto-learn name (if any); finally the learn_at_end name. `learned` holds
    the LearnRequests in execution order (an item's auto-learn runs before its learn_after_each).
    Items may have vectors of different dimensions (kato-3.10.md decision 17); a non-None
    `expected_dim` is checked for every item. Vectors learned by earlier items count as learned
    neighbours for later ones. A VectorDimensionError carries the failing item's `observation_index`.
    """
    current = state.copy()
    initial_stm_length = len(current.stm)
    if not observations:
        # api.md §6.4: an empty batch is a no-op, learn_at_end included; nothing is saved.
        return SequenceOutcome(
            state=current,
            results=[],
            learned=[],
            auto_learned_patterns=[],
            final_learned_pattern=None,
            initial_stm_length=initial_stm_length,
            final_stm_length=initial_stm_length,
            prediction_stm=None,
            predictions_updated=False,
            vector_dimension=expected_dim,
        )
    results: list[dict[str, Any]] = []
    learned: list[LearnRequest] = []
    auto_learned_patterns: list[str] = []
    final_learned_pattern: str | None = None
    prediction_stm: list[list[str]] | None = None
    dim = expected_dim

    for index, obs in enumerate(observations):
        if clear_stm_between and index > 0:
            current.stm = []  # only the STM: accumulators and time carry on (api.md §6.3)
        learned_vectors = [pair for request in learned for pair in request.vectors]
        try:
            outcome = _observe_in_place(current, obs, cfg, expected_dim, vector_memory, learned_vectors)
        except VectorDimensionError as error:
            error.observation_index = index
            raise
        if outcome.vector_dimension is not None:
            dim = outcome.vector_dimension
        learns_before_prediction = len(learned)
        learned.extend(outcome.learned)
        prediction_stm = outcome.prediction_stm

        if learn_after_each and current.stm:
            request = _learn_in_place(current, current.stm)
            current.stm = []
            if request is not None:
                learned.append(request)
            auto_learned_patterns.append(request.name if request is not None else "")
        if outcome.auto_learned_pattern is not None:
            auto_learned_patterns.append(outcome.auto_learned_pattern)

        results.append(
            {
                "status": "okay",
                "sequence_position": index,
                "stm_length": len(current.stm),  # measured after learn_after_each
                "time": current.time,
                "unique_id": obs.unique_id or id_factory(),
                "auto_learned_pattern": outcome.auto_learned_pattern,
            }
        )

    if learn_at_end and current.stm:
        request = _learn_in_place(current, current.stm)
        current.stm = []
        if request is not None:
            learned.append(request)
        final_learned_pattern = request.name if request is not None else ""
        auto_learned_patterns.append(final_learned_pattern)

    return SequenceOutcome(
        state=current,
        results=results,
        learned=learned,
        auto_learned_patterns=auto_learned_patterns,
        final_learned_pattern=final_learned_pattern,
        initial_stm_length=initial_stm_length,
        final_stm_length=len(current.stm),
        prediction_stm=prediction_stm,
        predictions_updated=True,
        vector_dimension=dim,
        learns_before_prediction=learns_before_prediction,
    )
