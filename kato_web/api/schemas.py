"""Request bodies and their validation, with KATO's 422 error items (api.md §2.2 shape C).

KATO validates with pydantic, so kato-web does too: the same coercions (numeric
strings become floats for emotives, numbers are not strings) and the same
`type`/`loc`/`msg`/`input` items.
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional

from flask import Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from kato_web.services.sessions import MAX_TTL_SECONDS
from kato_web.web.errors import RequestValidationError


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


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NUL_ESCAPE = re.compile(rb"\\u0000")


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def reject_lone_surrogates(raw: bytes) -> None:
    """Refuse (422) a body whose JSON escapes make a string with a lone UTF-16 surrogate, or a NUL.

    JSON allows ``"\\ud800"``, but such a string is not Unicode text: it cannot be stored in
    PostgreSQL or written back out as UTF-8, so accepting it would fail later (a 500, or a
    node whose patterns can no longer be served). Raw UTF-8 cannot carry surrogates at all, so
    only bodies with a surrogate escape are checked, by encoding what they parse to.
    """
    if _NUL_ESCAPE.search(raw):
        # PostgreSQL text and JSON cannot hold NUL characters ("\u0000"): refuse them here,
        # for both databases, rather than fail at the write (a 500).
        try:
            if _holds_nul(json.loads(raw)):
                raise RequestValidationError([{"type": "string_nul", "loc": ["body"],
                                               "msg": "Input should be a valid string: NUL character",
                                               "input": None}])
        except ValueError:
            return
    if not _SURROGATE_ESCAPE.search(raw):
        return
    try:
        json.dumps(json.loads(raw), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise RequestValidationError([{"type": "string_unicode", "loc": ["body"],
                                       "msg": "Input should be a valid string: lone UTF-16 surrogate",
                                       "input": None}]) from None
    except ValueError:
        return  # not valid JSON: the caller's own parse reports that


def read_json(request: Request, required: bool = True) -> Any:
    """Return the parsed JSON body, or raise a 422 like FastAPI for a missing or broken one."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise RequestValidationError([{"type": "missing", "loc": ["body"], "msg": "Field required",
                                           "input": None}])
        return None
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        pos = getattr(exc, "pos", 0) or 0
        raise RequestValidationError([{"type": "json_invalid", "loc": ["body", pos],
                                       "msg": "JSON decode error", "input": {},
                                       "ctx": {"error": getattr(exc, "msg", str(exc))}}]) from None
    reject_lone_surrogates(raw)
    return body


def parse(model: type[BaseModel], payload: Any):
    """Validate `payload` as `model`, raising shape C on failure."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(_error_items(exc, ("body",))) from None


def query_int(request: Request, name: str, default: int) -> int:
    """Read an integer query parameter, raising shape C when it is not one."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise RequestValidationError([{
            "type": "int_parsing", "loc": ["query", name],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": raw}]) from None
