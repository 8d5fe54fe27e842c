"""Session configuration: validation of overrides and the effective view (api.md §5, kato-3.10.md §1.3).

Pure functions: no Flask, no SQL. A session stores overrides only; the effective
value of a key is the override if set, else the server default.
"""
from __future__ import annotations

import math

# The 22 session configuration keys, in the order KATO emits them (api.md §5.5),
# with kato-web's defaults (spec/README.md decision 3: filter_pipeline is []), and KATO 3.10.1's
# two optional keys at the places it emits them once set (kato-3.10.md §1.3; off by default).
SESSION_DEFAULTS: dict = {
    "max_pattern_length": 0,
    "persistence": 5,
    "recall_threshold": 0.1,
    "indexer_type": "VI",
    "max_predictions": 100,
    "sort_symbols": True,
    "process_predictions": True,
    "use_token_matching": True,
    "fuzzy_token_threshold": 0.0,
    "stm_mode": "CLEAR",
    "rank_sort_algo": "potential",
    "affinity_emotive": None,
    "filter_pipeline": [],
    "length_min_ratio": 0.5,
    "length_max_ratio": 2.0,
    "jaccard_threshold": 0.3,
    "jaccard_min_overlap": 2,
    "minhash_threshold": 0.7,
    "minhash_bands": 20,
    "minhash_rows": 5,
    "minhash_num_hashes": 100,
    "bloom_false_positive_rate": 0.01,
    "max_candidates_per_stage": 100000,
    "enable_filter_metrics": True,
}

CONFIG_KEYS: tuple[str, ...] = tuple(SESSION_DEFAULTS)
# KATO 3.10.1's keys that the effective configuration shows only once set (kato-3.10.md §1.3).
OPTIONAL_KEYS: frozenset[str] = frozenset({"fuzzy_token_threshold", "affinity_emotive"})

RANK_SORT_ALGOS: tuple[str, ...] = (
    "potential", "similarity", "evidence", "confidence", "snr", "fragmentation", "frequency",
    "normalized_entropy", "global_normalized_entropy", "itfdf_similarity", "confluence",
    "predictive_information", "bayesian_posterior", "bayesian_prior", "bayesian_likelihood",
    "tfidf_score", "weighted_similarity", "weighted_evidence", "weighted_confidence", "weighted_snr",
)
INDEXER_TYPES: tuple[str, ...] = ("VI", "LSH", "ANNOY", "FAISS")
FILTER_STAGES: tuple[str, ...] = ("minhash", "length", "jaccard", "bloom", "rapidfuzz")
STM_MODES: tuple[str, ...] = ("CLEAR", "ROLLING")

BOOL_MESSAGE = "Must be a boolean (true/false)"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and not (isinstance(v, float) and not math.isfinite(v)))


# Each check carries the JSON schema of what it accepts (`check.schema`), so the OpenAPI
# document describes the settings from the code that validates them (json_schema() below).
def _described(schema: dict):
    def attach(check):
        check.schema = schema
        return check
    return attach


def _bounds(schema: dict, lo, hi) -> dict:
    schema["minimum"] = lo
    if hi is not None:
        schema["maximum"] = hi
    return schema


def _int_range(lo, hi, message):
    @_described(_bounds({"type": "integer"}, lo, hi))
    def check(v):
        if not _is_int(v) or v < lo or (hi is not None and v > hi):
            return message
        return None
    return check


def _number_range(lo, hi, message):
    @_described(_bounds({"type": "number"}, lo, hi))
    def check(v):
        if not _is_number(v) or v < lo or (hi is not None and v > hi):
            return message
        return None
    return check


@_described({"type": "boolean"})
def _bool(v):
    return None if isinstance(v, bool) else BOOL_MESSAGE


def _one_of(options, message):
    @_described({"type": "string", "enum": list(options)})
    def check(v):
        return None if isinstance(v, str) and v in options else message
    return check


@_described({"type": "string", "description": "`CLEAR` or `ROLLING`; any other string is stored as `CLEAR`.",
             "examples": list(STM_MODES)})
def _stm_mode(v):
    return None if isinstance(v, str) else "Must be a string"


@_described({"anyOf": [{"type": "string", "minLength": 1}, {"type": "null"}],
             "description": "The emotive whose affinity weights predictions (`weighted_*`); null: off."})
def _emotive_name(v):
    return None if isinstance(v, str) and v else "Must be a non-empty string (an emotive name) or null"


@_described({"type": "array", "items": {"type": "string", "enum": list(FILTER_STAGES)}})
def _filter_pipeline(v):
    if isinstance(v, list) and all(isinstance(x, str) and x in FILTER_STAGES for x in v):
        return None
    return "Must be a list of filter names from: " + ", ".join(FILTER_STAGES)


# The checks of api.md §5.2 with KATO's messages (§5.4); the keys KATO assigns without
# checking get checks in the same style, so no bad value can reach the engine.
CHECKS = {
    "max_pattern_length": _int_range(0, None, "Must be a non-negative integer"),
    "persistence": _int_range(1, 100, "Must be an integer between 1 and 100"),
    "recall_threshold": _number_range(0.0, 1.0, "Must be a number between 0.0 and 1.0"),
    "indexer_type": _one_of(INDEXER_TYPES, "Must be one of: " + ", ".join(INDEXER_TYPES)),
    "max_predictions": _int_range(1, 10000, "Must be an integer between 1 and 10000"),
    "sort_symbols": _bool,
    "process_predictions": _bool,
    "use_token_matching": _bool,
    # kato-3.10.md §1.3: checked on create and, stricter than KATO, on update too (decision 20).
    "fuzzy_token_threshold": _number_range(0.0, 1.0, "Must be a number between 0.0 and 1.0"),
    "affinity_emotive": _emotive_name,
    "stm_mode": _stm_mode,
    "rank_sort_algo": _one_of(RANK_SORT_ALGOS, "Must be one of: " + ", ".join(RANK_SORT_ALGOS)),
    "filter_pipeline": _filter_pipeline,
    "length_min_ratio": _number_range(0.0, 1.0, "Must be a number between 0.0 and 1.0"),
    "length_max_ratio": _number_range(1.0, None, "Must be a number greater than or equal to 1.0"),
    "jaccard_threshold": _number_range(0.0, 1.0, "Must be a number between 0.0 and 1.0"),
    "jaccard_min_overlap": _int_range(1, None, "Must be a positive integer"),
    "minhash_threshold": _number_range(0.0, 1.0, "Must be a number between 0.0 and 1.0"),
    "minhash_bands": _int_range(1, 100, "Must be an integer between 1 and 100"),
    "minhash_rows": _int_range(1, 20, "Must be an integer between 1 and 20"),
    "minhash_num_hashes": _int_range(10, 256, "Must be an integer between 10 and 256"),
    "bloom_false_positive_rate": _number_range(0.0001, 0.1, "Must be a number between 0.0001 and 0.1"),
    "max_candidates_per_stage": _int_range(100, None, "Must be an integer of at least 100"),
    "enable_filter_metrics": _bool,
}


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"))


def setting_schema(key: str) -> dict:
    """Return the JSON schema of one session setting, from its check (or its default's type)."""
    check = CHECKS.get(key)
    schema = getattr(check, "schema", None)
    if schema is None:
        default = SESSION_DEFAULTS.get(key)
        schema = next(({"type": name} for kind, name in _JSON_TYPES if isinstance(default, kind)), {})
    return dict(schema)


def json_schema(effective: bool = False) -> dict:
    """Return the JSON schema of a settings map.

    effective=False: an update (any subset; `null` resets a key to the server default; unknown
    keys are ignored). effective=True: the answer of GET …/config, every key present.
    """
    properties = {}
    for key in CHECKS:
        schema = setting_schema(key)
        if not effective:
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[key] = schema
    out = {"type": "object", "properties": properties}
    if effective:
        out["required"] = list(CONFIG_KEYS)
    return out


def _normalise(key: str, value):
    """Store floats as floats and unknown STM modes as CLEAR (api.md §5.2 row 9)."""
    if key == "stm_mode" and value not in STM_MODES:
        return "CLEAR"
    if isinstance(SESSION_DEFAULTS[key], float) and _is_int(value):
        return float(value)
    if key == "filter_pipeline":
        return list(value)
    return value


def check_values(values: dict) -> dict[str, str]:
    """Return {key: message} for every invalid known key in `values`."""
    errors = {}
    for key, value in values.items():
        check = CHECKS.get(key)
        if check is not None:
            message = check(value)
            if message:
                errors[key] = message
    return errors


def overrides_from_create(config) -> dict:
    """Return the overrides of a create request: all valid keys, or none at all (api.md §5.3)."""
    if not isinstance(config, dict):
        return {}
    known = {k: v for k, v in config.items() if k in CHECKS and v is not None}
    if check_values(known):
        return {}
    return {k: _normalise(k, v) for k, v in known.items()}


def overrides_from_update(update: dict) -> tuple[dict, dict[str, str]]:
    """Return (overrides to apply, errors) for a config update (api.md §5.4).

    A `sort` key is type-checked as KATO does but never stored; `null` resets a key
    to the server default.
    """
    errors = {}
    if "sort" in update and not isinstance(update["sort"], bool):
        errors["sort"] = BOOL_MESSAGE
    known = {k: v for k, v in update.items() if k in CHECKS}
    errors.update(check_values({k: v for k, v in known.items() if v is not None}))
    if errors:
        return {}, errors
    applied = {k: (None if v is None else _normalise(k, v)) for k, v in known.items()}
    # Token matching implies sorting unless the client said otherwise (§5.4 step 3).
    if "use_token_matching" in applied and "sort_symbols" not in applied and applied["use_token_matching"] is not None:
        applied["sort_symbols"] = applied["use_token_matching"]
    return applied, {}


def merge_overrides(current: dict, applied: dict) -> dict:
    merged = dict(current)
    for key, value in applied.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def effective_config(overrides: dict, defaults: dict) -> dict:
    """Return the keys in KATO's order: override if set, else the server default.

    The 22 keys of api.md §5.5 always; the optional ones (OPTIONAL_KEYS) only once set — by the
    session, or by a server default other than "off" (kato-3.10.md §1.3).
    """
    out = {}
    for key in CONFIG_KEYS:
        value = overrides.get(key)
        if value is None:
            value = defaults.get(key, SESSION_DEFAULTS[key])
            if key in OPTIONAL_KEYS and (value is None or value == SESSION_DEFAULTS[key]):
                continue
        out[key] = list(value) if isinstance(value, list) else value
    return out
