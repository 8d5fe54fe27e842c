"""Export one node's long-term memory to JSON Lines, and import it back exactly.

The file (format version 2) is one JSON object per line, each with a `kind`:

    {"kind": "header", "format": "kato-web-node", "version": 2, "node": KB_ID,
     "patterns": N, "symbols": M, "affinities": A, "vectors": V,
     "exported_at": UNIX_TIME}                                       line 1, exactly once
    {"kind": "node", "finalized": …, "total_unique_patterns": …, "total_pattern_frequencies": …,
     "total_symbols_in_patterns_frequencies": …, "symbol_count": …}  exactly once
    {"kind": "pattern", "name": SHA1, "events": [[…]], "length": …, "frequency": …,
     "emotives": [{…}], "metadata": {…}, "created_at": …}           N lines, in learn order
    {"kind": "symbol", "symbol": …, "frequency": …, "pattern_member_frequency": …}   M lines
    {"kind": "affinity", "symbol": …, "emotive": …, "total": …}     A lines (kato-3.10.md §1.4c)
    {"kind": "vector", "name": "VCTR|…", "dim": …, "components": [...]}  V lines (decision 17)

A pattern's `emotives` are its raw per-observation dicts (kato-3.10.md decision 16). Version 1
files (a node line with `vector_dim`, no affinity, vector or finalized state) are still read:
the dimension lock they recorded no longer exists.

Learn order matters (the engine's ensemble sums follow it), so pattern lines keep it and the
import gives them increasing sequence numbers in file order. New per-node data is added as new
kinds (with a new version when old readers must not ignore it): a reader refuses a kind it does
not know rather than import part of a node.

The import checks the whole file first (each line's JSON, kind and fields; pattern names are
the SHA-1 of their events; counts match the header) and refuses the first bad line with its
number, importing nothing. It then replaces the node's content in one transaction (a new
generation, so every worker reloads it): importing the same file twice gives the same state.
"""
from __future__ import annotations

import json
import math
import time
from typing import IO, Iterator

import numpy as np

from kato_web.engine.observation import VECTOR_PREFIX
from kato_web.engine.pattern import pattern_hash
from kato_web.store import repositories as repo

FORMAT = "kato-web-node"
VERSION = 2
READABLE_VERSIONS = (1, 2)
_BATCH = 2000

COUNTERS = ("total_unique_patterns", "total_pattern_frequencies", "total_symbols_in_patterns_frequencies",
            "symbol_count")
NODE_FIELDS = ("finalized",) + COUNTERS
NODE_FIELDS_V1 = ("vector_dim",) + COUNTERS


class MalformedExport(ValueError):
    """A malformed export file: str() names the line."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


def resolve_node(db, node: str, service_name: str) -> str | None:
    """The kb_id for `node`: an existing kb_id as given, else the node id with the service suffix."""
    with db.transaction(write=False) as conn:
        for kb_id in (node, f"{node}_{service_name}"):
            if repo.get_node(conn, kb_id) is not None:
                return kb_id
    return None


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def export_node(db, kb_id: str, out: IO[str]) -> dict:
    """Write node `kb_id` to `out` (one consistent snapshot); return the header."""
    with db.transaction(write=False, snapshot=True) as conn:
        node = repo.get_node(conn, kb_id)
        if node is None:
            raise KeyError(kb_id)
        n_patterns = repo.count_patterns(conn, kb_id)
        n_symbols = sum(len(rows) for rows in repo.iter_symbols_for_export(conn, kb_id))
        n_affinities = sum(len(rows) for rows in repo.iter_affinity_for_export(conn, kb_id))
        n_vectors = sum(len(rows) for rows in repo.iter_vectors_for_export(conn, kb_id))
        header = {"kind": "header", "format": FORMAT, "version": VERSION, "node": kb_id,
                  "patterns": n_patterns, "symbols": n_symbols, "affinities": n_affinities,
                  "vectors": n_vectors, "exported_at": time.time()}
        out.write(_dumps(header) + "\n")
        out.write(_dumps({"kind": "node", "finalized": bool(node["finalized"]),
                          **{f: node[f] for f in COUNTERS}}) + "\n")
        for rows in repo.iter_patterns_for_export(conn, kb_id):
            out.write("".join(_dumps({
                "kind": "pattern", "name": r["name"], "events": r["events"], "length": r["length"],
                "frequency": r["frequency"], "emotives": r["emotives"] or [], "metadata": r["metadata"] or {},
                "created_at": r["created_at"]}) + "\n" for r in rows))
        for rows in repo.iter_symbols_for_export(conn, kb_id):
            out.write("".join(_dumps({"kind": "symbol", "symbol": s, "frequency": f,
                                      "pattern_member_frequency": m}) + "\n" for s, f, m in rows))
        for rows in repo.iter_affinity_for_export(conn, kb_id):
            out.write("".join(_dumps({"kind": "affinity", "symbol": s, "emotive": e, "total": t}) + "\n"
                              for s, e, t in rows))
        for rows in repo.iter_vectors_for_export(conn, kb_id):
            # JSON floats round-trip float64 exactly (shortest repr).
            out.write("".join(_dumps({"kind": "vector", "name": n, "dim": d,
                                      "components": np.frombuffer(c, dtype=np.float64).tolist()}) + "\n"
                              for n, d, c in rows))
    return header


# ------------------------------------------------------------------ reading and checking

def _int(value, line: int, field: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise MalformedExport(line, f"{field} must be an integer ≥ {minimum}")
    return value


def _fields(obj: dict, line: int, kind: str, required: tuple[str, ...]) -> None:
    missing = [f for f in required if f not in obj]
    extra = sorted(set(obj) - set(required) - {"kind"})
    if missing:
        raise MalformedExport(line, f"{kind} line lacks {', '.join(missing)}")
    if extra:
        raise MalformedExport(line, f"{kind} line has unknown fields {', '.join(extra)}")


def _pattern(obj: dict, line: int) -> dict:
    _fields(obj, line, "pattern", ("name", "events", "length", "frequency", "emotives", "metadata",
                                   "created_at"))
    events = obj["events"]
    if (not isinstance(events, list) or not events
            or not all(isinstance(e, list) and all(isinstance(s, str) for s in e) for e in events)):
        raise MalformedExport(line, "events must be a non-empty list of lists of strings")
    if not isinstance(obj["name"], str) or obj["name"] != pattern_hash(events):
        raise MalformedExport(line, "name is not the SHA-1 of the pattern's events")
    if _int(obj["length"], line, "length", 1) != sum(len(e) for e in events):
        raise MalformedExport(line, "length is not the number of symbols in events")
    _int(obj["frequency"], line, "frequency", 1)
    emotives = obj["emotives"]
    if not isinstance(emotives, list) or not all(
            isinstance(d, dict) and all(isinstance(k, str) and isinstance(v, (int, float))
                                        and not isinstance(v, bool) for k, v in d.items())
            for d in emotives):
        raise MalformedExport(line, "emotives must be a list of {name: number} objects")
    if not isinstance(obj["metadata"], dict):
        raise MalformedExport(line, "metadata must be an object")
    created_at = obj["created_at"]
    if not isinstance(created_at, (int, float)) or isinstance(created_at, bool) or not math.isfinite(created_at):
        raise MalformedExport(line, "created_at must be a number")
    return {"name": obj["name"], "events": events, "length": obj["length"], "frequency": obj["frequency"],
            "emotives": emotives, "metadata": obj["metadata"], "created_at": float(created_at)}


def _symbol(obj: dict, line: int) -> tuple:
    _fields(obj, line, "symbol", ("symbol", "frequency", "pattern_member_frequency"))
    if not isinstance(obj["symbol"], str):
        raise MalformedExport(line, "symbol must be a string")
    return (obj["symbol"], _int(obj["frequency"], line, "frequency"),
            _int(obj["pattern_member_frequency"], line, "pattern_member_frequency"))


def _node(obj: dict, line: int, version: int) -> dict:
    if version == 1:
        _fields(obj, line, "node", NODE_FIELDS_V1)
        if obj["vector_dim"] is not None:
            _int(obj["vector_dim"], line, "vector_dim", 1)
        finalized = False
    else:
        _fields(obj, line, "node", NODE_FIELDS)
        if not isinstance(obj["finalized"], bool):
            raise MalformedExport(line, "finalized must be true or false")
        finalized = obj["finalized"]
    for field in COUNTERS:
        _int(obj[field], line, field)
    return {"finalized": finalized, **{f: obj[f] for f in COUNTERS}}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _affinity(obj: dict, line: int) -> tuple:
    _fields(obj, line, "affinity", ("symbol", "emotive", "total"))
    if not isinstance(obj["symbol"], str) or not isinstance(obj["emotive"], str):
        raise MalformedExport(line, "symbol and emotive must be strings")
    if not _number(obj["total"]):
        raise MalformedExport(line, "total must be a number")
    return (obj["symbol"], obj["emotive"], float(obj["total"]))


def _vector(obj: dict, line: int) -> tuple:
    _fields(obj, line, "vector", ("name", "dim", "components"))
    name, components = obj["name"], obj["components"]
    if not isinstance(name, str) or not name.startswith(VECTOR_PREFIX) or len(name) != len(VECTOR_PREFIX) + 40:
        raise MalformedExport(line, "name must be a VCTR| name")
    dim = _int(obj["dim"], line, "dim", 1)
    if not isinstance(components, list) or len(components) != dim or not all(map(_number, components)):
        raise MalformedExport(line, "components must be dim finite numbers")
    return (name, dim, np.asarray(components, dtype=np.float64).tobytes())


def _records(lines: Iterator[str]) -> Iterator[tuple[int, str, object]]:
    """Yield (line number, kind, checked value) for every line; MalformedExport on the first bad one."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            raise MalformedExport(number, "empty line")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise MalformedExport(number, f"not JSON ({err.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
            raise MalformedExport(number, "not an object with a \"kind\"")
        kind = obj["kind"]
        if number == 1:
            if kind != "header" or obj.get("format") != FORMAT:
                raise MalformedExport(1, f"not a {FORMAT} export (the first line must be its header)")
            version = obj.get("version")
            if version not in READABLE_VERSIONS:
                raise MalformedExport(1, f"format version {version!r} is not one of "
                                         f"{', '.join(map(str, READABLE_VERSIONS))}")
            if not isinstance(obj.get("node"), str) or not obj["node"] or len(obj["node"]) > 64:
                raise MalformedExport(1, "node must be a kb_id (1–64 characters)")
            more = ({"affinities": _int(obj.get("affinities"), 1, "affinities"),
                     "vectors": _int(obj.get("vectors"), 1, "vectors")} if version >= 2
                    else {"affinities": 0, "vectors": 0})
            yield number, kind, {"node": obj["node"], "patterns": _int(obj.get("patterns"), 1, "patterns"),
                                 "symbols": _int(obj.get("symbols"), 1, "symbols"), **more}
        elif kind == "pattern":
            yield number, kind, _pattern(obj, number)
        elif kind == "symbol":
            yield number, kind, _symbol(obj, number)
        elif kind == "node":
            yield number, kind, _node(obj, number, version)
        elif kind == "affinity" and version >= 2:
            yield number, kind, _affinity(obj, number)
        elif kind == "vector" and version >= 2:
            yield number, kind, _vector(obj, number)
        elif kind == "header":
            raise MalformedExport(number, "a second header")
        else:
            raise MalformedExport(number, f"unknown kind {kind!r} (written by a newer kato-web?)")


def check_file(path: str) -> dict:
    """Read the whole file and check it; return its header plus the node line."""
    header, node, names, symbols, affinities, vectors = None, None, set(), set(), set(), set()
    patterns = last = 0
    with open(path, encoding="utf-8") as f:
        for number, kind, value in _records(f):
            last = number
            if kind == "header":
                header = value
            elif kind == "node":
                if node is not None:
                    raise MalformedExport(number, "a second node line")
                node = value
            elif kind == "pattern":
                if value["name"] in names:
                    raise MalformedExport(number, f"pattern {value['name']} appears twice")
                names.add(value["name"])
                patterns += 1
            elif kind == "affinity":
                if value[:2] in affinities:
                    raise MalformedExport(number, f"affinity {value[0]!r}/{value[1]!r} appears twice")
                affinities.add(value[:2])
            elif kind == "vector":
                if value[0] in vectors:
                    raise MalformedExport(number, f"vector {value[0]} appears twice")
                vectors.add(value[0])
            else:
                if value[0] in symbols:
                    raise MalformedExport(number, f"symbol {value[0]!r} appears twice")
                symbols.add(value[0])
    if header is None:
        raise MalformedExport(1, "empty file")
    if node is None:
        raise MalformedExport(last + 1, "the node line is missing")
    if (len(affinities), len(vectors)) != (header["affinities"], header["vectors"]):
        raise MalformedExport(last + 1, f"the header announces {header['affinities']} affinities and "
                                     f"{header['vectors']} vectors, the file holds {len(affinities)} and "
                                     f"{len(vectors)} (truncated?)")
    if patterns != header["patterns"] or len(symbols) != header["symbols"]:
        raise MalformedExport(last + 1, f"the header announces {header['patterns']} patterns and "
                                     f"{header['symbols']} symbols, the file holds {patterns} and "
                                     f"{len(symbols)} (truncated?)")
    return {**header, "node_counters": node}


def import_file(db, path: str, kb_id: str | None = None, now: float | None = None) -> dict:
    """Check `path`, then replace node `kb_id` (default: the header's) with its content in one
    transaction; return {node, patterns, symbols}."""
    checked = check_file(path)
    kb_id = kb_id or checked["node"]
    now = time.time() if now is None else now
    with db.transaction() as conn:
        seq = repo.replace_node_content(conn, kb_id, checked["node_counters"], now)
        pending: list[dict] = []
        symbols: list[tuple] = []
        affinities: list[tuple] = []
        vectors: list[tuple] = []
        with open(path, encoding="utf-8") as f:
            for _number, kind, value in _records(f):
                if kind == "pattern":
                    seq += 1
                    pending.append({**value, "created_seq": seq, "updated_seq": seq})
                    if len(pending) >= _BATCH:
                        repo.insert_imported_patterns(conn, kb_id, pending)
                        pending = []
                elif kind == "symbol":
                    symbols.append(value)
                    if len(symbols) >= _BATCH * 5:
                        repo.insert_imported_symbols(conn, kb_id, symbols, seq)
                        symbols = []
                elif kind == "affinity":
                    affinities.append(value)
                elif kind == "vector":
                    vectors.append(value)
                    if len(vectors) >= _BATCH:
                        repo.insert_imported_vectors(conn, kb_id, vectors, seq + 1)
                        vectors = []
        repo.insert_imported_patterns(conn, kb_id, pending)
        seq += 1
        repo.insert_imported_symbols(conn, kb_id, symbols, seq)
        repo.insert_imported_affinities(conn, kb_id, affinities, seq)
        repo.insert_imported_vectors(conn, kb_id, vectors, seq)
        repo.set_change_seq(conn, kb_id, seq)
    return {"node": kb_id, "patterns": checked["patterns"], "symbols": checked["symbols"]}
