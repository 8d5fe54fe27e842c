"""Request bodies and their validation, with KATO's 422 error items (api.md §2.2 shape C).

KATO validates with pydantic, so kato-web does too: the same coercions (numeric
strings become floats for emotives, numbers are not strings) and the same
`type`/`loc`/`msg`/`input` items.
"""
from __future__ import annotations

from typing import Any, Optional

from flask import Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from kato_web.services.sessions import MAX_TTL_SECONDS
from kato_web.web.errors import RequestValidationError
from kato_web.web.request_body import INT64_MAX, INT64_MIN, parse_json_bytes


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateSessionRequest(_Body):
    node_id: str = Field(description="Selects the node whose long-term memory the session uses.")
    metadata: Optional[dict[str, Any]] = Field(None, description="Stored and echoed; no meaning to kato-web.")
    ttl_seconds: Optional[int] = Field(None, ge=0, le=MAX_TTL_SECONDS,
                                       description="Sliding lifetime; `0` or absent: the server default.")
    config: Optional[dict[str, Any]] = Field(
        None, description="Initial settings (see POST /sessions/{session_id}/config); one invalid value "
                          "and all are dropped, as KATO does.")


# The largest emotive or vector value accepted. Emotives are summed into averages and per-symbol
# affinity totals, vectors into one vector per observation; with values bounded like this no sum
# can overflow a float (PostgreSQL refuses the overflow; it used to surface as a 500).
MAX_MAGNITUDE = 1e100


def _bounded(value: float) -> bool:
    return value == value and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE


class ObservationRequest(_Body):
    strings: list[StrictStr] = []
    vectors: list[list[float]] = []
    emotives: dict[str, float] = {}
    metadata: dict[str, Any] = {}
    unique_id: Optional[str] = None

    @field_validator("emotives")
    @classmethod
    def _finite(cls, v):
        for value in v.values():
            if not _bounded(value):
                raise ValueError(f"emotive values must be finite numbers within ±{MAX_MAGNITUDE:g}")
        return v

    @field_validator("vectors")
    @classmethod
    def _finite_vectors(cls, v):
        for vector in v:
            for value in vector:
                if not _bounded(value):
                    raise ValueError(f"vector values must be finite numbers within ±{MAX_MAGNITUDE:g}")
        return v


class ObservationSequenceRequest(_Body):
    observations: list[ObservationRequest]
    learn_after_each: bool = False
    learn_at_end: bool = False
    clear_stm_between: bool = False


def check_symbols(strings: list[str], loc: list, max_bytes: int) -> None:
    """Refuse (422) a symbol longer than KATO_MAX_SYMBOL_BYTES in UTF-8.

    Symbols are keys of the symbol statistics (an indexed column), and an index entry has
    a size limit (PostgreSQL's B-tree takes about 2.7 kB): an enormous symbol would fail at
    learn time, after it was accepted into the STM.
    """
    errors = []
    for i, symbol in enumerate(strings):
        if len(symbol) * 4 > max_bytes and len(symbol.encode("utf-8")) > max_bytes:
            errors.append({"type": "string_too_long", "loc": loc + [i],
                           "msg": f"String should have at most {max_bytes} bytes (UTF-8)",
                           "input": symbol[:64] + "…", "ctx": {"max_length": max_bytes}})
    if errors:
        raise RequestValidationError(errors)


def _error_items(exc: ValidationError, prefix: tuple) -> list[dict]:
    items = []
    for err in exc.errors(include_url=False):
        item = {"type": err["type"], "loc": list(prefix) + list(err["loc"]), "msg": err["msg"],
                "input": err.get("input")}
        if "ctx" in err:
            item["ctx"] = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
                           for k, v in err["ctx"].items()}
        items.append(item)
    return items


def read_json(request: Request, required: bool = True) -> Any:
    """Return the parsed JSON body, or raise a 422 like FastAPI for a missing or refused one.

    The parse is strict (kato_web/web/request_body.py): whatever it lets through can be
    stored and served on both databases.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise RequestValidationError([{"type": "missing", "loc": ["body"], "msg": "Field required",
                                           "input": None}])
        return None
    return parse_json_bytes(raw)


def parse(model: type[BaseModel], payload: Any):
    """Validate `payload` as `model`, raising shape C on failure."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(_error_items(exc, ("body",))) from None


def query_int(request: Request, name: str, default: int, ge: int | None = None, le: int | None = None) -> int:
    """Read an integer query parameter, raising shape C when it is not one or out of range.

    Every integer parameter is bounded (at least to int64): an unbounded one would
    overflow a database column or a date computation further in.
    """
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RequestValidationError([{
            "type": "int_parsing", "loc": ["query", name],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": raw}]) from None
    low = INT64_MIN if ge is None else ge
    high = INT64_MAX if le is None else le
    if value < low:
        raise RequestValidationError([{"type": "greater_than_equal", "loc": ["query", name],
                                       "msg": f"Input should be greater than or equal to {low}",
                                       "input": raw, "ctx": {"ge": low}}])
    if value > high:
        raise RequestValidationError([{"type": "less_than_equal", "loc": ["query", name],
                                       "msg": f"Input should be less than or equal to {high}",
                                       "input": raw, "ctx": {"le": high}}])
    return value
